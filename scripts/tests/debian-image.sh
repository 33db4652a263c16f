#!/usr/bin/env bash
# The Debian AMI (images/build.sh debian): its manifest's sizes and checksums are true, its
# kernel has what the vmm, systemd and the power paths need, its root volume is a cloud image as
# Debian's are (fstab, ifupdown, cloud-init with only the Ec2 datasource, sudo, no SSH host keys,
# an empty machine-id, no root password, the boot units enabled), cloud-init's ds-identify,
# run on the image's own files, enables cloud-init with the Ec2 datasource, and the kernel starts
# under the vmm with the image's boot args and root volume. A full boot (systemd, cloud-init
# against the agent's IMDS, SSH) needs hardware virtualization or the nested test host
# (scripts/tests/nested/); on these machines the kernel stops early at an emulation failure.
#
#   scripts/tests/debian-image.sh VMM
#
# Prints "PASS debian-image" or "FAIL debian-image: <reason>" and exits 0 or 1. The first run
# bootstraps Debian (about 10 minutes, cached outside the checkout afterwards) and, if needed,
# builds the kernel (15-25 minutes). The boot is bounded by DEBIAN_IMAGE_TIMEOUT s (default 90).
set -euo pipefail

NAME=debian-image
TIMEOUT="${DEBIAN_IMAGE_TIMEOUT:-90}"
MEM_MIB=512
# The kernel options the vmm's devices and the power paths need, and what systemd asks for.
REQUIRED=(64BIT SMP KVM_GUEST PARAVIRT SERIAL_8250 SERIAL_8250_CONSOLE VIRTIO_MMIO
  VIRTIO_MMIO_CMDLINE_DEVICES VIRTIO_BLK VIRTIO_NET HW_RANDOM_VIRTIO EXT4_FS DEVTMPFS
  ACPI ACPI_BUTTON PCI PNP PNPACPI SERIAL_8250_PNP SERIO_I8042 KEYBOARD_ATKBD INPUT_EVDEV DMIID VT
  CGROUPS FHANDLE INOTIFY_USER AUTOFS_FS TMPFS TMPFS_POSIX_ACL TMPFS_XATTR EXT4_FS_POSIX_ACL
  SECCOMP SECCOMP_FILTER NAMESPACES SIGNALFD TIMERFD EPOLL UNIX INET IPV6 PACKET PROC_FS SYSFS
  UNIX98_PTYS SYSVIPC)
FORBIDDEN=(MODULES)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="$repo/images/out/debian"
tmp=$(mktemp -d)
pid=

# shellcheck source=lib/vm-test.sh
source "$here/lib/vm-test.sh"
# shellcheck source=lib/image-checks.sh
source "$here/lib/image-checks.sh"

cleanup() {
  stop_vm
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

vmm_argument "${1:-}" "debootstrap, the image's file owners"

# --- the build (cached: about a minute once the tree and kernel are built) -------------------
build_image debian
for f in manifest.json vmlinux rootfs.ext4 config packages.txt; do
  [[ -s $out/$f ]] || fail "images/build.sh debian left no $out/$f"
done

# --- the manifest ----------------------------------------------------------------------------
check_manifest debian name description entry architecture kernel root_volume root_device \
  boot_args kernel_release sizes.kernel sizes.root_volume sha256.kernel sha256.root_volume
[[ $(m root_device) == /dev/vda ]] || fail "the manifest's root_device is '$(m root_device)', not /dev/vda"
check_power_boot_args "$boot_args"
for arg in console=ttyS0 root=/dev/vda rootfstype=ext4 rw; do
  [[ " $boot_args " == *" $arg "* ]] || fail "the boot args '$boot_args' lack $arg"
done
[[ " $boot_args " != *" init="* ]] || fail "the boot args '$boot_args' name an init (systemd is /sbin/init)"
# Sparse: far fewer blocks than its apparent size.
used=$(($(stat -c %b "$rootfs") * $(stat -c %B "$rootfs")))
((used < $(m sizes.root_volume) / 2)) || fail "the root volume is not sparse ($used bytes used of $(m sizes.root_volume))"
echo "manifest: sizes and sha256 match (kernel $(m sizes.kernel) bytes, root volume $(m sizes.root_volume) bytes, $((used >> 20)) MiB used)"
echo "  $(m description)"

# --- the kernel's configuration (the linux image's kernel) -----------------------------------
check_kernel_config "$out/config"
if [[ -f $repo/images/out/linux/vmlinux ]]; then
  cmp -s "$kernel" "$repo/images/out/linux/vmlinux" || echo "note: images/out/linux/vmlinux differs (built from another fragment?)"
fi

# --- the root file system --------------------------------------------------------------------
e2fsck -fn "$rootfs" >"$tmp/fsck.log" 2>&1 || { cat "$tmp/fsck.log"; fail "e2fsck finds the root volume unclean"; }
# inode PATH: "TYPE MODE UID GID SIZE" of PATH in the image (e.g. "regular 0644 0 0 57").
inode() {
  debugfs -R "stat \"$1\"" "$rootfs" 2>/dev/null | awk '
    /Type:/ { for (i = 1; i <= NF; i++) { if ($i == "Type:") t = $(i + 1); if ($i == "Mode:") m = $(i + 1) } }
    /^User:/ { u = $2; g = $4; s = $NF }
    END { if (t != "") print t, m, u, g, s }'
}
# expect PATH TYPE MODE UID GID (MODE may be a|b).
expect() {
  local got type mode uid gid size
  got=$(inode "$1")
  [[ -n $got ]] || fail "the root volume has no $1"
  read -r type mode uid gid size <<<"$got"
  [[ $type == "$2" ]] || fail "$1 is a $type, not a $2"
  [[ "|$3|" == *"|$mode|"* ]] || fail "$1 has mode $mode, not $3"
  [[ $uid == "$4" && $gid == "$5" ]] || fail "$1 is owned by $uid:$gid, not $4:$5"
}
size_in_image() { inode "$1" | awk '{print $5}'; }
# link_target PATH: where the symbolic link PATH points.
link_target() { debugfs -R "stat \"$1\"" "$rootfs" 2>/dev/null | sed -n 's/^Fast link dest: "\(.*\)"$/\1/p'; }
image_cat() { debugfs -R "cat \"$1\"" "$rootfs" 2>/dev/null; }
image_ls() { debugfs -R "ls -l \"$1\"" "$rootfs" 2>/dev/null | awk 'NF >= 9 {print $NF}'; }

expect / directory 0755 0 0
expect /usr/lib/systemd/systemd regular 0755 0 0
[[ $(link_target /usr/sbin/init) == ../lib/systemd/systemd || $(link_target /usr/sbin/init) == /lib/systemd/systemd ]] ||
  fail "/usr/sbin/init points to '$(link_target /usr/sbin/init)', not systemd"
[[ $(link_target /sbin) == usr/sbin ]] || fail "/sbin is not the merged /usr's link"
expect /etc/fstab regular 0644 0 0
image_cat /etc/fstab | grep -qx '/dev/vda / ext4 rw,discard,errors=remount-ro 0 1' ||
  fail "/etc/fstab does not mount /dev/vda on / as ext4 (rw,discard,errors=remount-ro 0 1)"
expect /etc/hostname regular 0644 0 0
expect /etc/network/interfaces regular 0644 0 0
image_cat /etc/network/interfaces | grep -qx 'source /etc/network/interfaces.d/\*' || fail "/etc/network/interfaces does not source interfaces.d"
image_cat /etc/network/interfaces | grep -qx 'auto lo' || fail "/etc/network/interfaces does not bring lo up"
expect /etc/cloud/cloud.cfg.d/99_kec2_datasource.cfg regular 0644 0 0
[[ $(image_cat /etc/cloud/cloud.cfg.d/99_kec2_datasource.cfg | grep -v '^#') == 'datasource_list: [ Ec2, None ]' ]] ||
  fail "cloud.cfg.d/99_kec2_datasource.cfg does not say only 'datasource_list: [ Ec2, None ]'"
expect /etc/cloud/cloud.cfg.d/99_kec2_locale.cfg regular 0644 0 0
[[ $(image_cat /etc/cloud/cloud.cfg.d/99_kec2_locale.cfg | grep -v '^#') == 'locale: C.UTF-8' ]] ||
  fail "cloud.cfg.d/99_kec2_locale.cfg does not say only 'locale: C.UTF-8'"
expect /etc/machine-id regular '0444|0644' 0 0
[[ $(size_in_image /etc/machine-id) == 0 ]] || fail "/etc/machine-id is not empty"
hostkeys=$(image_ls /etc/ssh | grep '^ssh_host_' || true)
[[ -z $hostkeys ]] || fail "the image carries SSH host keys: $hostkeys"
expect /etc/ssh/sshd_config regular 0644 0 0
expect /etc/systemd/system/ssh.service.d/kec2-host-keys.conf regular 0644 0 0
expect /usr/bin/sudo regular 04755 0 0
expect /etc/sudoers regular 0440 0 0
expect /usr/bin/cloud-init regular 0755 0 0
expect /usr/sbin/sshd regular 0755 0 0
expect /usr/sbin/dhclient regular 0755 0 0
expect /usr/sbin/ifup regular 0755 0 0
expect /etc/shadow regular 0640 0 42
image_cat /etc/shadow | grep -q '^root:\*:' || fail "root has a password (or no locked entry) in /etc/shadow"
[[ $(size_in_image /etc/resolv.conf) == 0 ]] || fail "/etc/resolv.conf is not empty (the build host's leaked in?)"
image_cat /etc/apt/sources.list.d/debian.sources | grep -q '^Suites: bookworm-security' || fail "apt has no bookworm-security source"
# The boot units, enabled as systemd does it: symbolic links in the targets' .wants directories.
# wanted TARGET UNIT: /etc/systemd/system/TARGET.wants/UNIT links to the unit's file.
wanted() {
  local target
  target=$(link_target "/etc/systemd/system/$1.wants/$2")
  [[ $target == */"${3:-$2}" ]] || fail "$2 is not enabled ($1.wants/$2 links to '${target:-nothing}')"
}
for unit in cloud-init-local.service cloud-init.service cloud-config.service cloud-final.service; do
  wanted cloud-init.target "$unit"
done
wanted multi-user.target ssh.service
[[ $(link_target /etc/systemd/system/sshd.service) == */ssh.service ]] || fail "sshd.service is not ssh.service's alias"
wanted getty.target serial-getty@ttyS0.service serial-getty@.service
wanted multi-user.target networking.service
# Graceful power: systemd-logind (needs dbus) turns the power button into a poweroff; the
# kernel's Ctrl-Alt-Del reaches systemd as ctrl-alt-del.target, a reboot.
[[ $(link_target /usr/lib/systemd/system/multi-user.target.wants/systemd-logind.service) == */systemd-logind.service ]] ||
  fail "systemd-logind.service is not wanted by multi-user.target"
[[ $(link_target /usr/lib/systemd/system/multi-user.target.wants/dbus.service) == */dbus.service ]] ||
  fail "dbus.service (which systemd-logind needs) is not wanted by multi-user.target"
[[ $(link_target /usr/lib/systemd/system/ctrl-alt-del.target) == reboot.target ]] || fail "ctrl-alt-del.target is not reboot.target"
image_cat /usr/lib/udev/rules.d/70-power-switch.rules | grep -q 'TAG+="power-switch"' || fail "udev does not tag power-switch input devices"
image_cat /etc/cloud/cloud.cfg | grep -A 3 'default_user:' | grep -q 'name: debian' ||
  fail "Debian's cloud.cfg no longer makes 'debian' the default user (update images/debian/README.md)"
echo "root volume: systemd, fstab, ifupdown, cloud-init (Ec2, None), sudo, sshd without host keys, empty machine-id, locked root, units enabled, logind and Ctrl-Alt-Del"

# --- ds-identify, on the image's own files --------------------------------------------------
# cloud-init's generator runs ds-identify at boot; with this datasource_list it must enable
# cloud-init with Ec2 whatever the platform looks like (here: the SMBIOS identity the vmm gives).
dsroot="$tmp/ds"
mkdir -p "$dsroot/usr/lib/cloud-init" "$dsroot/sys/class/dmi/id" "$dsroot/run" "$dsroot/proc/1"
mkdir -p "$dsroot/etc"
debugfs -R "rdump /etc/cloud \"$dsroot/etc\"" "$rootfs" >/dev/null 2>&1 || fail "cannot read /etc/cloud from the root volume"
debugfs -R "dump -p /usr/lib/cloud-init/ds-identify \"$dsroot/usr/lib/cloud-init/ds-identify\"" "$rootfs" >/dev/null 2>&1 ||
  fail "cannot read ds-identify from the root volume"
uuid=ec2e1916-9099-7caf-fd21-012345abcdef
printf '%s\n' "$uuid" >"$dsroot/sys/class/dmi/id/product_uuid"
printf '%s\n' "$uuid" >"$dsroot/sys/class/dmi/id/product_serial"
printf 'Amazon EC2\n' >"$dsroot/sys/class/dmi/id/sys_vendor"
printf 'Amazon EC2\n' >"$dsroot/sys/class/dmi/id/chassis_asset_tag"
printf 't3.micro\n' >"$dsroot/sys/class/dmi/id/product_name"
printf 'console=ttyS0 root=/dev/vda\n' >"$dsroot/proc/cmdline"
: >"$dsroot/proc/1/environ"
set +e
PATH_ROOT="$dsroot" DI_LOG=stderr sh "$dsroot/usr/lib/cloud-init/ds-identify" --force >"$tmp/ds-identify.log" 2>&1
ds_status=$?
set -e
result=$(cat "$dsroot/run/cloud-init/cloud.cfg" 2>/dev/null || true)
if ((ds_status != 0)) || [[ $result != *'datasource_list: [ Ec2, None ]'* ]]; then
  sed 's/^/  /' "$tmp/ds-identify.log" | tail -n 20
  fail "ds-identify did not enable cloud-init with [ Ec2, None ] (exit $ds_status; run/cloud-init/cloud.cfg: '${result:-none}')"
fi
echo "ds-identify: $(grep -m 1 'single entry' "$tmp/ds-identify.log" | sed 's/^.*single/single/' || true) -> $result"

# --- the boot --------------------------------------------------------------------------------
# The image's boot args have no earlyprintk; this boot adds it, so that the command line shows
# before the kernel stops here (the serial console proper comes up later than that).
cp --sparse=always "$rootfs" "$tmp/rootfs.ext4"
boot_start=$(date +%s%N)
elapsed_ms() { echo $((($(date +%s%N) - boot_start) / 1000000)); }
timeout -k 5 "$TIMEOUT" "$vmm" --kernel "$kernel" --mem-mib "$MEM_MIB" --cmdline "$boot_args earlyprintk=ttyS0" \
  --disk "$tmp/rootfs.ext4" --rng --serial-log "$tmp/console.log" 2>"$tmp/vmm.err" &
pid=$!
# command_line: the kernel's "Command line:" from the console so far (empty if not there yet).
command_line() {
  [[ -f $tmp/console.log ]] || return 0
  tr -d '\r' <"$tmp/console.log" | sed -n 's/^\(\[[ 0-9.]*\] \)\{0,1\}Command line: //p' | head -n 1
}
line=
while kill -0 "$pid" 2>/dev/null; do
  line=$(command_line)
  [[ -n $line ]] && break
  sleep 0.2
done
[[ -n $line ]] || line=$(command_line)
[[ -n $line ]] || fail "no 'Command line:' on the console"
[[ $line == "$boot_args"* ]] || fail "the command line '$line' does not start with the manifest's boot_args"
banner=$(tr -d '\r' <"$tmp/console.log" | grep -m 1 -o 'Linux version [^ ]*' || true)
[[ $banner == "Linux version $release" ]] || fail "the console shows '$banner', not Linux version $release"
echo "console after $(elapsed_ms) ms: Command line: $line"
if grep -qwE 'vmx|svm' /proc/cpuinfo; then
  # With hardware virtualization systemd starts; its banner is as far as this test waits.
  while kill -0 "$pid" 2>/dev/null && ! grep -q 'Welcome to.*Debian' "$tmp/console.log"; do sleep 0.5; done
  grep -q 'Welcome to.*Debian' "$tmp/console.log" || fail "this host has hardware virtualization, but systemd never greeted on the console"
  echo "systemd started after $(elapsed_ms) ms"
  echo "PASS $NAME"
  exit 0
fi
check_vm_exit
echo "PASS $NAME"
