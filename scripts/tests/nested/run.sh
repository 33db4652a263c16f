#!/usr/bin/env bash
# The nested test host: boots an L1 Debian guest in QEMU (software emulation with AMD SVM
# exposed, or KVM when this host has VT-x/AMD-V), whose /dev/kvm runs our vmm, and runs the
# journey (scripts/tests/nested/journey.sh) there against real Linux guests. See README.md.
#
#   scripts/tests/nested/run.sh [--bin-dir DIR] [--images-dir DIR] [--timeout SECS] [--images "linux debian"]
#
#   --bin-dir     where agent, ec2, vmm and vmm-ctl are (default: target/release of this checkout)
#   --images-dir  where the built images are (default: images/out of this checkout); each
#                 <name>/manifest.json there is carried in for the images asked for
#   --timeout     bound on the whole QEMU run (default 5400 s; 3000 s with linux alone)
#   --images      the images to run the journey on, in order (default "linux debian"; a
#                 missing one is skipped)
#
# Prints L1's console (the journey's PASS/FAIL/TIMING lines among it), then a summary; exits 0
# only when no step failed and "NESTED DONE" was seen. The serial log is kept in
# ${KEC2_CACHE:-/var/cache/kec2}/nested-logs/. Needs root (debootstrap, mkfs.ext4 -d file
# owners), qemu-system-x86, debootstrap and e2fsprogs; the L1 image is built once and cached
# (scripts/tests/nested/build-l1.sh). QEMU gets no network device: only L1's own addresses
# and loopback are used, nothing on this host's interfaces.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
bin_dir="$repo/target/release"
images_dir="$repo/images/out"
images="linux debian"
timeout_s=
while (($#)); do
  case $1 in
  --bin-dir) bin_dir=$2; shift 2 ;;
  --images-dir) images_dir=$2; shift 2 ;;
  --timeout) timeout_s=$2; shift 2 ;;
  --images) images=$2; shift 2 ;;
  -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "FAIL nested: $*"; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (the L1 image's file owners, mkfs.ext4 -d)"
for tool in qemu-system-x86_64 mkfs.ext4 debootstrap timeout; do
  command -v "$tool" >/dev/null || die "'$tool' is missing (scripts/install-deps.sh installs qemu-system-x86, debootstrap, e2fsprogs)"
done
for b in agent ec2 vmm vmm-ctl; do
  [[ -x $bin_dir/$b ]] || die "$bin_dir/$b is missing (cargo build --release)"
done
[[ -f $images_dir/linux/manifest.json ]] || die "$images_dir/linux is not built (images/build.sh linux)"

suite_t0=$(date +%s)
l1=$("$here/build-l1.sh") || die "could not build the L1 image"
echo "nested: L1 image $l1 (Linux $(cat "$l1/RELEASE"))"

tmp=$(mktemp -d /var/tmp/kec2-nested.XXXXXX)
qemu_pid=
cleanup() {
  if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
    kill "$qemu_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$qemu_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- the payload disk: binaries, images, the journey; room for the agent's state ----------
stage="$tmp/payload"
mkdir -p "$stage/bin" "$stage/images" "$stage/state"
for b in agent ec2 vmm vmm-ctl; do install -m 0755 "$bin_dir/$b" "$stage/bin/$b"; done
install -m 0755 "$here/l1-init.sh" "$stage/l1-init.sh"
install -m 0755 "$here/journey.sh" "$stage/journey.sh"
carried=()
for img in $images; do
  [[ -f $images_dir/$img/manifest.json ]] || { echo "nested: images/out/$img is not built: its journey is skipped"; continue; }
  cp -r --sparse=always "$images_dir/$img" "$stage/images/$img"
  carried+=("$img")
done
((${#carried[@]})) || die "none of the images '$images' is built"
# The journey's settings; it gets the run's bound less a margin for L1's boot and power-off.
: "${timeout_s:=$(((${#carried[@]} == 1) ? 3000 : 5400))}"
cat >"$stage/nested.env" <<ENV
NESTED_IMAGES="${carried[*]}"
NESTED_JOURNEY_TIMEOUT=$((timeout_s - 150))
ENV
data_mib=$(du -sm "$stage" | cut -f1)
payload_mib=$((data_mib + 8192))
truncate -s "${payload_mib}M" "$tmp/payload.ext4"
mkfs.ext4 -q -F -L kec2-payload -E root_owner=0:0 -d "$stage" "$tmp/payload.ext4" || die "mkfs.ext4 -d of the payload failed"
rm -rf "$stage"

# --- QEMU: KVM when this host has hardware virtualization, else TCG with SVM exposed --------
if [[ -w /dev/kvm ]] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
  accel=(-accel kvm -cpu host)
  mode="KVM (this host has hardware virtualization)"
else
  # thread=multi: one host thread per vCPU. With QEMU 7.2 L1's kernel panicked about one run
  # in four on a stale int3 of its own live code patching ("Oops: int3"); not seen with QEMU
  # 10, which scripts/install-deps.sh installs. thread=single (KEC2_NESTED_TCG_THREAD=single)
  # is far slower.
  accel=(-accel "tcg,thread=${KEC2_NESTED_TCG_THREAD:-multi}" -cpu EPYC,+svm,+npt)
  mode="TCG software emulation (thread=${KEC2_NESTED_TCG_THREAD:-multi}) with AMD SVM exposed (no VT-x/AMD-V here)"
fi
logs="${KEC2_CACHE:-/var/cache/kec2}/nested-logs"
mkdir -p "$logs"

# boot_l1 ATTEMPT: runs QEMU until it ends or the bound passes, printing L1's console as it
# comes; leaves the console in $serial and sets timed_out. QEMU logs every CPU reset (and a
# triple fault's cause) to $tmp/qemu-debug.log, so an L1 that ends without powering off says
# why.
boot_l1() {
  serial="$tmp/serial-$1.log"
  : >"$serial"
  : >"$tmp/qemu-debug.log"
  echo "nested: starting L1 ($mode), images: ${carried[*]}, bound ${timeout_s} s"
  qemu_t0=$(date +%s)
  qemu-system-x86_64 "${accel[@]}" -machine q35 -smp 2 -m 3072 -nic none -display none \
    -monitor none -serial "file:$serial" -no-reboot -d cpu_reset -D "$tmp/qemu-debug.log" \
    -kernel "$l1/vmlinuz" -initrd "$l1/initrd.img" \
    -append "console=ttyS0 root=/dev/vda rw init=/sbin/kec2-nested-init panic=-1 quiet loglevel=4" \
    -drive "file=$l1/root.ext4,format=raw,if=virtio,snapshot=on" \
    -drive "file=$tmp/payload.ext4,format=raw,if=virtio" \
    </dev/null >"$tmp/qemu.out" 2>&1 &
  qemu_pid=$!

  # Follow the console until QEMU ends or the bound passes.
  local deadline=$((qemu_t0 + timeout_s)) printed=0 l1_init= lines
  timed_out=0
  while :; do
    lines=$(wc -l <"$serial")
    if ((lines > printed)); then
      sed -n "$((printed + 1)),${lines}p" "$serial" | tr -d '\r'
      if [[ -z $l1_init ]] && sed -n "$((printed + 1)),${lines}p" "$serial" | grep -q '^L1 INIT'; then
        l1_init=$(($(date +%s) - qemu_t0))
        echo "TIMING l1 qemu-start-to-init $l1_init"
      fi
      printed=$lines
    fi
    kill -0 "$qemu_pid" 2>/dev/null || break
    if (($(date +%s) >= deadline)); then timed_out=1; break; fi
    sleep 1
  done
  if ((timed_out)); then
    echo "FAIL nested: L1 did not finish within $timeout_s s: QEMU killed"
    kill "$qemu_pid" 2>/dev/null || true
  fi
  wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=
  lines=$(wc -l <"$serial")
  ((lines > printed)) && sed -n "$((printed + 1)),${lines}p" "$serial" | tr -d '\r'
  grep -v "TCG doesn't support requested feature" "$tmp/qemu.out" | sed 's/^/qemu: /' || true
  local stamp
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  cp "$serial" "$logs/serial-$stamp.log"
  cp "$serial" "$logs/last-serial.log"
  cp "$tmp/qemu-debug.log" "$logs/qemu-debug-$stamp.log"
}

# reset_report: what QEMU logged about the resets after L1's first boot (none on a clean run:
# -no-reboot makes a reset end QEMU).
reset_report() {
  local n
  n=$(grep -c '^CPU Reset' "$tmp/qemu-debug.log" || true)
  echo "nested: QEMU logged $n CPU resets ($logs/qemu-debug-*.log); its last lines naming a cause:"
  grep -E 'Triple fault|^RIP=|^EIP=' "$tmp/qemu-debug.log" | tail -n 4 | sed 's/^/  /' || true
}

boot_l1 1
clean=$(tr -d '\r' <"$serial")
# L1 ending with nothing on its console (no FAIL, no panic, no NESTED DONE) is a reset of the
# emulated machine two levels below the product: seen about one run in five under TCG, always
# as an L2 guest starts. It is reported with QEMU's own account of it and run once more; a
# second one fails the test.
if ((timed_out == 0)) && ! grep -qx 'NESTED DONE' <<<"$clean" &&
  ! grep -qE '^\[ *[0-9.]+\] Kernel panic' <<<"$clean"; then
  echo "nested: L1 ended without 'NESTED DONE' and without a panic on its console (a reset)"
  reset_report
  [[ ${KEC2_NESTED_RETRY:-1} == 1 ]] || die "L1 was reset mid-run (KEC2_NESTED_RETRY=0: not run again)"
  echo "nested: running L1 once more"
  boot_l1 2
  clean=$(tr -d '\r' <"$serial")
fi

total=$(($(date +%s) - suite_t0))
echo "TIMING nested suite $total"
npass=$(grep -c '^PASS ' <<<"$clean" || true)
nfail=$(grep -c '^FAIL ' <<<"$clean" || true)
echo
echo "nested summary: $npass passed, $nfail failed, $total s in all (serial log: $logs/last-serial.log)"
grep '^FAIL ' <<<"$clean" || true
grep '^TIMING ' <<<"$clean" || true
((timed_out == 0)) || exit 1
grep -qE '^\[ *[0-9.]+\] Kernel panic' <<<"$clean" && echo "FAIL nested: L1's kernel panicked (above)"
if ! grep -qx 'NESTED DONE' <<<"$clean"; then
  reset_report
  die "no 'NESTED DONE' on L1's console: L1 stopped early"
fi
((nfail == 0 && npass > 0))
