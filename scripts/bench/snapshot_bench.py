#!/usr/bin/env python3
"""Snapshot and restore times of a 256 MiB, 1-vCPU counting probe.

Usage: snapshot_bench.py VMM PROBE_ELF [RUNS]
Prints one JSON object with the figures.

Snapshot: the `took_ms` the vmm reports for a `snapshot` request on the running probe (pause,
vCPU and device state, memory written, fsync, rename, directory fsync), and the request's
round trip as the client sees it; the probe is resumed between runs.
Restore: from spawning `vmm --restore` to the control socket answering `status` with
`running` (process start, file verification, memory load, KVM state, devices, vCPUs running).
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

MEM_MIB = "256"


def request(sock_path, body):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(sock_path)
        s.sendall((json.dumps(body) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.0005)
    raise SystemExit(f"timed out waiting for {what}")


def summary(values):
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def main():
    vmm, probe = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "boot.sock")
        log = os.path.join(tmp, "boot.log")
        snap = os.path.join(tmp, "vm.snap")
        proc = subprocess.Popen(
            [vmm, "--kernel", probe, "--mem-mib", MEM_MIB, "--cmdline", "probe.mode=count",
             "--api-sock", sock, "--serial-log", log],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: "probe: count 1" in open(log).read(), 10, "the probe to count")
            took, round_trip = [], []
            for _ in range(runs):
                start = time.perf_counter()
                answer = request(sock, {"action": "snapshot", "path": snap})
                round_trip.append((time.perf_counter() - start) * 1000)
                if not answer.get("ok"):
                    raise SystemExit(f"snapshot failed: {answer}")
                took.append(answer["snapshot"]["took_ms"])
                info = answer["snapshot"]
                request(sock, {"action": "resume"})
            request(sock, {"action": "stop"})
            proc.wait(timeout=30)
        finally:
            proc.kill()
            proc.wait()

        restore = []
        for i in range(runs):
            rsock = os.path.join(tmp, f"r{i}.sock")
            start = time.perf_counter()
            rproc = subprocess.Popen(
                [vmm, "--restore", snap, "--mem-mib", MEM_MIB, "--api-sock", rsock,
                 "--serial-log", os.path.join(tmp, f"r{i}.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_for(lambda: request(rsock, {"action": "status"})["status"]["state"]
                         == "running", 10, "the restored VM")
                restore.append((time.perf_counter() - start) * 1000)
                request(rsock, {"action": "stop"})
                rproc.wait(timeout=30)
            finally:
                rproc.kill()
                rproc.wait()
    print(json.dumps({
        "runs": runs,
        "mem_mib": int(MEM_MIB),
        "file_bytes": info["bytes"],
        "allocated_bytes": info["allocated_bytes"],
        "snapshot_took_ms": summary(took),
        "snapshot_round_trip_ms": summary(round_trip),
        "restore_ms": summary(restore),
    }))


if __name__ == "__main__":
    main()
