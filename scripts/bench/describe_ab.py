#!/usr/bin/env python3
"""DescribeInstances of several agent builds, interleaved request by request.

Usage: describe_ab.py ROUNDS NAME=DIR [NAME=DIR ...]

Each DIR is a checkout whose `target/release/` holds `agent-bench`, `agent` and `vmm`. For
each build, `agent-bench` fills a database with its 10,000 instance rows and starts an
agent on it (in a network namespace of its own); the bench is then paused, and this script
sends DescribeInstances (all rows, and a page of 1,000) to the agents in turn, alternating
the order each round, so that the machine's load falls on every build alike. It prints the
p50, p10 and p90 of each in ms (request sent to the last byte read, over loopback), then
stops the agents and the benches and removes their namespaces and state directories.
"""

import http.client
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

VARIANTS = {
    "all_10000": "Action=DescribeInstances&Version=2016-11-15",
    "page_of_1000": "Action=DescribeInstances&Version=2016-11-15&MaxResults=1000",
}


def start(build_dir, manifest):
    bench = subprocess.Popen(
        [f"{build_dir}/target/release/agent-bench", "--manifest", manifest, "--ebs-gib", "0",
         "--launch", "0", "--imds-requests", "0", "--samples", "1000000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        children = subprocess.run(["pgrep", "-a", "-P", str(bench.pid)],
                                  capture_output=True, text=True).stdout
        if "--state-dir " in children:
            state_dir = children.split("--state-dir ")[1].split()[0]
            if os.path.exists(f"{state_dir}/endpoint"):
                time.sleep(3)  # the bench's first requests; then it is paused
                os.kill(bench.pid, signal.SIGSTOP)
                return bench, state_dir
        time.sleep(0.2)
    bench.kill()
    sys.exit(f"{build_dir}: the agent did not start")


def client(state_dir):
    words = open(f"{state_dir}/credentials").read().split()
    endpoint = open(f"{state_dir}/endpoint").read().strip()
    return Credentials(words[3], words[6]), endpoint


def call(credentials, endpoint, body):
    signed = AWSRequest(method="POST", url=endpoint + "/", data=body,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    SigV4Auth(credentials, "ec2", "local-1").add_auth(signed)
    conn = http.client.HTTPConnection(endpoint.split("//")[1])
    t = time.perf_counter()
    conn.request("POST", "/", body=body, headers=dict(signed.headers.items()))
    response = conn.getresponse()
    response.read()
    elapsed = (time.perf_counter() - t) * 1000
    conn.close()
    if response.status != 200:
        sys.exit(f"DescribeInstances answered {response.status}")
    return elapsed


def main():
    rounds = int(sys.argv[1])
    builds = [a.split("=", 1) for a in sys.argv[2:]]
    manifest = os.path.abspath("images/out/probe/manifest.json")
    benches = {}
    try:
        for name, build_dir in builds:
            benches[name] = start(os.path.abspath(build_dir), manifest)
        clients = {name: client(state_dir) for name, (_, state_dir) in benches.items()}
        times = {(n, v): [] for n in clients for v in VARIANTS}
        for i in range(rounds):
            for variant, body in VARIANTS.items():
                order = list(clients) if i % 2 == 0 else list(clients)[::-1]
                for name in order:
                    times[(name, variant)].append(call(*clients[name], body))
        for variant in VARIANTS:
            for name in clients:
                t = sorted(times[(name, variant)])
                print(f"{variant:13s} {name:12s} p50 {statistics.median(t):7.1f} ms  "
                      f"p10 {t[len(t) // 10]:7.1f}  p90 {t[len(t) * 9 // 10]:7.1f}  (n={len(t)})")
    finally:
        for bench, state_dir in benches.values():
            stop(bench, state_dir)


def stop(bench, state_dir):
    """Stops a bench's agent and the bench, and removes what the bench would at its end."""
    agents = subprocess.run(["pgrep", "-P", str(bench.pid)], capture_output=True,
                            text=True).stdout.split()
    for pid in agents:
        os.kill(int(pid), signal.SIGTERM)
    bench.kill()
    bench.wait()
    time.sleep(1)
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True,
                                text=True).stdout.split("\n")
    for line in namespaces:
        if line.startswith(f"kec2-bench-{bench.pid}-"):
            subprocess.run(["ip", "netns", "del", line.split()[0]], check=False)
    shutil.rmtree(state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
