#!/usr/bin/env bash
# The Linux image (images/build.sh linux): its kernel has every option the vmm and the userland
# need, its root volume holds what it must with the right owners and modes, its manifest's sizes
# and checksums are true, its boot args let it read ACPI and hold reboot=k, the ACPI
# power button's path through busybox acpid to init works on the image's files
# (images/linux/power-button-test.sh), the guest bootstrap does its steps as a host process on
# the image's files (images/linux/bootstrap-test.sh), and the kernel starts under the vmm with the image's
# boot arguments, a disk, a network card (a tap in a network namespace this test makes and
# removes) and the rng: the early console shows our command line with the root device and
# without virtio-mmio entries (the kernel finds the devices in the DSDT), and the kernel finds
# the vmm's RSDP. Without VT-x/AMD-V the kernel then stops at an emulation failure
# (vmm exit 2); with it, the boot must go on to the bootstrap's "bootstrap finished" line (no
# DHCP or IMDS answers on the tap, so it finishes without them).
#
#   scripts/tests/linux-image.sh VMM
#
# Prints "PASS linux-image" or "FAIL linux-image: <reason>" and exits 0 or 1. The first run
# builds the kernel (15-25 minutes on two cores; cached outside the checkout afterwards). The
# boot is bounded by LINUX_IMAGE_TIMEOUT seconds (default 120).
set -euo pipefail

NAME=linux-image
TIMEOUT="${LINUX_IMAGE_TIMEOUT:-120}"
MEM_MIB=256
# The options the issue names: the vmm's devices and platform, the console, the file systems
# and what busybox, dropbear and httpd need; graceful power: ACPI (the power button, S5), the
# i8042 and AT keyboard (Ctrl-Alt-Del reaches init through the VT keyboard handler), evdev (the
# power button's input device, for acpid) and the SMBIOS identity in /sys/class/dmi/id.
REQUIRED=(64BIT SMP PRINTK EARLY_PRINTK TTY SERIAL_8250 SERIAL_8250_CONSOLE VIRTIO VIRTIO_MMIO
  VIRTIO_MMIO_CMDLINE_DEVICES VIRTIO_BLK VIRTIO_NET HW_RANDOM HW_RANDOM_VIRTIO BLOCK EXT4_FS NET
  INET PACKET UNIX DEVTMPFS DEVTMPFS_MOUNT PROC_FS SYSFS TMPFS BINFMT_ELF BINFMT_SCRIPT FUTEX EPOLL
  SIGNALFD TIMERFD EVENTFD SHMEM MULTIUSER FILE_LOCKING POSIX_TIMERS KVM_GUEST PARAVIRT
  X86_MPPARSE UNIX98_PTYS
  ACPI ACPI_BUTTON PCI PNP PNPACPI SERIAL_8250_PNP SERIO_I8042 KEYBOARD_ATKBD INPUT_EVDEV DMIID VT)
FORBIDDEN=(MODULES)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="$repo/images/out/linux"
tmp=$(mktemp -d)
ns="kec2-linux-image-$$"
pid=

# shellcheck source=lib/vm-test.sh
source "$here/lib/vm-test.sh"
# shellcheck source=lib/image-checks.sh
source "$here/lib/image-checks.sh"

cleanup() {
  stop_vm
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

vmm_argument "${1:-}" "network namespace, tap device, the image's file owners"

# --- the build (cached: seconds once the kernel is built) ------------------------------------
build_image linux
for f in manifest.json vmlinux rootfs.ext4 config; do
  [[ -s $out/$f ]] || fail "images/build.sh linux left no $out/$f"
done

# --- the kernel's configuration --------------------------------------------------------------
check_kernel_config "$out/config"

# --- the manifest ----------------------------------------------------------------------------
check_manifest linux name entry architecture kernel root_volume boot_args kernel_release \
  sizes.kernel sizes.root_volume sha256.kernel sha256.root_volume
[[ " $boot_args " == *" root=/dev/vda "* ]] || fail "the boot args '$boot_args' do not name root=/dev/vda"
check_power_boot_args "$boot_args"
echo "manifest: sizes and sha256 match (kernel $(m sizes.kernel) bytes, root volume $(m sizes.root_volume) bytes)"

# --- the root file system --------------------------------------------------------------------
e2fsck -fn "$rootfs" >"$tmp/fsck.log" 2>&1 || { cat "$tmp/fsck.log"; fail "e2fsck finds the root volume unclean"; }
# inode PATH: "TYPE MODE UID GID" of PATH in the image (e.g. "regular 0755 0 0").
inode() {
  debugfs -R "stat \"$1\"" "$rootfs" 2>/dev/null | awk '
    /Type:/ { for (i = 1; i <= NF; i++) { if ($i == "Type:") t = $(i + 1); if ($i == "Mode:") m = $(i + 1) } }
    /^User:/ { u = $2; g = $4 }
    END { if (t != "") print t, m, u, g }'
}
# expect PATH TYPE MODE UID GID (MODE may be a|b).
expect() {
  local got
  got=$(inode "$1")
  [[ -n $got ]] || fail "the root volume has no $1"
  read -r type mode uid gid <<<"$got"
  [[ $type == "$2" ]] || fail "$1 is a $type, not a $2"
  [[ "|$3|" == *"|$mode|"* ]] || fail "$1 has mode $mode, not $3"
  [[ $uid == "$4" && $gid == "$5" ]] || fail "$1 is owned by $uid:$gid, not $4:$5"
}
# link_target PATH: where the symbolic link PATH points.
link_target() { debugfs -R "stat \"$1\"" "$rootfs" 2>/dev/null | sed -n 's/^Fast link dest: "\(.*\)"$/\1/p'; }
image_cat() { debugfs -R "cat \"$1\"" "$rootfs" 2>/dev/null; }

expect / directory 0755 0 0
expect /bin/busybox regular 0755 0 0
expect /sbin/init symlink 0777 0 0
[[ $(link_target /sbin/init) == /bin/busybox ]] || fail "/sbin/init points to '$(link_target /sbin/init)', not /bin/busybox"
for applet in /bin/sh /usr/sbin/httpd /sbin/udhcpc /usr/bin/nc /sbin/getty; do
  [[ $(link_target "$applet") == /bin/busybox ]] || fail "$applet is not busybox's applet"
done
expect /usr/sbin/dropbear regular 0755 0 0
expect /usr/bin/dropbearkey regular 0755 0 0
expect /lib64/ld-linux-x86-64.so.2 regular 0755 0 0
for lib in $(ldd /usr/sbin/dropbear | awk '$2 == "=>" && $3 ~ /^\// {print $3}'); do
  expect "$lib" regular 0755 0 0
done
expect /usr/sbin/kec2-bootstrap regular 0755 0 0
cmp -s <(image_cat /usr/sbin/kec2-bootstrap) "$repo/images/linux/rootfs/usr/sbin/kec2-bootstrap" ||
  fail "the image's kec2-bootstrap differs from images/linux/rootfs/usr/sbin/kec2-bootstrap"
expect /usr/share/kec2/udhcpc.script regular 0755 0 0
expect /etc/inittab regular 0644 0 0
image_cat /etc/inittab | grep -q '^::sysinit:/etc/init.d/rcS$' || fail "/etc/inittab does not run /etc/init.d/rcS"
expect /etc/init.d/rcS regular 0755 0 0
image_cat /etc/init.d/rcS | grep -q '^/usr/sbin/kec2-bootstrap' || fail "rcS does not run kec2-bootstrap"
expect /etc/passwd regular 0644 0 0
expect /etc/group regular 0644 0 0
expect /etc/shadow regular '0600|0640' 0 0
image_cat /etc/passwd | grep -qx 'ec2-user:x:1000:1000:[^:]*:/home/ec2-user:/bin/sh' ||
  fail "/etc/passwd has no ec2-user with uid 1000, home /home/ec2-user and shell /bin/sh"
image_cat /etc/passwd | grep -q '^root:x:0:0:' || fail "/etc/passwd has no root"
image_cat /etc/shadow | grep -q '^ec2-user:\*:' || fail "/etc/shadow does not give ec2-user a key-only account"
image_cat /etc/group | grep -q '^ec2-user:x:1000:' || fail "/etc/group has no ec2-user group 1000"
expect /root directory 0700 0 0
expect /home/ec2-user directory 0700 1000 1000
expect /var/www/html directory 0755 1000 1000
expect /var/www/html/index.html regular 0644 1000 1000
expect /tmp directory 01777 0 0
expect /dev/console character 0600 0 0
# Graceful power: Ctrl-Alt-Del reboots, the ACPI power button powers off through acpid.
image_cat /etc/inittab | grep -q '^::ctrlaltdel:/sbin/reboot$' || fail "/etc/inittab does not reboot on Ctrl-Alt-Del"
[[ $(link_target /sbin/acpid) == /bin/busybox ]] || fail "/sbin/acpid is not busybox's applet"
[[ $(link_target /sbin/poweroff) == /bin/busybox ]] || fail "/sbin/poweroff is not busybox's applet"
image_cat /etc/init.d/rcS | grep -qE '^[[:space:]]*acpid .*-a /etc/acpid.conf' || fail "rcS does not start acpid with /etc/acpid.conf"
expect /etc/acpid.conf regular 0644 0 0
image_cat /etc/acpid.conf | grep -qx 'PWRF power-button' || fail "/etc/acpid.conf does not map the power button (PWRF) to power-button"
expect /etc/acpi directory 0755 0 0
expect /etc/acpi/power-button regular 0755 0 0
image_cat /etc/acpi/power-button | grep -qx 'exec /sbin/poweroff' || fail "/etc/acpi/power-button does not run poweroff"
echo "root volume: init, busybox, dropbear and its libraries, the bootstrap, acpid, accounts, owners and modes as expected"

# --- the power button, as host processes on the image's files ---------------------------------
"$repo/images/linux/power-button-test.sh" "$rootfs" >"$tmp/power-button.log" 2>&1 || {
  sed 's/^/  /' "$tmp/power-button.log"
  fail "the power button test failed: $(grep '^FAIL' "$tmp/power-button.log" | tail -n 1)"
}
sed 's/^/  /' "$tmp/power-button.log"

# --- the bootstrap, as an ordinary process on the image's files -------------------------------
# (on the built volume's own files, against udhcpd and a small IMDS; scripts/tests/bootstrap-live.sh
# runs the same bootstrap against the real agent's DHCP and IMDS)
"$repo/images/linux/bootstrap-test.sh" "$rootfs" >"$tmp/bootstrap.log" 2>&1 || {
  sed 's/^/  /' "$tmp/bootstrap.log"
  fail "the bootstrap test failed: $(grep '^FAIL' "$tmp/bootstrap.log" | tail -n 1)"
}
sed 's/^/  /' "$tmp/bootstrap.log"

# --- the boot --------------------------------------------------------------------------------
cp --sparse=always "$rootfs" "$tmp/rootfs.ext4"
ip netns add "$ns" || fail "cannot create the network namespace $ns"
ip netns exec "$ns" ip tuntap add dev tap0 mode tap vnet_hdr || fail "cannot create tap0 in $ns"
ip netns exec "$ns" ip link set tap0 up
hw_virt=0
grep -qwE 'vmx|svm' /proc/cpuinfo && hw_virt=1

# The console checks, on the console log so far. Sets `why` when one does not hold yet.
check_console() {
  local log="$tmp/console.txt" banner line devices
  [[ -f $tmp/console.log ]] || { why="no console output"; return 1; }
  tr -d '\r' <"$tmp/console.log" >"$log"
  # A line still being written is not looked at yet.
  [[ -z $(tail -c 1 "$log") ]] || sed -i '$d' "$log"
  banner=$(grep -m 1 -o 'Linux version [^ ]*' "$log" || true)
  [[ -n $banner ]] || { why="no 'Linux version' on the console"; return 1; }
  [[ $banner == "Linux version $release" ]] || { why="the console shows '$banner', not $release"; return 2; }
  line=$(sed -n 's/^\(\[[ 0-9.]*\] \)\{0,1\}Command line: //p' "$log" | head -n 1)
  [[ -n $line ]] || { why="no 'Command line:' on the console"; return 1; }
  [[ $line == "$boot_args"* ]] || { why="the command line '$line' does not start with the manifest's boot_args"; return 2; }
  [[ " $line " == *" root=/dev/vda "* ]] || { why="the command line '$line' has no root=/dev/vda"; return 2; }
  devices=$(grep -o 'virtio_mmio\.device=[^ ]*' <<<"$line" | tr '\n' ' ')
  [[ -z $devices ]] ||
    { why="the command line announces '$devices': a kernel that reads ACPI must find them only in the DSDT"; return 2; }
  grep -q 'ACPI: RSDP 0x00000000000E0000' "$log" || { why="the kernel has not found the RSDP at 0xe0000 yet"; return 1; }
  return 0
}

boot_start=$(date +%s%N)
elapsed_ms() { echo $((($(date +%s%N) - boot_start) / 1000000)); }
ip netns exec "$ns" timeout -k 5 "$TIMEOUT" "$vmm" --kernel "$kernel" --mem-mib "$MEM_MIB" \
  --cmdline "$boot_args" --disk "$tmp/rootfs.ext4" --net tap=tap0,mac=02:00:00:00:10:01 --rng \
  --serial-log "$tmp/console.log" 2>"$tmp/vmm.err" &
pid=$!

why="nothing on the console"
checked=
while kill -0 "$pid" 2>/dev/null; do
  rc=0
  check_console || rc=$?
  ((rc == 0)) && { checked=1; break; }
  ((rc == 2)) && fail "$why"
  sleep 0.2
done
if [[ -z $checked ]]; then
  rc=0
  check_console || rc=$?
  if ((rc != 0)); then
    status=0
    wait "$pid" || status=$?
    pid=
    ((status == 124)) && fail "$why within ${TIMEOUT}s"
    fail "$why; the vmm exited $status: $(grep 'vmm: exit:' "$tmp/vmm.err" | tail -n 1)"
  fi
fi
echo "console checks passed after $(elapsed_ms) ms:"
grep -m 1 'Command line:' "$tmp/console.txt" | sed 's/^/  /'

if ((hw_virt)); then
  # With hardware virtualization the kernel boots on: the root volume, init, the bootstrap.
  while kill -0 "$pid" 2>/dev/null && ! grep -q 'kec2-bootstrap: bootstrap finished' "$tmp/console.log"; do
    sleep 0.5
  done
  tr -d '\r' <"$tmp/console.log" >"$tmp/console.txt"
  grep -q 'kec2-bootstrap: bootstrap finished' "$tmp/console.txt" ||
    fail "this host has hardware virtualization, but the boot never reached 'bootstrap finished'"
  grep -q 'virtio_blk virtio0: \[vda\]' "$tmp/console.txt" || fail "the console never showed the disk as vda"
  echo "the guest booted to 'kec2-bootstrap: bootstrap finished' after $(elapsed_ms) ms; stopping it"
  echo "PASS $NAME"
  exit 0
fi
check_vm_exit
tr -d '\r' <"$tmp/console.log" >"$tmp/console.txt"
echo "last console line: $(grep -v '^$' "$tmp/console.txt" | tail -n 1)"
echo "PASS $NAME"
