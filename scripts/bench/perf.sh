#!/usr/bin/env bash
# Performance at scale (#17), before and after in one run: the binaries and probe of the
# commit before the work (built once by scripts/bench/before.sh, outside the checkout), then
# this checkout's release build, through the same benchmarks. Prints the Markdown section of
# docs/BENCHMARKS.md; the raw JSON stays in the directory named on stderr.
# Usage (as root): scripts/bench/perf.sh [INSTANCES]   (default 1000)
set -euo pipefail
cd "$(dirname "$0")/../.."
instances=${1:-1000}
runs=20
venv=${KEC2_VENV:-/var/cache/kec2/venv}
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import boto3' 2>/dev/null; then
  python3 -m venv "$venv" && "$venv/bin/pip" install --quiet boto3==1.44.18 awscli==1.46.3 >&2
fi
cargo build --release --workspace --locked >&2
images/build.sh probe >&2
before_commit=441de10
before=$(scripts/bench/before.sh "$before_commit")
perf=$(mktemp -d /tmp/kec2-perf-XXXXXX)
echo "raw figures: $perf" >&2
ulimit -n "$(ulimit -Hn)"
for which in before after; do
  if [[ $which == before ]]; then
    bin=$before/bin probe=$before/images/probe
  else
    bin=$(pwd)/target/release probe=$(pwd)/images/out/probe
  fi
  # Each figure is best effort: one that fails shows as "-" and the others still run.
  BENCH=target/release/agent-bench scripts/bench/scale.sh "$bin" "$probe/manifest.json" \
    "$instances" >"$perf/$which-scale.json" || true
  "$venv/bin/python" scripts/bench/idle_bench.py "$bin" "$probe/manifest.json" "$instances" 60 \
    >"$perf/$which-idle.json" || true
  # The raw-frame source and sink are new in the probe: both vmms run this probe.
  python3 scripts/bench/net_frames.py "$bin/vmm" images/out/probe/probe.elf \
    >"$perf/$which-frames.json" || true
  python3 scripts/bench/virtio_bench.py "$bin/vmm" images/out/probe/probe.elf \
    >"$perf/$which-disk.json" || true
  AGENT_BENCH=target/release/agent-bench python3 scripts/bench/snapshot_pause.py "$bin" \
    "$probe/manifest.json" 1 3 >"$perf/$which-snapshot.json" || true
  python3 scripts/bench/vmm_start.py "$bin/vmm" "$probe/probe.elf" "$runs" \
    >"$perf/$which-start.json" || true
done
after_commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cat <<MD
## Performance at scale (#17): before and after, in one run
Command: \`scripts/bench/perf.sh $instances\` on $(date -u +%Y-%m-%d), $(nproc) cores. It runs each
benchmark with the binaries and probe of commit $before_commit (built by
\`scripts/bench/before.sh\`), then with those of $after_commit:
\`scripts/bench/scale.sh BIN_DIR MANIFEST $instances\`, \`scripts/bench/idle_bench.py BIN_DIR MANIFEST $instances 60\`,
\`scripts/bench/net_frames.py VMM PROBE_ELF\` (this probe for both: its raw-frame mode is new),
\`scripts/bench/virtio_bench.py VMM PROBE_ELF\`, \`scripts/bench/snapshot_pause.py BIN_DIR MANIFEST 1 3\`,
\`scripts/bench/vmm_start.py VMM PROBE_ELF $runs\`.

$(python3 scripts/bench/perf_report.py "$perf" "$before_commit" "$after_commit")

Launch: each batch is one RunInstances of 100 t2.nano probes, timed until all of them run,
with the agent in a network namespace of its own and the public pool a /16. Idle: the same
number of probes, once every one has its lease and has read its metadata, measured over 60 s
(one instance status check each); host busy is the whole machine's share from /proc/stat,
the vmm and agent shares their own CPU time. Frames: raw Ethernet frames from the probe's
\`probe.frames=\` source and sink through virtio-net and the tap, against an AF_PACKET sender
and receiver over a veth pair between two namespaces. Snapshot: CreateSnapshot of a running
probe's 1 GiB data volume full of random data; the pause is what the agent recorded.
MD
