#!/usr/bin/env python3
"""The "Performance at scale (#17)" section of docs/BENCHMARKS.md, before and after in one run.

Usage: perf_report.py DIR BEFORE_COMMIT AFTER_COMMIT
DIR holds the JSON that scripts/bench.sh wrote for each benchmark, as before-NAME.json and
after-NAME.json (NAME: scale, idle, frames, disk, snapshot, start). A figure whose file is
missing or failed is shown as "-". Prints Markdown.
"""
import json
import os
import sys


def load(directory, which, name):
    try:
        with open(os.path.join(directory, f"{which}-{name}.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def dig(data, *path):
    for key in path:
        if isinstance(data, dict) and key in data:
            data = data[key]
        elif isinstance(data, list) and isinstance(key, int) and -len(data) <= key < len(data):
            data = data[key]
        else:
            return None
    return data


def fmt(value, digits=2):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def row(label, before, after, target=""):
    return f"| {label} | {before} | {after} | {target} |"


def scale_rows(b, a):
    out = []
    for name, path, target in [
        ("launch rate, first batch of 100 (instances/s per core)",
         ("scale", "batches", 0, "instances_per_s_per_core"), "10"),
        ("launch rate, last batch (instances/s per core)",
         ("scale", "batches", -1, "instances_per_s_per_core"), "10"),
        ("slowest batch (instances/s per core)", ("scale", "min_instances_per_s_per_core"), "10"),
        ("ms per instance, first batch", ("scale", "batches", 0, "ms_per_instance"), ""),
        ("ms per instance, last batch", ("scale", "batches", -1, "ms_per_instance"), ""),
        ("last batch's cost over the first's", ("scale", "last_over_first_ms_per_instance"),
         "1.5"),
        ("agent CPU ms per instance, last batch",
         ("scale", "batches", -1, "agent_cpu_ms_per_instance"), ""),
        ("agent restart with all of them running (s)", ("scale", "agent_restart_s"), ""),
        ("DescribeInstances of 10,000 rows, p50 (ms)",
         ("describe_instances", "all_10000", "p50_ms"), "25"),
        ("DescribeInstances of 10,000 rows, p99 (ms)",
         ("describe_instances", "all_10000", "p99_ms"), ""),
    ]:
        out.append(row(name, fmt(dig(b, *path)), fmt(dig(a, *path)), target))
    rates = lambda d: ", ".join(fmt(x.get("instances_per_s"), 1) for x in dig(d, "scale", "batches") or [])
    out.append(row("each batch's rate (instances/s)", rates(b) or "-", rates(a) or "-", ""))
    return out


def idle_rows(b, a):
    return [row(name, fmt(dig(b, key), 3), fmt(dig(a, key), 3), target) for name, key, target in [
        ("vmm processes' CPU (% of the host's cores)", "vmm_cpu_pct_of_host", ""),
        ("the agent's CPU (% of the host's cores)", "agent_cpu_pct_of_host", ""),
        ("whole host busy (%)", "host_busy_pct", "2"),
        ("vmm wake-ups per second per instance", "vmm_wakeups_per_s_per_instance", ""),
        ("host memory per instance beyond its guest pages (MiB)",
         "host_used_minus_guest_mib_per_instance", "4"),
        ("vmm PSS beyond guest pages, median (MiB)", "vmm_pss_minus_guest_mib_median", ""),
        ("guest pages touched, median (MiB)", "guest_touched_mib_median", ""),
    ]]


def frames_rows(b, a):
    out = []
    for size in ("64", "1514"):
        for way in ("probe_to_host", "host_to_probe"):
            label = f"{size}-byte frames, {way.replace('_', ' ')}: frames/s (ratio to veth)"
            cell = lambda d: (f"{fmt(dig(d, 'frames', size, way, 'fps'), 0)} "
                              f"({fmt(dig(d, 'frames', size, 'ratio_' + way))})")
            out.append(row(label, cell(b), cell(a), "0.7"))
        out.append(row(f"{size}-byte frames, veth: frames/s",
                       fmt(dig(b, "frames", size, "veth", "fps"), 0),
                       fmt(dig(a, "frames", size, "veth", "fps"), 0), ""))
    gso = lambda d: fmt(dig(d, "frames", "65549", "probe_to_host", "mbps"), 0)
    out.append(row("64 KiB GSO segments, probe to host (MB/s)", gso(b), gso(a), ""))
    return out


def disk_rows(b, a):
    out = []
    for name in ("seq-write", "seq-read", "rand-write", "rand-read"):
        cell = lambda d: f"{fmt(dig(d, 'disk', name, 'probe'), 0)} ({fmt(dig(d, 'disk', name, 'ratio'))})"
        out.append(row(f"disk {name}: probe (ratio to the host)", cell(b), cell(a), "0.7"))
    return out


def main():
    directory, before_commit, after_commit = sys.argv[1:4]
    get = lambda name: (load(directory, "before", name), load(directory, "after", name))
    lines = [f"| figure | before ({before_commit}) | after ({after_commit}) | target |",
             "| --- | --- | --- | --- |"]
    lines += scale_rows(*get("scale"))
    lines += idle_rows(*get("idle"))
    lines += frames_rows(*get("frames"))
    lines += disk_rows(*get("disk"))
    b, a = get("snapshot")
    lines.append(row("running instance's pause for a snapshot of its 1 GiB volume (ms, median)",
                     fmt(dig(b, "running_pause_ms_median")),
                     fmt(dig(a, "running_pause_ms_median")), "20"))
    b, a = get("start")
    lines.append(row("vmm start to the first guest output, jailed, median (ms)",
                     fmt(dig(b, "first_byte_ms_median")), fmt(dig(a, "first_byte_ms_median")),
                     "10"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
