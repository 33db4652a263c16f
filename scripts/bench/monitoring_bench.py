#!/usr/bin/env python3
"""CloudWatch's costs on a real agent: sampling running probe instances, and GetMetricData
over a day of 1-minute data.

Usage: monitoring_bench.py BIN_DIR MANIFEST INSTANCES INTERVAL TICKS   (INSTANCES 0: only the
GetMetricData part)

Starts BIN_DIR/agent (in a network namespace of its own, public pool 10.200.0.0/16, sampling
every INTERVAL seconds), launches INSTANCES t2.nano probe instances (MANIFEST, in calls of
100), waits until all run and have been sampled, then measures over TICKS intervals:
- the agent's CPU time (utime + stime of its process) per instance per interval;
- each tick's duration, from the agent's own `instances sampled ... took_ms` log lines.
Then it puts a day of 1-minute points (1,440 each, as statistic sets) for 100 instance ids in
a custom namespace and times GetMetricData of all 100 (Period 60, one day, every page),
median of 5. Prints one JSON object; removes the instances, the agent, its namespace and its
state directory.
"""

import datetime
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

HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def keys(state_dir):
    text = open(os.path.join(state_dir, "credentials")).read()
    get = lambda k: re.search(rf"{k}\s*=\s*(\S+)", text).group(1)
    return get("aws_access_key_id"), get("aws_secret_access_key")


def main():
    bin_dir, manifest, count, interval, ticks = sys.argv[1:6]
    count, interval, ticks = int(count), int(interval), int(ticks)
    ns = f"kec2-bench-mon-{os.getpid()}"
    state = tempfile.mkdtemp(prefix="kec2-bench-mon-")
    subprocess.run(["ip", "netns", "add", ns], check=True)
    log = open(os.path.join(state, "agent.log"), "w")
    agent = subprocess.Popen(
        [f"{bin_dir}/agent", "--state-dir", state, "--listen", "127.0.0.1:0", "--vmm",
         f"{bin_dir}/vmm", "--netns", ns, "--outbound-nat", "false",
         "--public-pool", "10.200.0.0/16", "--metrics-interval", str(interval),
         "--max-vcpus", str(count + 16), "--max-memory-mib", str(600 * (count + 16))],
        env=dict(os.environ, AGENT_LOG="warn,agent::daemon=debug"),
        stdout=subprocess.DEVNULL, stderr=log)
    try:
        endpoint_file = os.path.join(state, "endpoint")
        deadline = time.time() + 30
        while not os.path.exists(endpoint_file):
            assert time.time() < deadline and agent.poll() is None, "the agent did not start"
            time.sleep(0.1)
        endpoint = open(endpoint_file).read().strip()
        key, secret = keys(state)
        session = boto3.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                region_name="local-1")
        ec2 = session.client("ec2", endpoint_url=endpoint)
        cw = session.client("cloudwatch", endpoint_url=endpoint)
        env = dict(os.environ, EC2_ENDPOINT=endpoint, AWS_ACCESS_KEY_ID=key,
                   AWS_SECRET_ACCESS_KEY=secret)
        ami = subprocess.run([f"{bin_dir}/ec2", "register-image", "--manifest", manifest],
                             env=env, check=True, capture_output=True, text=True).stdout.strip()
        if count == 0:
            print(json.dumps({"get_metric_data": get_metric_data_bench(cw, agent.pid)}))
            return
        t0 = time.time()
        ids = []
        while len(ids) < count:
            n = min(100, count - len(ids))
            r = ec2.run_instances(ImageId=ami, MinCount=n, MaxCount=n, InstanceType="t2.nano")
            ids += [i["InstanceId"] for i in r["Instances"]]
        # Until every instance is running or has failed to start (pending, then stopped).
        while True:
            states = {}
            for page in ec2.get_paginator("describe_instances").paginate():
                for r in page["Reservations"]:
                    for i in r["Instances"]:
                        states[i["State"]["Name"]] = states.get(i["State"]["Name"], 0) + 1
            if states.get("pending", 0) == 0:
                break
            assert time.time() - t0 < 1800, f"still starting: {states}"
            time.sleep(2)
        running = states.get("running", 0)
        launched_s = time.time() - t0
        # Two ticks so every instance has a track, then the measured ones.
        time.sleep(2 * interval + 1)
        log.flush()
        lines_before = open(os.path.join(state, "agent.log")).read().count("instances sampled")
        c0, w0 = cpu_seconds(agent.pid), time.time()
        time.sleep(ticks * interval)
        c1, w1 = cpu_seconds(agent.pid), time.time()
        text = open(os.path.join(state, "agent.log")).read()
        took = [float(m) for m in re.findall(
            rf"instances sampled instances={running} observations=\d+ took_ms=([0-9.]+)", text)]
        took = took[-max(1, ticks):]
        measured_ticks = (w1 - w0) / interval
        per_instance_ms = (c1 - c0) * 1e3 / measured_ticks / running
        sampling = {
            "instances": running, "launched": count, "interval_s": interval, "ticks": round(measured_ticks, 1),
            "launch_s": round(launched_s, 1),
            "agent_cpu_ms_per_instance_per_tick": round(per_instance_ms, 3),
            "agent_cpu_share_of_one_core": round((c1 - c0) / (w1 - w0), 4),
            "tick_ms_median": round(statistics.median(took), 1) if took else None,
            "tick_ms_max": round(max(took), 1) if took else None,
            "ticks_logged": len(took), "log_lines_before": lines_before,
        }
        ec2.terminate_instances(InstanceIds=ids[:1000])
        gmd = get_metric_data_bench(cw, agent.pid)
        print(json.dumps({"sampling": sampling, "get_metric_data": gmd}))
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.wait()
        subprocess.run(["pkill", "-KILL", "-f", state], check=False)
        time.sleep(0.5)
        subprocess.run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(state, ignore_errors=True)


def get_metric_data_bench(cw, agent_pid):
    """A day of 1-minute statistic sets for 100 instance ids, then GetMetricData of all: the
    client's wall time (boto3 decoding the CBOR included) and the agent's CPU time."""
    end = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
    start = end - datetime.timedelta(days=1)
    ids = [f"i-{n:017x}" for n in range(100)]
    t0 = time.time()
    for iid in ids:
        data = [{"MetricName": "CPUUtilization",
                 "Dimensions": [{"Name": "InstanceId", "Value": iid}],
                 "Timestamp": start + datetime.timedelta(minutes=m),
                 "StatisticValues": {"SampleCount": 60, "Sum": 60.0 * (m % 100),
                                     "Minimum": 0.0, "Maximum": 100.0},
                 "Unit": "Percent"} for m in range(1440)]
        for k in range(0, len(data), 1000):
            cw.put_metric_data(Namespace="Bench/EC2", MetricData=data[k:k + 1000])
    put_s = time.time() - t0
    queries = [{"Id": f"m{n}", "MetricStat": {
        "Metric": {"Namespace": "Bench/EC2", "MetricName": "CPUUtilization",
                   "Dimensions": [{"Name": "InstanceId", "Value": iid}]},
        "Period": 60, "Stat": "Average"}} for n, iid in enumerate(ids)]
    times, cpu, points = [], [], 0
    for _ in range(5):
        t, c = time.time(), cpu_seconds(agent_pid)
        points = 0
        token = None
        while True:
            args = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}
            if token:
                args["NextToken"] = token
            r = cw.get_metric_data(**args)
            points += sum(len(x["Values"]) for x in r["MetricDataResults"])
            token = r.get("NextToken")
            if not token:
                break
        times.append(time.time() - t)
        cpu.append(cpu_seconds(agent_pid) - c)
    return {"instances": 100, "points": points, "put_s": round(put_s, 1),
            "seconds_median": round(statistics.median(times), 3),
            "seconds_min": round(min(times), 3),
            "agent_cpu_s_median": round(statistics.median(cpu), 3)}


if __name__ == "__main__":
    main()
