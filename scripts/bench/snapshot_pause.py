#!/usr/bin/env python3
"""EBS snapshots of a running instance: how long the instance is paused.

Usage (as root): snapshot_pause.py BIN_DIR MANIFEST [GIB] [ROUNDS]
Runs the `ebs` part of `agent-bench` (this checkout's, $AGENT_BENCH or
target/release/agent-bench) ROUNDS times (default 3) against the `agent` and `vmm` in BIN_DIR
(`agent-bench --bin-dir`), with a GIB (default 1) volume full of random data attached to a
running probe, and prints one JSON object: each round's `running_pause_ms` (the pause the
agent recorded for the snapshot) and `running_snapshot_s` (CreateSnapshot until completed),
and their medians.
"""
import json
import os
import subprocess
import sys


def main():
    bin_dir, manifest = sys.argv[1], sys.argv[2]
    gib = sys.argv[3] if len(sys.argv) > 3 else "1"
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    bench = os.environ.get("AGENT_BENCH", "target/release/agent-bench")
    pauses, totals = [], []
    for _ in range(rounds):
        out = subprocess.run(
            [bench, "--bin-dir", bin_dir, "--manifest", manifest, "--launch", "0", "--rows", "0",
             "--imds-requests", "0", "--ebs-gib", gib],
            check=True, capture_output=True, text=True, timeout=900,
        ).stdout
        ebs = json.loads(out)["ebs"]
        pauses.append(ebs["running_pause_ms"])
        totals.append(ebs["running_snapshot_s"])
    median = lambda xs: sorted(xs)[len(xs) // 2]
    print(json.dumps({
        "bin_dir": bin_dir, "volume_gib": int(gib),
        "running_pause_ms": pauses, "running_pause_ms_median": median(pauses),
        "running_snapshot_s": totals, "running_snapshot_s_median": median(totals),
    }))


if __name__ == "__main__":
    main()
