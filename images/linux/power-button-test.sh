#!/usr/bin/env bash
# The busybox image's power button path, on the files of the built root volume: busybox acpid,
# started with rcS's own command line, reads a KEY_POWER press from /dev/input/event0, runs the
# image's /etc/acpi/power-button, whose `poweroff` asks init (pid 1) to power off with SIGUSR2.
# It runs in a chroot holding the image's busybox, /etc/acpid.conf, /etc/acpi and rcS's acpid
# line, in a PID namespace of its own where pid 1 is a stand-in init that records the signal;
# event0 is a FIFO this test writes one struct input_event into, as the kernel's ACPI button
# driver would. (What the kernel does next, the ACPI S5 write, needs a real boot: see README.)
#
#   images/linux/power-button-test.sh ROOTFS.ext4
#
# Prints "PASS power-button" or "FAIL power-button: <reason>" and exits 0 or 1. Root only.
set -euo pipefail

NAME=power-button
rootfs="${1:-}"
tmp=$(mktemp -d)
ns_pid=

fail() {
  echo "FAIL $NAME: $*"
  for f in init.log root/dev/console; do
    [[ -s $tmp/$f ]] && { echo "--- $f ---"; tail -n 20 "$tmp/$f"; }
  done
  exit 1
}
cleanup() {
  exec 3>&- 2>/dev/null || true
  [[ -n $ns_pid ]] && kill "$ns_pid" 2>/dev/null && wait "$ns_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

[[ -n $rootfs ]] || fail "usage: $0 ROOTFS.ext4"
[[ -f $rootfs ]] || fail "no root volume at '$rootfs'"
[[ $(id -u) -eq 0 ]] || fail "needs root (chroot, PID namespace)"

# The image's files, as they are in the root volume.
root="$tmp/root"
mkdir -p "$root"/{bin,sbin,proc,etc/acpi,etc/init.d,dev/input,run,var/log}
get() { debugfs -R "dump -p \"$1\" \"$root$1\"" "$rootfs" >/dev/null 2>&1 && [[ -e $root$1 ]] || fail "cannot read $1 from the root volume"; }
for f in /bin/busybox /etc/acpid.conf /etc/acpi/power-button /etc/init.d/rcS; do get "$f"; done
for applet in /bin/sh /sbin/acpid /sbin/poweroff /bin/sleep /bin/echo; do ln -s /bin/busybox "$root$applet"; done
touch "$root/dev/console"
mkfifo "$root/dev/input/event0"

# rcS's acpid line, as the image runs it at boot.
acpid_line=$(grep -E '^[[:space:]]*acpid ' "$root/etc/init.d/rcS" | head -n 1 | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*&&.*$//')
[[ -n $acpid_line ]] || fail "rcS does not start acpid"
echo "rcS starts: $acpid_line"

# The stand-in init: starts acpid as rcS does, then waits for busybox poweroff's SIGUSR2.
cat >"$root/init" <<INIT
trap 'echo "init: SIGUSR2 (poweroff)" >/run/init.signal; exit 0' USR2
trap 'echo "init: SIGTERM (halt)" >/run/init.signal; exit 0' TERM
trap 'echo "init: SIGINT" >/run/init.signal; exit 0' INT
$acpid_line || { echo "init: acpid did not start"; exit 1; }
echo "init: acpid started"
while :; do sleep 0.1; done
INIT

exec 3<>"$root/dev/input/event0" # held open, so that acpid never sees the FIFO hang up
unshare --pid --fork --kill-child --mount-proc="$root/proc" chroot "$root" /bin/sh /init >"$tmp/init.log" 2>&1 &
ns_pid=$!
for _ in $(seq 50); do
  grep -q 'acpid started' "$tmp/init.log" && [[ -s $root/run/acpid.pid ]] && break
  kill -0 "$ns_pid" 2>/dev/null || fail "the stand-in init ended: $(cat "$tmp/init.log")"
  sleep 0.1
done
grep -q 'acpid started' "$tmp/init.log" && [[ -s $root/run/acpid.pid ]] ||
  fail "acpid did not start within 5 s (it writes its pid file once it has opened event0)"

# One KEY_POWER press as evdev reports it: struct input_event {timeval; type EV_KEY (1);
# code KEY_POWER (116); value 1}, 24 bytes on x86_64.
python3 -c 'import struct, sys; sys.stdout.buffer.write(struct.pack("<qqHHi", 0, 0, 1, 116, 1))' >&3
for _ in $(seq 50); do
  [[ -s $root/run/init.signal ]] && break
  sleep 0.1
done
[[ -s $root/run/init.signal ]] || fail "no signal reached init within 5 s of the KEY_POWER press"
signal=$(cat "$root/run/init.signal")
[[ $signal == *SIGUSR2* ]] || fail "init got '$signal', not busybox poweroff's SIGUSR2"
grep -q 'power button pressed' "$root/dev/console" || fail "the handler printed nothing on the console"
echo "KEY_POWER -> acpid -> /etc/acpi/power-button -> poweroff -> $signal"
echo "console: $(cat "$root/dev/console")"
echo "PASS $NAME"
