#!/usr/bin/env bash
# The main job on a fresh Debian machine (as root): installs what is needed, builds, makes the
# probe image, boots it, and drives a running microVM through its control socket.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh

echo "== building"
cargo build --release --workspace --locked
images/build.sh probe
vmm=target/release/vmm
ctl=target/release/vmm-ctl
probe=images/out/probe/probe.elf

echo
echo "== booting the probe: 2 vCPUs, 256 MiB, self-test, then power off"
"$vmm" --kernel "$probe" --vcpus 2 --mem-mib 256 --cmdline "probe.mode=selftest"

echo
echo "== a running microVM, driven through its control socket"
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$vmm" --kernel "$probe" --mem-mib 64 --cmdline "probe.mode=count" \
  --api-sock "$work/api.sock" --serial-log "$work/console.log" 2>"$work/vmm.log" &
pid=$!
for _ in $(seq 100); do [[ -S $work/api.sock ]] && break; sleep 0.05; done
sleep 2.2
echo "-- status:"; "$ctl" --api-sock "$work/api.sock" status
echo "-- pause for 2 s:"; "$ctl" --api-sock "$work/api.sock" pause >/dev/null
tail -n 1 "$work/console.log"; sleep 2; tail -n 1 "$work/console.log"
echo "-- resume:"; "$ctl" --api-sock "$work/api.sock" resume >/dev/null; sleep 1.2
tail -n 1 "$work/console.log"
echo "-- ctrl-alt-del:"; "$ctl" --api-sock "$work/api.sock" ctrl-alt-del >/dev/null
wait "$pid" || true
echo "-- console log:"; cat "$work/console.log"
echo "-- vmm:"; cat "$work/vmm.log"
