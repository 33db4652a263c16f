#!/usr/bin/env bash
# A genuine Debian kernel starts under the vmm: its early console shows the banner, exactly our
# command line, and an e820 map whose usable RAM is the 256 MiB we gave less the legacy hole.
#
#   scripts/tests/debian-kernel.sh VMM [--bzimage]
#
# The kernel comes from scripts/fetch-debian-kernel.sh (cached outside the checkout). By
# default the test boots the ELF vmlinux unpacked from the package's bzImage; --bzimage boots
# the bzImage itself (of the 6.1 series, see below), whose decompressor takes over a minute
# where KVM emulates guest kernel code. On such a host (no VT-x/AMD-V) the kernel then stops
# at an emulation failure, and the vmm must exit 2 saying so; on a host with hardware
# virtualization it goes on booting, and is stopped once the console checks pass. Prints
# "PASS debian-kernel" or "FAIL debian-kernel: <reason>" and exits 0 or 1. The boot is
# bounded by DEBIAN_KERNEL_TIMEOUT seconds (default 120).
#
# The e820 map the vmm gives 256 MiB (Linux prints inclusive ends):
#   usable    [0x0,      0x9fc00)     0x9fc00 bytes   (low RAM up to the EBDA)
#   reserved  [0x9fc00,  0xa0000)       0x400         (EBDA)
#   reserved  [0xe0000,  0x100000)    0x20000         (ACPI tables, BIOS area: MP table, SMBIOS)
#   usable    [0x100000, 0x10000000)  0xff00000       (RAM from 1 MiB to 256 MiB)
# usable = 0x9fc00 + 0xff00000 = 268041216 = 256 MiB - (0x100000 - 0x9fc00) = 268435456 - 394240.
set -euo pipefail

NAME=debian-kernel
CMDLINE="console=ttyS0 earlyprintk=ttyS0 reboot=k panic=-1 pci=off nomodule"
MEM_MIB=256
TIMEOUT="${DEBIAN_KERNEL_TIMEOUT:-120}"
# e820 as the vmm builds it: RAM from 0 up to the EBDA (0x9fc00), then from 1 MiB to the end.
LEGACY_HOLE=$((0x100000 - 0x9fc00))
EXPECTED_USABLE=$((MEM_MIB * 1024 * 1024 - LEGACY_HOLE))

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp=$(mktemp -d)
pid=

# shellcheck source=lib/vm-test.sh
source "$here/lib/vm-test.sh"

cleanup() {
  stop_vm
  rm -rf "$tmp"
}
trap cleanup EXIT

vmm="${1:-}"
format=elf
[[ ${2:-} == --bzimage ]] && format=bzimage
[[ -n $vmm ]] || fail "usage: $0 VMM [--bzimage]"
[[ -x $vmm ]] || fail "vmm binary '$vmm' is not executable"
[[ -e /dev/kvm ]] || fail "/dev/kvm is missing"

# The bzImage comes from the 6.1 series: it has an LZ4 decompressor, while the 6.12 kernels'
# zstd decompressor uses BMI2 instructions (shlx) that KVM's instruction emulator lacks, so
# without hardware virtualization it stops before the kernel proper starts.
fetch_args=(--elf)
[[ $format == bzimage ]] && fetch_args=(--series 6.1)
kernel=$(timeout 600 "$here/../fetch-debian-kernel.sh" "${fetch_args[@]}") ||
  fail "scripts/fetch-debian-kernel.sh could not provide the kernel"
[[ -f $kernel ]] || fail "the fetch script printed '$kernel', which is no file"
package=$(cat "$(dirname "$kernel")/PACKAGE" 2>/dev/null || true)
release=$(awk '{print $3}' <<<"$package")
echo "kernel: $kernel ($format; ${package:-unknown package})"

hw_virt=0
grep -qwE 'vmx|svm' /proc/cpuinfo && hw_virt=1

# The console checks, on the console log so far. Sets `why` when one does not hold yet.
check_console() {
  local log="$tmp/console.txt"
  [[ -f $tmp/console.log ]] || { why="no console output"; return 1; }
  tr -d '\r' <"$tmp/console.log" >"$log"
  local banner
  banner=$(grep -m 1 -o 'Linux version [^ ]*' "$log" || true)
  if [[ -z $banner ]]; then
    why="no 'Linux version' on the console"
    return 1
  fi
  if [[ -n $release && $banner != "Linux version $release" ]]; then
    why="the console shows '$banner', not the packaged kernel $release"
    return 2
  fi
  local line
  line=$(sed -n 's/^\(\[[ 0-9.]*\] \)\{0,1\}Command line: //p' "$log" | head -n 1)
  if [[ -z $line ]]; then
    why="no 'Command line:' on the console"
    return 1
  fi
  if [[ $line != "$CMDLINE" ]]; then
    why="the kernel's command line is '$line', not '$CMDLINE'"
    return 2
  fi
  # The map is complete once a line follows its last entry.
  if ! awk '/BIOS-e820:/ {seen = 1; next} seen {done = 1} END {exit !done}' "$log"; then
    why="the e820 map is not complete on the console yet"
    return 1
  fi
  local ranges
  ranges=$(sed -n 's/.*BIOS-e820: \[mem \(0x[0-9a-f]*\)-\(0x[0-9a-f]*\)\] usable.*/\1 \2/p' "$log")
  if [[ -z $ranges ]]; then
    why="no usable 'BIOS-e820:' range on the console"
    return 2
  fi
  local usable=0 start end
  while read -r start end; do
    usable=$((usable + end - start + 1)) # Linux prints inclusive ends
  done <<<"$ranges"
  if ((usable != EXPECTED_USABLE)); then
    why="the usable e820 ranges add up to $usable bytes, not $EXPECTED_USABLE ($MEM_MIB MiB less the $LEGACY_HOLE-byte legacy hole)"
    return 2
  fi
  return 0
}

start=$(date +%s%N)
elapsed_ms() { echo $((($(date +%s%N) - start) / 1000000)); }

timeout -k 5 "$TIMEOUT" "$vmm" --kernel "$kernel" --mem-mib "$MEM_MIB" --cmdline "$CMDLINE" \
  --serial-log "$tmp/console.log" 2>"$tmp/vmm.err" &
pid=$!

# Phase 1: wait for the console checks, the vmm's exit, or the deadline.
why="nothing on the console"
checked=
while kill -0 "$pid" 2>/dev/null; do
  rc=0
  check_console || rc=$?
  if ((rc == 0)); then
    checked=1
    break
  elif ((rc == 2)); then
    fail "$why"
  fi
  sleep 0.2
done
if [[ -z $checked ]]; then
  # The vmm ended first: a last look at what it left on the console.
  rc=0
  check_console || rc=$?
  ((rc == 0)) || {
    status=0
    wait "$pid" || status=$?
    pid=
    ((status == 124)) && fail "$why within ${TIMEOUT}s"
    fail "$why; the vmm exited $status: $(grep 'vmm: exit:' "$tmp/vmm.err" | tail -n 1)"
  }
fi
echo "console checks passed after $(elapsed_ms) ms (command line, e820 usable = $EXPECTED_USABLE bytes)"
grep 'BIOS-e820:' "$tmp/console.txt" | sed 's/^/  /'

# Phase 2: how the vmm ends. With hardware virtualization the kernel boots on (to a panic for
# want of a root file system, then a reset): give it a moment, then stop it.
if ((hw_virt)); then
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "the kernel is still running on this host with hardware virtualization; stopping it"
    echo "PASS $NAME"
    exit 0
  fi
fi
check_vm_exit
echo "PASS $NAME"
