#!/usr/bin/env bash
# Builds kec2's microVM kernel from Debian's linux-source package and images/linux/kernel.config,
# once, and prints the cache entry's directory on stdout (its only stdout line; progress goes to
# stderr). images/build.sh linux calls it.
#
#   images/linux/build-kernel.sh            build if needed, print the entry
#   images/linux/build-kernel.sh --check    only check a cached entry's config, print it
#
# The entry is ${KEC2_CACHE:-/var/cache/kec2}/linux-kernel/<source version>-<key>/ where <key> is
# the start of the sha256 of kernel.config and of this script's RECIPE: a changed fragment, a
# changed recipe or a new linux-source gives a new entry, anything else finds the kernel built.
#   vmlinux    the ELF kernel (booted by the vmm; no decompressor to run)
#   bzImage    the same kernel as a bzImage
#   config     the full .config the kernel was built with
#   SOURCE     "<package> <version> <kernel release>"
#   build.log  the build's output
# One build at a time per cache (flock); a second caller waits, then finds the kernel built.
# The build runs `nice -n 10 make -j${KEC2_KERNEL_JOBS:-2}`: about 15-25 minutes on two cores.
set -euo pipefail

# Bump when the build steps below change in a way that changes the kernel.
RECIPE=1
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FRAGMENT="$HERE/kernel.config"
CACHE_ROOT="${KEC2_CACHE:-/var/cache/kec2}"
CACHE_DIR="$CACHE_ROOT/linux-kernel"
JOBS="${KEC2_KERNEL_JOBS:-2}"
SOURCE_PACKAGE_GLOB="/usr/src/linux-source-*.tar.xz"
BUILD_DEPS=(linux-source build-essential bc bison flex libelf-dev libssl-dev cpio xz-utils)

log() { echo "build-kernel: $*" >&2; }
die() { log "error: $*"; exit 1; }

check_only=0
case "${1:-}" in
"") ;;
--check) check_only=1 ;;
-h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
*) die "unknown argument '$1' (allowed: --check, --help)" ;;
esac

[[ -f $FRAGMENT ]] || die "the config fragment $FRAGMENT is missing"

# ensure_packages PKG...: installs the Debian packages that are missing (root only).
ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  [[ $(id -u) -eq 0 ]] || die "missing Debian packages: ${missing[*]} (install them, or run as root)"
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
    { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; } ||
    die "cannot install ${missing[*]}"
}

# check_config FRAGMENT CONFIG: every `CONFIG_X=y` of the fragment is in CONFIG, and every
# `# CONFIG_X is not set` is not enabled there.
check_config() {
  local fragment="$1" config="$2" line sym bad=()
  while IFS= read -r line; do
    if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
      grep -qxF "$line" "$config" || bad+=("${BASH_REMATCH[1]} (wanted ${BASH_REMATCH[2]}, got $(grep -m1 "^${BASH_REMATCH[1]}=" "$config" || echo 'not set'))")
    elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
      sym=${BASH_REMATCH[1]}
      grep -qE "^$sym=[ym]$" "$config" && bad+=("$sym (wanted off, got on)")
    fi
  done <"$fragment"
  if ((${#bad[@]})); then
    log "the kernel's .config does not follow $fragment:"
    printf '  %s\n' "${bad[@]}" >&2
    return 1
  fi
}

complete() { [[ -s $1/vmlinux && -s $1/bzImage && -s $1/config && -s $1/SOURCE ]]; }

# The source: the newest linux-source-X.Y tarball installed, and the package that owns it.
find_source() {
  tarball=$(compgen -G "$SOURCE_PACKAGE_GLOB" | sort -V | tail -n 1 || true)
  [[ -n $tarball ]] || return 1
  src_pkg=$(dpkg-query -S "$tarball" 2>/dev/null | cut -d: -f1)
  src_version=$(dpkg-query -W -f='${Version}' "$src_pkg" 2>/dev/null)
  [[ -n $src_pkg && -n $src_version ]]
}

if ((check_only)); then
  find_source || die "no Debian linux-source tarball ($SOURCE_PACKAGE_GLOB)"
else
  find_source || ensure_packages linux-source
  find_source || die "linux-source installed no tarball matching $SOURCE_PACKAGE_GLOB"
fi
key=$({ cat "$FRAGMENT"; echo "recipe $RECIPE"; } | sha256sum | cut -c1-16)
entry="$CACHE_DIR/${src_version//:/%3a}-$key"

if complete "$entry"; then
  check_config "$FRAGMENT" "$entry/config" || die "the cached kernel in $entry does not follow the fragment"
  echo "$entry"
  exit 0
fi
((check_only)) && die "no kernel built for this fragment and source yet ($entry)"

mkdir -p "$CACHE_DIR" 2>/dev/null ||
  die "cannot create the cache directory $CACHE_DIR (set KEC2_CACHE to a writable directory)"
exec 9>"$CACHE_DIR/.lock"
if ! flock -n 9; then
  log "another kernel build holds $CACHE_DIR/.lock; waiting for it"
  flock -w 3600 9 || die "timed out waiting for another kernel build (lock $CACHE_DIR/.lock)"
fi
if complete "$entry"; then
  echo "$entry"
  exit 0
fi

ensure_packages "${BUILD_DEPS[@]}"
work=$(mktemp -d "$CACHE_DIR/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$(date +%s)
log "building the kernel from $src_pkg $src_version with $(basename "$FRAGMENT") in $work (log: $work/entry/build.log)"
log "unpacking $tarball"
tar -xf "$tarball" -C "$work" || die "cannot unpack $tarball"
srcs=("$work"/linux-source-*/)
[[ -d ${srcs[0]} ]] || die "$tarball holds no linux-source-* directory"
src=${srcs[0]%/}
mkdir "$work/obj" "$work/entry"

# A reproducible build: no host name, user or date of this machine in the kernel.
kmake() {
  KBUILD_BUILD_USER=kec2 KBUILD_BUILD_HOST=kec2 KBUILD_BUILD_TIMESTAMP="$src_pkg $src_version" \
    nice -n 10 make -C "$src" O="$work/obj" ARCH=x86_64 "$@" >>"$work/entry/build.log" 2>&1
}
fail_build() {
  log "$1; the last lines of the build log:"
  tail -n 40 "$work/entry/build.log" >&2
  exit 1
}
kmake KCONFIG_ALLCONFIG="$FRAGMENT" allnoconfig || fail_build "make allnoconfig failed"
kmake olddefconfig || fail_build "make olddefconfig failed"
check_config "$FRAGMENT" "$work/obj/.config" || die "Kconfig did not take the fragment as written"
log "compiling with make -j$JOBS (this takes a while the first time)"
kmake -j"$JOBS" vmlinux bzImage || fail_build "the kernel build failed"

release=$(cat "$work/obj/include/config/kernel.release")
cp "$work/obj/vmlinux" "$work/entry/vmlinux"
cp "$work/obj/arch/x86/boot/bzImage" "$work/entry/bzImage"
cp "$work/obj/.config" "$work/entry/config"
echo "$src_pkg $src_version $release" >"$work/entry/SOURCE"
rm -rf "$entry"
mv "$work/entry" "$entry"
log "built Linux $release in $(($(date +%s) - started)) s, cached in $entry"
echo "$entry"
