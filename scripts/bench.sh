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
virtio_json=$(python3 scripts/bench/virtio_bench.py target/release/vmm images/out/probe/probe.elf)
snap_json=$(python3 scripts/bench/snapshot_bench.py target/release/vmm images/out/probe/probe.elf "$runs")
sfield() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); [d:=d[k] for k in sys.argv[2:]]; print(d)' "$snap_json" "$@"; }
agent_json=$(target/release/agent-bench --manifest images/out/probe/manifest.json)
afield() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); [d:=d[k] for k in sys.argv[2:]]; print(round(d, 2) if isinstance(d, float) else d)' "$agent_json" "$@"; }
vfield() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); [d:=d[k] for k in sys.argv[2:]]; print(d)' "$virtio_json" "$@"; }

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

# The part measured by other commands (after its heading) is kept as it is.
kept=$(sed -n '/^# Measured by other commands$/,$p' docs/BENCHMARKS.md 2>/dev/null || true)
cat >docs/BENCHMARKS.md <<MD
# Benchmarks

Produced by \`scripts/bench.sh $runs\` on $(date -u +%Y-%m-%d), commit $commit.
Machine: $(nproc) cores ($cpu), $mem, kernel $(uname -r). These machines have a paravirtual
KVM without hardware virtualization (see README); the probe runs at CPL3, natively.

## VMM start and memory
Command: \`python3 scripts/bench/vmm_start.py target/release/vmm images/out/probe/probe.elf $runs\`

| figure | result | target |
| --- | --- | --- |
| \`vmm\` process start to the probe's first console byte, jailed (\`--jail\`, seccomp), median of $runs (1 vCPU, 128 MiB) | $(field first_byte_ms_median) ms (min $(field first_byte_ms_min), max $(field first_byte_ms_max)) | under 10 ms |
| the same with seccomp only (no \`--jail\`) | $(field seccomp_ms_median) ms (min $(field seccomp_ms_min), max $(field seccomp_ms_max)) | |
| the same unconfined (\`--no-seccomp\`, no \`--jail\`): the cost of the jail is the difference | $(field unconfined_ms_median) ms (min $(field unconfined_ms_min), max $(field unconfined_ms_max)) | |
| VMM memory overhead: RSS minus guest pages touched (1 vCPU, 128 MiB, idle probe) | $(python3 -c "print(f'{$(field overhead_kib) / 1024:.2f}')") MiB ($(field rss_kib) KiB RSS, $(field guest_touched_kib) KiB of guest pages) | under 4 MiB |

The start time is measured from just before \`fork\`/\`exec\` of the vmm (in Python's
\`subprocess\`) to the first byte read from its stdout, which the probe writes as its first
action; it covers KVM and memory setup, loading the ELF, the boot structures, the vCPU and the
first guest instructions. The RSS counts everything resident in the process, shared libraries
included, from \`/proc/PID/smaps\`.

## virtio-blk and virtio-net from the probe
Command: \`python3 scripts/bench/virtio_bench.py target/release/vmm images/out/probe/probe.elf\`

| figure | probe | host | ratio | target |
| --- | --- | --- | --- | --- |
| sequential write, 1 MiB requests (MB/s) | $(vfield disk seq-write probe) | $(vfield disk seq-write host) | $(vfield disk seq-write ratio) | 0.70 |
| sequential read, 1 MiB requests (MB/s) | $(vfield disk seq-read probe) | $(vfield disk seq-read host) | $(vfield disk seq-read ratio) | 0.70 |
| random write, 4 KiB (IOPS) | $(vfield disk rand-write probe) | $(vfield disk rand-write host) | $(vfield disk rand-write ratio) | 0.70 |
| random read, 4 KiB (IOPS) | $(vfield disk rand-read probe) | $(vfield disk rand-read host) | $(vfield disk rand-read ratio) | 0.70 |
| TCP, probe to host over the tap vs. namespace to namespace over veth (MB/s) | $(vfield net probe_tap_mbps) | $(vfield net veth_mbps) | $(vfield net ratio) | 0.70 |

Disk: the probe's \`probe.disk=bench\` (1 MiB requests 4 in flight, 4 KiB requests 32 in flight,
2 s each, on the first 64 MiB of a file) against \`fio --ioengine=psync --invalidate=0\` on the
same file, both through the host's page cache. Network: 256 MiB from the probe's TCP source
(port 19, smoltcp, 1500-byte frames, no offloads) to a reader on the tap's host side, against a
Python sender and reader on a veth pair between two namespaces. The probe path pays a VM exit
per notification batch and a thread hand-off per completion; these figures are below the
target and are reported as measured.

## Snapshot and restore (hibernation)
Command: \`python3 scripts/bench/snapshot_bench.py target/release/vmm images/out/probe/probe.elf $runs\`

| figure | result |
| --- | --- |
| \`snapshot\` of a running $(sfield mem_mib) MiB, 1-vCPU counting probe, as the vmm reports it (\`took_ms\`), median of $runs | $(sfield snapshot_took_ms median) ms (min $(sfield snapshot_took_ms min), max $(sfield snapshot_took_ms max)) |
| the same request's round trip on the control socket | $(sfield snapshot_round_trip_ms median) ms (min $(sfield snapshot_round_trip_ms min), max $(sfield snapshot_round_trip_ms max)) |
| \`vmm --restore\` spawn to the control socket reporting \`running\`, median of $runs | $(sfield restore_ms median) ms (min $(sfield restore_ms min), max $(sfield restore_ms max)) |
| snapshot file: length / space on disk | $(sfield file_bytes) / $(sfield allocated_bytes) bytes |

A snapshot pauses the VM, holds the device thread, reads every vCPU's state, and writes the
file with all-zero memory pages as holes (never-touched pages are not even read), then fsyncs
it, renames it and fsyncs the directory. A restore verifies the CRC-32 of the whole file (holes
are hashed without being read) before loading memory and the KVM and device state. The probe
touches little of its memory, so these are the fixed costs; a guest that dirtied all its memory
adds the time to read, hash and write that much data. Most of a snapshot's time is the fsync of
the file and of its directory, which varies with the host disk's load (other builds and tests ran
on this machine); the vCPUs and devices are captured in well under a millisecond, and the memory
image written in about 4 ms (\`VMM_LOG=vmm=debug\` logs the phases).

## The agent
Command: \`target/release/agent-bench --manifest images/out/probe/manifest.json\`

| figure | result | target |
| --- | --- | --- |
| RunInstances of $(afield launch instances) probe instances (one call) until all are running | $(afield launch all_running_s) s, $(afield launch instances_per_s) instances/s ($(afield launch instances_per_s_per_core) per core) | 10 per second per core |
| the same with \`agent --no-jail\` (VMMs unconfined: no uid, namespace, cgroup or seccomp), in the same run | $(afield launch_unjailed all_running_s) s, $(afield launch_unjailed instances_per_s) instances/s ($(afield launch_unjailed instances_per_s_per_core) per core) | |
| DescribeInstances, all of $(afield describe_instances rows) rows, p50 / p99 | $(afield describe_instances all_10000 p50_ms) / $(afield describe_instances all_10000 p99_ms) ms | under 50 ms |
| DescribeInstances, a page of 1,000 (MaxResults), p50 / p99 | $(afield describe_instances page_of_1000 p50_ms) / $(afield describe_instances page_of_1000 p99_ms) ms | |
| DescribeInstances, a tag filter matching 1%, p50 / p99 | $(afield describe_instances tag_filter_1pct p50_ms) / $(afield describe_instances tag_filter_1pct p99_ms) ms | |
| DescribeInstances by instance id, p50 / p99 | $(afield describe_instances by_instance_id p50_ms) / $(afield describe_instances by_instance_id p99_ms) ms | |

The agent-bench starts its own agents in temporary state directories (real vmm processes on
KVM for the launch; rows written straight into the database for DescribeInstances) and kills
every VMM it started. The full 10,000-row answer is about 10 MB of XML. Each agent's instance
networking lives in a network namespace the benchmark makes and removes.

## Networking
Command: the same \`agent-bench\` run (its \`network\` part)

| figure | result | target |
| --- | --- | --- |
| IMDS from a probe: $(afield network imds requests) GETs of \`meta-data/instance-id\` with an IMDSv2 token, one new TCP connection each | $(afield network imds requests_per_s) requests/s, p50 $(afield network imds p50_ms) ms, p99 $(afield network imds p99_ms) ms | p99 under 2 ms |
| Security-group change: AuthorizeSecurityGroupIngress call (p50) | $(afield network security_group_change authorize_api_ms_p50) ms | |
| ...from the call to the first new connection that gets through (p50 / max of $(afield network security_group_change changes)) | $(afield network security_group_change authorize_to_first_connection_ms_p50) / $(afield network security_group_change authorize_to_first_connection_ms_max) ms | |
| RevokeSecurityGroupIngress: from the call until new connections are dropped (p50 / max) | $(afield network security_group_change revoke_to_refused_connection_ms_p50) / $(afield network security_group_change revoke_to_refused_connection_ms_max) ms | |

The metadata figures are the probe's own, timed with its TSC clock around each request
(connect, PUT-less GET with the token, response); the agent answers every request from the
database. A rule change rebuilds the agent's iptables chains and ipsets from the database and
swaps them in with \`iptables-restore\` before the API call returns.

## EBS snapshots
Command: the same \`agent-bench\` (its \`ebs\` part, \`--ebs-gib $(afield ebs volume_gib)\`)

| figure | result |
| --- | --- |
| CreateSnapshot of a $(afield ebs volume_gib) GiB volume of random data, until completed | $(afield ebs full_snapshot_s) s, $(afield ebs full_stored_bytes) bytes stored |
| second snapshot after $(afield ebs changed_pct)% changed (1 MiB in every 20), until completed | $(afield ebs incremental_snapshot_s) s, $(afield ebs incremental_new_bytes) new bytes stored ($(afield ebs incremental_new_pct)%) |
| CreateVolume from that snapshot (restore), until available | $(afield ebs restore_s) s |
| snapshot of a running probe's $(afield ebs volume_gib) GiB data volume (full of data): the instance's pause | $(afield ebs running_pause_ms) ms (whole snapshot $(afield ebs running_snapshot_s) s) |

A snapshot copies the volume at one point in time (sparsely: holes and zero chunks are
skipped) into a temporary file, with the instance paused through its control socket while it
runs, then hashes 1 MiB chunks (SHA-256) and stores the ones the store does not have; one
\`syncfs\` makes them durable before the database references them. A restore writes the chunks
into a new sparse file and checks each against its hash. The pause grows with the volume's
allocated data.
MD
if [[ -n $kept ]]; then
  printf '\n%s\n' "$kept" >>docs/BENCHMARKS.md
fi
cat docs/BENCHMARKS.md
