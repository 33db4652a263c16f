#!/usr/bin/env bash
# Builds (once, cached) the nested test host's L1 system: a Debian 12 (bookworm) root made by
# debootstrap holding Debian's cloud kernel (kvm, kvm-amd, bridge, tun, netfilter as modules)
# and what the agent and the journey need at run time, as a sparse ext4 image made without
# loop mounts (mkfs.ext4 -d), next to the kernel and initrd QEMU boots.
#
#   scripts/tests/nested/build-l1.sh      prints the cache entry's directory, holding
#                                         vmlinuz, initrd.img, root.ext4, PACKAGES
#
# The entry is ${KEC2_CACHE:-/var/cache/kec2}/nested-l1/<key>, the key a hash of the package
# list, the mirror and this script; a build holds a lock, so concurrent callers wait for it.
# Needs root, debootstrap and e2fsprogs; takes 5-15 minutes the first time (network bound).
set -euo pipefail

SUITE=bookworm
MIRROR=${KEC2_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ROOT_MIB=${KEC2_NESTED_ROOT_MIB:-3072}
# What L1 needs at run time: the cloud kernel (its modules: kvm_amd, tun, bridge,
# br_netfilter, veth, nf_tables, ip_set, ebtables), kmod to load them, the agent's tools
# (ip, iptables, iptables-restore, ipset, ebtables), the journey's (ssh, curl, jq, mkfs,
# sha256sum, ps) and a DHCP-free static L1 (no network configuration at all).
PACKAGES=(
  initramfs-tools kmod
  iproute2 iptables ipset ebtables
  openssh-client curl jq
  e2fsprogs util-linux procps coreutils
)
# The kernel: bookworm's 6.1 cloud kernel (linux-image-cloud-amd64) is built without KVM, so
# L1 runs bookworm's 6.12 cloud kernel from bookworm-security, which has kvm and kvm-amd as
# modules (and tun, bridge, br_netfilter, veth, nf_tables, ip_set, ebtables).
KERNEL_PACKAGE=linux-image-6.12-cloud-amd64
SECURITY_MIRROR=${KEC2_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${KEC2_CACHE:-/var/cache/kec2}/nested-l1"

die() { echo "build-l1: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (debootstrap, file owners)"
for tool in debootstrap mkfs.ext4 e2fsck flock sha256sum; do
  command -v "$tool" >/dev/null || die "'$tool' is missing (apt-get install debootstrap e2fsprogs util-linux)"
done

key=$( { printf '%s\n' "$SUITE" "$MIRROR" "$SECURITY_MIRROR" "$ROOT_MIB" "$KERNEL_PACKAGE" "${PACKAGES[@]}"; cat "${BASH_SOURCE[0]}"; } |
  sha256sum | cut -c1-16)
entry="$cache/$SUITE-$key"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock -w 3600 9 || die "timed out waiting for another build's lock ($cache/.lock)"
if [[ -s $entry/root.ext4 && -s $entry/vmlinuz && -s $entry/initrd.img ]]; then
  echo "$entry"
  exit 0
fi

work=$(mktemp -d "$cache/.build.XXXXXX")
root="$work/root"
# unmount_all: whatever debootstrap or the kernel's install left mounted in the tree; the tree
# is removed only when nothing is mounted in it any more.
unmount_all() {
  local m
  for m in $(awk -v r="$root" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
}
cleanup() {
  unmount_all
  if awk -v r="$root" 'index($2, r) == 1 {found = 1} END {exit !found}' /proc/mounts; then
    echo "build-l1: $root still has mounts: left in place" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
echo "build-l1: debootstrap $SUITE from $MIRROR into $root (cached afterwards in $entry)" >&2
include=$(IFS=,; echo "${PACKAGES[*]}")
timeout 3600 debootstrap --variant=minbase --include="$include" "$SUITE" "$root" "$MIRROR" \
  >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }

# The kernel, from bookworm-security, installed by apt in the tree (its postinst makes the initrd).
cat >"$root/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $SECURITY_MIRROR $SUITE-security main
SOURCES
mount -t proc proc "$root/proc"
{ timeout 900 chroot "$root" apt-get update -q &&
  DEBIAN_FRONTEND=noninteractive timeout 1800 chroot "$root" apt-get install -y -q \
    --no-install-recommends "$KERNEL_PACKAGE"; } >"$work/kernel-install.log" 2>&1 ||
  { tail -n 30 "$work/kernel-install.log" >&2; die "installing $KERNEL_PACKAGE failed (log above)"; }
unmount_all

# The kernel and initrd QEMU boots (-kernel/-initrd); the modules stay in the root.
vmlinuz=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n 1)
release=${vmlinuz##*/vmlinuz-}
[[ -s $root/boot/initrd.img-$release ]] || die "no initrd for $release in the debootstrap tree"
for mod in kvm kvm-amd tun bridge br_netfilter veth; do
  find "$root/lib/modules/$release" -name "$mod.ko*" | grep -q . || die "the cloud kernel $release has no module $mod"
done
cp "$vmlinuz" "$work/vmlinuz"
cp "$root/boot/initrd.img-$release" "$work/initrd.img"

# A small, quiet system: no apt caches or docs, a hostname, the nested init in place.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc \
  "$root"/usr/share/man "$root"/usr/share/locale
echo kec2-l1 >"$root/etc/hostname"
printf '127.0.0.1 localhost kec2-l1\n' >"$root/etc/hosts"
: >"$root/etc/resolv.conf"
mkdir -p "$root/payload"
# L1's init: mounts the payload disk (label kec2-payload) and hands over to its l1-init.sh, so
# that the journey can change without rebuilding this image.
cat >"$root/sbin/kec2-nested-init" <<'INIT'
#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mount -L kec2-payload /payload && exec /payload/l1-init.sh
echo "FAIL l1-init: no payload disk (label kec2-payload) or no /payload/l1-init.sh"
echo o >/proc/sysrq-trigger
INIT
chmod 0755 "$root/sbin/kec2-nested-init"

truncate -s "${ROOT_MIB}M" "$work/root.ext4"
mkfs.ext4 -q -F -L kec2-l1 -E root_owner=0:0 -d "$root" "$work/root.ext4" ||
  die "mkfs.ext4 -d failed"
e2fsck -fn "$work/root.ext4" >/dev/null 2>&1 || die "e2fsck finds the new L1 root unclean"
chroot "$root" dpkg-query -W -f='${Package} ${Version}\n' >"$work/PACKAGES"
echo "$release" >"$work/RELEASE"
rm -rf "$root"
rm -rf "$entry.tmp"
mkdir -p "$entry.tmp"
mv "$work"/{vmlinuz,initrd.img,root.ext4,PACKAGES,RELEASE,debootstrap.log,kernel-install.log} "$entry.tmp/"
rm -rf "$entry"
mv "$entry.tmp" "$entry"
echo "build-l1: built $entry (Linux $release)" >&2
echo "$entry"
