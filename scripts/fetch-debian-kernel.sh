#!/usr/bin/env bash
# Fetches a genuine Debian kernel for the Linux boot tests and prints the path of the cached
# image on stdout (its only stdout line; progress goes to stderr).
#
#   scripts/fetch-debian-kernel.sh             the bzImage:    .../<package>_<version>/vmlinuz
#   scripts/fetch-debian-kernel.sh --elf       the ELF kernel: .../<package>_<version>/vmlinux
#   scripts/fetch-debian-kernel.sh --series 6.1   only kernels 6.1.*  (default: any)
#   scripts/fetch-debian-kernel.sh --refresh   ask apt for a newer package even if one is cached
#
# The newest `linux-image-<abi>-cloud-amd64-unsigned` package apt knows (of the series, if
# one is given) is downloaded with `apt-get download` and unpacked with `dpkg-deb -x` into a
# cache outside the checkout, ${KEC2_CACHE:-/var/cache/kec2}/debian-kernel/<package>_<version>/:
#   vmlinuz   the package's /boot/vmlinuz-* (a bzImage)
#   vmlinux   the uncompressed ELF kernel inside that bzImage (found through the setup header's
#             payload_offset/payload_length, decompressed with Debian's own tools). Where KVM
#             emulates guest kernel code it reaches the first console line several times
#             sooner, since the bzImage's decompressor is skipped.
#   config    the kernel's build configuration
#   PACKAGE   "<package> <version> <kernel release>"
# Once a matching kernel is cached, the newest cached one is printed at once, without apt and
# without network. `apt-get update` runs only when apt cannot find a package or a download
# fails on stale lists (that needs root).
set -euo pipefail

CACHE_ROOT="${KEC2_CACHE:-/var/cache/kec2}"
CACHE_DIR="$CACHE_ROOT/debian-kernel"

log() { echo "fetch-debian-kernel: $*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
}

want=vmlinuz
refresh=0
series=
while (($#)); do
  case "$1" in
  --elf) want=vmlinux ;;
  --refresh) refresh=1 ;;
  --series)
    [[ ${2:-} =~ ^[0-9]+\.[0-9]+$ ]] || die "--series needs a kernel series such as 6.1 or 6.12, not '${2:-}'"
    series=$2
    shift
    ;;
  -h | --help) usage; exit 0 ;;
  *) usage; die "unknown argument '$1' (allowed: --elf, --series X.Y, --refresh, --help)" ;;
  esac
  shift
done

if [[ -n $series ]]; then
  PKG_REGEX="^linux-image-${series//./\\.}\\.[0-9].*-cloud-amd64-unsigned\$"
else
  PKG_REGEX='^linux-image-[0-9].*-cloud-amd64-unsigned$'
fi

# complete DIR: whether DIR is a finished cache entry.
complete() {
  [[ -s $1/vmlinuz && -s $1/vmlinux && -s $1/PACKAGE ]]
}

# newest_cached: the newest complete cache entry whose package matches, if any.
newest_cached() {
  local dir name best=
  for dir in "$CACHE_DIR"/linux-image-*_*; do
    complete "$dir" || continue
    name=${dir##*/}
    [[ ${name%%_*} =~ $PKG_REGEX ]] || continue
    best+="$name"$'\n'
  done
  [[ -n $best ]] && echo "$CACHE_DIR/$(printf '%s' "$best" | sort -V | tail -n 1)"
  return 0
}

# The fast path: a matching kernel is cached and no refresh was asked for.
if ((!refresh)); then
  entry=$(newest_cached)
  if [[ -n $entry ]]; then
    echo "$entry/$want"
    exit 0
  fi
fi

mkdir -p "$CACHE_DIR" 2>/dev/null ||
  die "cannot create the cache directory $CACHE_DIR (set KEC2_CACHE to a writable directory)"
[[ -w $CACHE_DIR ]] ||
  die "the cache directory $CACHE_DIR is not writable (set KEC2_CACHE to a writable directory)"

# One fetch at a time per cache; a second caller waits, then finds the kernel cached.
exec 9>"$CACHE_DIR/.lock"
flock -w 600 9 || die "timed out waiting for another fetch to finish (lock $CACHE_DIR/.lock)"
if ((!refresh)); then
  entry=$(newest_cached)
  if [[ -n $entry ]]; then
    echo "$entry/$want"
    exit 0
  fi
fi

for tool in apt-cache apt-get dpkg-deb od; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is missing: this script needs Debian's apt and dpkg"
done

apt_updated=0
apt_update() {
  ((apt_updated)) && return 0
  [[ $(id -u) -eq 0 ]] || die "apt's package lists need refreshing ('apt-get update'), which needs root"
  log "running apt-get update"
  apt-get update -qq >&2 || die "apt-get update failed"
  apt_updated=1
}

newest_package() {
  apt-cache search --names-only "$PKG_REGEX" 2>/dev/null |
    awk '{print $1}' | grep -E "$PKG_REGEX" | sort -V | tail -n 1 || true
}

# ensure_tool CMD PACKAGE: installs Debian's PACKAGE when CMD is missing.
ensure_tool() {
  command -v "$1" >/dev/null 2>&1 && return 0
  [[ $(id -u) -eq 0 ]] || die "'$1' is missing: install Debian's $2 package"
  log "installing $2 (for $1)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >&2 ||
    { apt_update && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "$2" >&2; } ||
    die "cannot install $2"
}

# le32/le16/le8 FILE OFFSET: an unsigned little-endian field of FILE; hex_at FILE OFFSET N: N bytes in hex.
le32() { od -An -t u4 --endian=little -j "$2" -N 4 "$1" | tr -d ' \n'; }
le16() { od -An -t u2 --endian=little -j "$2" -N 2 "$1" | tr -d ' \n'; }
le8() { od -An -t u1 -j "$2" -N 1 "$1" | tr -d ' \n'; }
hex_at() { od -An -t x1 -j "$2" -N "$3" "$1" | tr -d ' \n'; }

# extract_vmlinux BZIMAGE OUT: writes the ELF kernel inside BZIMAGE to OUT. The compressed
# payload sits at (setup_sects + 1) * 512 + payload_offset, payload_length bytes long, its
# last 4 bytes the uncompressed size (gzip's own trailer, or the one the kernel's build
# appends for the other formats).
extract_vmlinux() {
  local bz="$1" out="$2"
  [[ $(hex_at "$bz" $((0x202)) 4) == 48647253 ]] || die "$bz is not a bzImage (no HdrS magic)"
  local version setup_sects payload_offset payload_length start magic cmd pkg strip=4
  version=$(le16 "$bz" $((0x206)))
  ((version >= 0x208)) || die "$bz uses boot protocol $(printf '%#x' "$version"); 2.08+ is needed to find its payload"
  setup_sects=$(le8 "$bz" $((0x1f1)))
  ((setup_sects == 0)) && setup_sects=4
  payload_offset=$(le32 "$bz" $((0x248)))
  payload_length=$(le32 "$bz" $((0x24c)))
  start=$(((setup_sects + 1) * 512 + payload_offset))
  ((payload_length > 4 && start + payload_length <= $(stat -c %s "$bz"))) ||
    die "$bz: payload (offset $start, length $payload_length) lies outside the file"
  magic=$(hex_at "$bz" "$start" 6)
  case "$magic" in
  1f8b*) cmd="gzip -dc" pkg=gzip strip=0 ;;
  fd377a585a00) cmd="xz -dc" pkg=xz-utils ;;
  5d0000*) cmd="xz --format=lzma -dc" pkg=xz-utils ;;
  425a68*) cmd="bzip2 -dc" pkg=bzip2 ;;
  894c5a4f*) cmd="lzop -dc" pkg=lzop ;;
  02214c18*) cmd="lz4 -dc" pkg=lz4 ;;
  28b52ffd*) cmd="zstd -dc" pkg=zstd ;;
  *) die "$bz: unknown compression of the kernel payload (magic $magic)" ;;
  esac
  ensure_tool "${cmd%% *}" "$pkg"
  local size
  size=$(le32 "$bz" $((start + payload_length - 4)))
  log "decompressing the ${cmd%% *} payload of $(basename "$bz") ($payload_length bytes) into vmlinux"
  dd if="$bz" bs=1M iflag=skip_bytes,count_bytes skip="$start" \
    count=$((payload_length - strip)) status=none | $cmd >"$out" ||
    die "$bz: '$cmd' could not decompress the kernel payload"
  [[ $(hex_at "$out" 0 4) == 7f454c46 ]] || die "$bz: the decompressed payload is not an ELF"
  (($(stat -c %s "$out") % (1 << 32) == size)) ||
    die "$bz: the decompressed payload has $(stat -c %s "$out") bytes, the image says $size"
}

pkg=$(newest_package)
if [[ -z $pkg ]]; then
  log "apt knows no package matching $PKG_REGEX"
  apt_update
  pkg=$(newest_package)
  [[ -n $pkg ]] || die "no package matching $PKG_REGEX in apt's sources (is this Debian with main enabled?)"
fi
version=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
[[ -n $version && $version != "(none)" ]] || die "$pkg has no installable version"
entry="$CACHE_DIR/${pkg}_${version//:/%3a}"

if ! complete "$entry"; then
  log "fetching $pkg $version"
  work=$(mktemp -d "$CACHE_DIR/.fetch.XXXXXX")
  chmod 755 "$work"
  trap 'rm -rf "$work"' EXIT
  mkdir "$work/deb" "$work/root" "$work/entry"
  # apt downloads as the _apt user when it can write the directory.
  if [[ $(id -u) -eq 0 ]] && id _apt >/dev/null 2>&1; then chown _apt "$work/deb"; fi
  if ! (cd "$work/deb" && apt-get download -qq "$pkg=$version" >&2); then
    log "download failed; refreshing apt's lists and retrying"
    apt_update
    pkg=$(newest_package)
    [[ -n $pkg ]] || die "no package matching $PKG_REGEX after apt-get update"
    version=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
    entry="$CACHE_DIR/${pkg}_${version//:/%3a}"
    (cd "$work/deb" && apt-get download -qq "$pkg=$version" >&2) ||
      die "apt-get download $pkg=$version failed"
  fi
  debs=("$work"/deb/*.deb)
  [[ -f ${debs[0]} ]] || die "apt-get download left no .deb for $pkg"
  dpkg-deb -x "${debs[0]}" "$work/root" || die "dpkg-deb could not unpack ${debs[0]}"
  images=("$work"/root/boot/vmlinuz-*)
  [[ -f ${images[0]} && ${#images[@]} -eq 1 ]] ||
    die "$pkg does not hold exactly one /boot/vmlinuz-*"
  release=${images[0]##*/vmlinuz-}
  mv "${images[0]}" "$work/entry/vmlinuz"
  [[ -f $work/root/boot/config-$release ]] && mv "$work/root/boot/config-$release" "$work/entry/config"
  extract_vmlinux "$work/entry/vmlinuz" "$work/entry/vmlinux"
  echo "$pkg $version $release" >"$work/entry/PACKAGE"
  rm -rf "$entry"
  mv "$work/entry" "$entry"
  log "cached $pkg $version (kernel $release) in $entry"
fi

echo "$entry/$want"
