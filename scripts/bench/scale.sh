#!/usr/bin/env bash
# Launch cost at scale and DescribeInstances of 10,000 rows, for one build's binaries.
# Usage: scripts/bench/scale.sh BIN_DIR MANIFEST [INSTANCES]
#   BIN_DIR   directory holding that build's `agent` and `vmm` (e.g. target/release, or an
#             older build's, such as /var/cache/kec2/bench-before/bin)
#   MANIFEST  the probe image's manifest.json
#   INSTANCES instances launched in batches of 100 (default 1000)
# The measuring program is this checkout's target/release/agent-bench (override with BENCH=);
# it makes and removes its own network namespaces and kills every process it started.
# Prints one JSON object: `scale` (each batch's rate and cost per instance, the last batch's
# cost over the first's, an agent restart with all of them running) and
# `describe_instances` (p50/p99 of DescribeInstances variants over 10,000 rows).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin_dir=${1:?usage: scale.sh BIN_DIR MANIFEST [INSTANCES]}
manifest=${2:?usage: scale.sh BIN_DIR MANIFEST [INSTANCES]}
instances=${3:-1000}
bench=${BENCH:-target/release/agent-bench}
# A thousand instances: many descriptors and processes.
ulimit -n "$(ulimit -Hn)"
ulimit -u unlimited 2>/dev/null || true
exec "$bench" --bin-dir "$bin_dir" --manifest "$manifest" --launch 0 --imds-requests 0 \
  --ebs-gib 0 --scale "$instances" --scale-batch 100 --rows 10000 --samples 200
