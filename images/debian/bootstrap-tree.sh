#!/usr/bin/env bash
# Makes the Debian AMI's base tree with debootstrap, once, and prints the cache entry's
# directory on stdout (its only stdout line; progress goes to stderr). images/build.sh debian
# copies the tree, configures the copy and makes the root volume from it.
#
#   images/debian/bootstrap-tree.sh          bootstrap if needed, print the entry
#
# The entry is ${KEC2_CACHE:-/var/cache/kec2}/debian-tree/<suite>-<key>/ where <key> is the start
# of the sha256 of images/debian/packages (comments and blank lines dropped), the suite, variant
# and mirror, and this script's RECIPE. It holds
#   tree/      the debootstrapped root file system, untouched after debootstrap
#   PACKAGES   the packages and versions installed (dpkg-query)
#   SOURCE     "<suite> <variant> <mirror> <date of the bootstrap>"
#   debootstrap.log
# The downloaded .deb files are kept in ${KEC2_CACHE}/debian-debs/ for the next bootstrap.
# One bootstrap at a time per cache (flock); a second caller waits, then finds the tree made.
# Needs root and network access to the mirror (KEC2_DEBIAN_MIRROR, default deb.debian.org).
set -euo pipefail

# Bump when the bootstrap steps below change in a way that changes the tree.
RECIPE=1
SUITE=bookworm
VARIANT=minbase
MIRROR="${KEC2_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PACKAGE_FILE="$HERE/packages"
CACHE_ROOT="${KEC2_CACHE:-/var/cache/kec2}"
CACHE_DIR="$CACHE_ROOT/debian-tree"
DEB_CACHE="$CACHE_ROOT/debian-debs"

log() { echo "bootstrap-tree: $*" >&2; }
die() { log "error: $*"; exit 1; }

case "${1:-}" in
"") ;;
-h | --help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
*) die "unknown argument '$1' (allowed: --help)" ;;
esac

[[ $(id -u) -eq 0 ]] || die "needs root (debootstrap makes device nodes and runs maintainer scripts in a chroot)"
[[ -f $PACKAGE_FILE ]] || die "the package list $PACKAGE_FILE is missing"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
[[ -f $KEYRING ]] || die "Debian's archive keyring $KEYRING is missing (apt-get install debian-archive-keyring)"

mapfile -t packages < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$PACKAGE_FILE" | grep -v '^$')
((${#packages[@]})) || die "$PACKAGE_FILE names no packages"
key=$({ printf '%s\n' "${packages[@]}"; echo "suite $SUITE variant $VARIANT mirror $MIRROR recipe $RECIPE"; } |
  sha256sum | cut -c1-16)
entry="$CACHE_DIR/$SUITE-$key"

complete() { [[ -d $1/tree/etc && -s $1/PACKAGES && -s $1/SOURCE ]]; }

if complete "$entry"; then
  echo "$entry"
  exit 0
fi

mkdir -p "$CACHE_DIR" "$DEB_CACHE" 2>/dev/null ||
  die "cannot create the cache directories under $CACHE_ROOT (set KEC2_CACHE to a writable directory)"
exec 9>"$CACHE_DIR/.lock"
if ! flock -n 9; then
  log "another bootstrap holds $CACHE_DIR/.lock; waiting for it"
  flock -w 3600 9 || die "timed out waiting for another bootstrap (lock $CACHE_DIR/.lock)"
fi
if complete "$entry"; then
  echo "$entry"
  exit 0
fi

# cleanup DIR: unmounts whatever a failed debootstrap left mounted under DIR (its /proc, /sys),
# then removes DIR without crossing into another file system.
cleanup() {
  local dir="$1" mnt
  [[ -d $dir ]] || return 0
  for mnt in $(awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r); do
    umount -l "$mnt" 2>/dev/null || log "warning: cannot unmount $mnt"
  done
  rm -rf --one-file-system "$dir"
}
work=$(mktemp -d "$CACHE_DIR/.build.XXXXXX")
trap 'cleanup "$work"' EXIT
started=$(date +%s)
log "debootstrap $SUITE ($VARIANT, ${#packages[@]} packages and their dependencies) from $MIRROR into $work/tree"
log "(log: $work/debootstrap.log; several minutes the first time)"
include=$(IFS=,; echo "${packages[*]}")
if ! nice -n 10 debootstrap --variant="$VARIANT" --include="$include" --components=main \
  --keyring="$KEYRING" --cache-dir="$DEB_CACHE" "$SUITE" "$work/tree" "$MIRROR" >"$work/debootstrap.log" 2>&1; then
  log "debootstrap failed; the last lines of its log:"
  tail -n 30 "$work/debootstrap.log" >&2
  [[ -f $work/tree/debootstrap/debootstrap.log ]] && { log "and of the tree's debootstrap/debootstrap.log:"; tail -n 30 "$work/tree/debootstrap/debootstrap.log" >&2; }
  exit 1
fi
# Every named package must be installed (debootstrap would otherwise stop, but be sure).
missing=()
for pkg in "${packages[@]}"; do
  chroot "$work/tree" dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
((${#missing[@]} == 0)) || die "debootstrap did not install: ${missing[*]}"
chroot "$work/tree" dpkg-query -W -f='${Package} ${Version}\n' >"$work/PACKAGES"
echo "$SUITE $VARIANT $MIRROR $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$work/SOURCE"
rm -rf "$entry"
mkdir "$entry"
mv "$work/tree" "$work/PACKAGES" "$work/SOURCE" "$work/debootstrap.log" "$entry/"
log "bootstrapped $SUITE ($(wc -l <"$entry/PACKAGES") packages, $(du -sm "$entry/tree" | cut -f1) MiB) in $(($(date +%s) - started)) s, cached in $entry"
echo "$entry"
