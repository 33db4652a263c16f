#!/usr/bin/env python3
"""VMM benchmarks: start time to the probe's first console byte, and memory overhead.

Usage: vmm_start.py VMM PROBE_ELF [RUNS]
Prints one JSON object with the figures.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


# A uid and gid for the jailed runs that no account uses.
JAIL_ID = 1_999_000_002


def first_byte_ms(vmm, probe, extra=()):
    """Milliseconds from spawning the vmm (with `extra` flags) to the probe's first console
    byte."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [vmm, "--kernel", probe, "--mem-mib", "128", "--cmdline", "probe.mode=poweroff",
         *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    first = proc.stdout.read(1)
    elapsed = (time.perf_counter() - start) * 1000
    proc.stdout.read()
    proc.wait(timeout=30)
    if first != b"p":
        raise SystemExit(f"unexpected first console byte {first!r}")
    return elapsed


def rss_overhead(vmm, probe):
    """RSS of an idle 1-vCPU/128 MiB probe minus the guest pages it touched, in KiB."""
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "console.log")
        proc = subprocess.Popen(
            [vmm, "--kernel", probe, "--mem-mib", "128", "--cmdline", "probe.mode=count",
             "--serial-log", log],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.time() + 10
            while time.time() < deadline:
                if os.path.exists(log) and "probe: count 1" in open(log).read():
                    break
                time.sleep(0.05)
            else:
                raise SystemExit("the probe did not start counting")
            total = guest = 0
            size_kib = 0
            with open(f"/proc/{proc.pid}/smaps") as smaps:
                for line in smaps:
                    fields = line.split()
                    if len(fields) >= 5 and "-" in fields[0]:
                        lo, hi = (int(x, 16) for x in fields[0].split("-"))
                        size_kib = (hi - lo) // 1024
                    elif fields[0] == "Rss:":
                        rss = int(fields[1])
                        total += rss
                        # Guest RAM is the one 128 MiB anonymous mapping.
                        if size_kib == 128 * 1024:
                            guest += rss
            return {"rss_kib": total, "guest_touched_kib": guest, "overhead_kib": total - guest}
        finally:
            proc.kill()
            proc.wait()


def start_times(vmm, probe, runs, extra, prefix):
    """The median, min and max start time of `runs` starts with `extra` flags."""
    first_byte_ms(vmm, probe, extra)  # warm the page cache
    times = sorted(first_byte_ms(vmm, probe, extra) for _ in range(runs))
    return {
        f"{prefix}_median": round(statistics.median(times), 2),
        f"{prefix}_min": round(times[0], 2),
        f"{prefix}_max": round(times[-1], 2),
    }


def main():
    vmm, probe = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    result = {"runs": runs}
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "jail")
        os.mkdir(root)
        os.chown(root, JAIL_ID, JAIL_ID)
        jail = ("--jail", f"{root},uid={JAIL_ID},gid={JAIL_ID}")
        # In one run: unconfined, seccomp only (the default without --jail), fully jailed.
        result.update(start_times(vmm, probe, runs, ("--no-seccomp",), "unconfined_ms"))
        result.update(start_times(vmm, probe, runs, (), "seccomp_ms"))
        result.update(start_times(vmm, probe, runs, jail, "first_byte_ms"))
    result.update(rss_overhead(vmm, probe))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
