#!/usr/bin/env python3
"""What idle instances cost the host: CPU, wake-ups and memory of N idle probe instances.

Usage (as root): idle_bench.py BIN_DIR MANIFEST INSTANCES SECONDS

Starts BIN_DIR/agent in a network namespace of its own (public pool a /16), launches INSTANCES
t2.nano probe instances of MANIFEST in RunInstances calls of up to 100, waits until all are
running and have settled (DHCP and metadata done), then for SECONDS measures:
- the CPU time of every vmm process and of the agent (utime + stime from /proc, all threads),
  as a share of the host's cores, and the whole host's busy share from /proc/stat;
- the vmm threads' context switches per second (each is a wake-up);
- per instance: the host's memory in use (MemTotal - MemAvailable) grown by the launch, minus
  the guest pages touched, divided by INSTANCES (kernel structures, page tables, taps and the
  agent's share included); the vmm's proportional set size (PSS, shared pages counted by share) minus the
  guest pages it touched (the resident part of its guest-memory mapping), and the agent's RSS
  growth divided by INSTANCES.
Prints one JSON object; removes everything it made (instances, agent, namespace, state).
"""

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import boto3

TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
GUEST_MIB = 512  # t2.nano


def keys(state_dir):
    text = open(os.path.join(state_dir, "credentials")).read()
    get = lambda k: re.search(rf"{k}\s*=\s*(\S+)", text).group(1)
    return get("aws_access_key_id"), get("aws_secret_access_key")


def wait_for(what, check, timeout, every=0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(what)


def vmm_pids(state):
    """The pids of the vmm processes whose command line names the agent's state directory."""
    out = subprocess.run(["pgrep", "-f", f"vmm.*{state}"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def cpu_ticks(pid):
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime
    except (FileNotFoundError, ProcessLookupError):
        return 0


def switches(pid):
    """Context switches of every thread of `pid`: each one is a wake-up."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            for line in open(f"/proc/{pid}/task/{tid}/status"):
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


def host_busy():
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def memory_kib(pid):
    """(PSS, resident guest pages) of vmm `pid`, in KiB."""
    pss = guest = 0
    size_kib = 0
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if len(fields) >= 5 and "-" in fields[0]:
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                size_kib = (hi - lo) // 1024
            elif fields[0] == "Pss:":
                pss += int(fields[1])
            elif fields[0] == "Rss:" and size_kib == GUEST_MIB * 1024:
                guest += int(fields[1])
    return pss, guest


def host_used_kib():
    """The host's memory in use: MemTotal minus MemAvailable."""
    info = dict(line.split(":", 1) for line in open("/proc/meminfo"))
    kib = lambda k: int(info[k].split()[0])
    return kib("MemTotal") - kib("MemAvailable")


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def launch(ec2, ami, count):
    ids = []
    while len(ids) < count:
        n = min(100, count - len(ids))
        out = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=n, MaxCount=n)
        ids += [i["InstanceId"] for i in out["Instances"]]
    return ids


def running_count(ec2):
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-state-name", "Values": ["running"]}])
    return sum(len(r["Instances"]) for p in pages for r in p["Reservations"])


def measure(state, agent_pid, seconds):
    pids = vmm_pids(state)
    before = {p: (cpu_ticks(p), switches(p)) for p in pids}
    agent_before = cpu_ticks(agent_pid)
    busy0, total0 = host_busy()
    started = time.time()
    time.sleep(seconds)
    elapsed = time.time() - started
    busy1, total1 = host_busy()
    vmm_ticks = sum(cpu_ticks(p) - before[p][0] for p in pids)
    wakes = sum(switches(p) - before[p][1] for p in pids)
    cores = os.cpu_count()
    share = lambda ticks: ticks / TICKS / elapsed / cores * 100
    return {
        "vmms": len(pids),
        "vmm_cpu_pct_of_host": round(share(vmm_ticks), 3),
        "agent_cpu_pct_of_host": round(share(cpu_ticks(agent_pid) - agent_before), 3),
        "host_busy_pct": round((busy1 - busy0) / max(1, total1 - total0) * 100, 2),
        "vmm_wakeups_per_s_per_instance": round(wakes / elapsed / max(1, len(pids)), 3),
    }


def memory(pids, agent_pid, agent_rss_before, host_before, instances):
    rows = [memory_kib(p) for p in pids]
    overhead = [pss - guest for pss, guest in rows]
    guest_total = sum(g for _, g in rows)
    return {
        "host_used_minus_guest_mib_per_instance": round(
            (host_used_kib() - host_before - guest_total) / 1024 / instances, 2),
        "vmm_pss_minus_guest_mib_median": round(statistics.median(overhead) / 1024, 2),
        "vmm_pss_minus_guest_mib_max": round(max(overhead) / 1024, 2),
        "guest_touched_mib_median": round(statistics.median(g for _, g in rows) / 1024, 2),
        "agent_rss_growth_mib_per_instance": round(
            (rss_kib(agent_pid) - agent_rss_before) / 1024 / instances, 3),
    }


def main():
    bin_dir, manifest, instances, seconds = sys.argv[1:5]
    instances, seconds = int(instances), int(seconds)
    ns = f"kec2-bench-idle-{os.getpid()}"
    state = tempfile.mkdtemp(prefix="kec2-bench-idle-")
    subprocess.run(["ip", "netns", "add", ns], check=True)
    log = open(os.path.join(state, "agent.log"), "w")
    agent = subprocess.Popen(
        [f"{bin_dir}/agent", "--state-dir", state, "--listen", "127.0.0.1:0", "--vmm",
         f"{bin_dir}/vmm", "--netns", ns, "--outbound-nat", "false",
         "--public-pool", "10.200.0.0/16"],
        env=dict(os.environ, AGENT_LOG="warn"), stdout=subprocess.DEVNULL, stderr=log)
    try:
        endpoint_file = os.path.join(state, "endpoint")
        wait_for("the agent", lambda: os.path.exists(endpoint_file) or agent.poll(), 30, 0.1)
        endpoint = open(endpoint_file).read().strip()
        key, secret = keys(state)
        ec2 = boto3.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                            region_name="local-1").client("ec2", endpoint_url=endpoint)
        env = dict(os.environ, EC2_ENDPOINT=endpoint, AWS_ACCESS_KEY_ID=key,
                   AWS_SECRET_ACCESS_KEY=secret)
        ami = subprocess.run([f"{bin_dir}/ec2", "register-image", "--manifest", manifest],
                             env=env, check=True, capture_output=True, text=True).stdout.strip()
        agent_rss_before = rss_kib(agent.pid)
        host_before = host_used_kib()
        launch(ec2, ami, instances)
        wait_for("every instance running", lambda: running_count(ec2) == instances,
                 60 + instances, 2)
        time.sleep(20)  # DHCP, metadata and the first status checks
        result = {"instances": instances, "seconds": seconds}
        result.update(measure(state, agent.pid, seconds))
        result.update(memory(vmm_pids(state), agent.pid, agent_rss_before, host_before,
                             instances))
        print(json.dumps(result))
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.wait()
        subprocess.run(["pkill", "-KILL", "-f", state], check=False)
        time.sleep(1)
        subprocess.run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
