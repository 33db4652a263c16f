#!/usr/bin/env bash
# Runs the benchmarks and writes the results to docs/BENCHMARKS.md (the whole file is
# regenerated). Usage: scripts/bench.sh [RUNS]   (default 20 runs for timings)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh
runs=${1:-20}

cargo build --release --workspace --locked >&2
images/build.sh probe >&2

vmm_json=$(python3 scripts/bench/vmm_start.py target/release/vmm images/out/probe/probe.elf "$runs")
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$vmm_json" "$1"; }

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

cat >docs/BENCHMARKS.md <<MD
# Benchmarks

Produced by \`scripts/bench.sh $runs\` on $(date -u +%Y-%m-%d), commit $commit.
Machine: $(nproc) cores ($cpu), $mem, kernel $(uname -r). These machines have a paravirtual
KVM without hardware virtualization (see README); the probe runs at CPL3, natively.

## VMM start and memory
Command: \`python3 scripts/bench/vmm_start.py target/release/vmm images/out/probe/probe.elf $runs\`

| figure | result | target |
| --- | --- | --- |
| \`vmm\` process start to the probe's first console byte, median of $runs (1 vCPU, 128 MiB) | $(field first_byte_ms_median) ms (min $(field first_byte_ms_min), max $(field first_byte_ms_max)) | under 10 ms |
| VMM memory overhead: RSS minus guest pages touched (1 vCPU, 128 MiB, idle probe) | $(python3 -c "print(f'{$(field overhead_kib) / 1024:.2f}')") MiB ($(field rss_kib) KiB RSS, $(field guest_touched_kib) KiB of guest pages) | under 4 MiB |

The start time is measured from just before \`fork\`/\`exec\` of the vmm (in Python's
\`subprocess\`) to the first byte read from its stdout, which the probe writes as its first
action; it covers KVM and memory setup, loading the ELF, the boot structures, the vCPU and the
first guest instructions. The RSS counts everything resident in the process, shared libraries
included, from \`/proc/PID/smaps\`.
MD
cat docs/BENCHMARKS.md
