#!/usr/bin/env python3
"""Elastic Load Balancing's data plane (HAProxy) and Auto Scaling's reaction, on a real agent.

Usage: elb_bench.py BIN_DIR MANIFEST SECONDS ROUNDS

Starts BIN_DIR/agent in a network namespace of its own, launches two t2.nano probe instances,
puts them in a target group behind an application load balancer with an HTTP listener, and
measures, with `wrk` run inside that namespace (no other address is used):
- requests per second and latency percentiles (8 connections; a probe serves 8 at once)
  through the load balancer to the two probes,
  against the same straight to one probe, ROUNDS rounds of SECONDS each, alternated;
- the time from a scale-out decision (SetDesiredCapacity on an Auto Scaling group whose
  instances register in the target group) to the new instance answering through the load
  balancer, median of three scale-outs.
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


def keys(state_dir):
    text = open(os.path.join(state_dir, "credentials")).read()
    get = lambda k: re.search(rf"{k}\s*=\s*(\S+)", text).group(1)
    return get("aws_access_key_id"), get("aws_secret_access_key")


def wait_for(what, check, timeout=120, every=0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(what)


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(ns, url, seconds):
    """Requests per second and p50/p99 in ms of `wrk` against `url` from namespace `ns`."""
    run = subprocess.run(["ip", "netns", "exec", ns, "wrk", "-t1", "-c8", f"-d{seconds}s",
                          "--latency", url], capture_output=True, text=True)
    assert run.returncode == 0, f"wrk {url}: {run.stdout} {run.stderr}"
    out = run.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    pct = {}
    for p, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        pct[p] = float(value) * UNITS[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50_ms": pct["50"], "p99_ms": pct["99"],
            "non_2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else ""}


def fetch(ns, url):
    out = subprocess.run(["ip", "netns", "exec", ns, "curl", "-s", "--max-time", "2", url],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else ""


def main():
    bin_dir, manifest, seconds, rounds = sys.argv[1:5]
    seconds, rounds = int(seconds), int(rounds)
    ns = f"kec2-bench-elb-{os.getpid()}"
    state = tempfile.mkdtemp(prefix="kec2-bench-elb-")
    subprocess.run(["ip", "netns", "add", ns], check=True)
    # wrk runs in the namespace and reaches the load balancer's address there, over `lo`.
    subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
    log = open(os.path.join(state, "agent.log"), "w")
    agent = subprocess.Popen(
        [f"{bin_dir}/agent", "--state-dir", state, "--listen", "127.0.0.1:0", "--vmm",
         f"{bin_dir}/vmm", "--netns", ns, "--outbound-nat", "false",
         "--public-pool", "10.201.0.0/16", "--metrics-interval", "5"],
        env=dict(os.environ, AGENT_LOG="warn"), stdout=subprocess.DEVNULL, stderr=log)
    try:
        endpoint_file = os.path.join(state, "endpoint")
        wait_for("the agent", lambda: os.path.exists(endpoint_file) or agent.poll(), 30, 0.1)
        endpoint = open(endpoint_file).read().strip()
        key, secret = keys(state)
        session = boto3.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                region_name="local-1")
        ec2 = session.client("ec2", endpoint_url=endpoint)
        elb = session.client("elbv2", endpoint_url=endpoint)
        asg = session.client("autoscaling", endpoint_url=endpoint)
        env = dict(os.environ, EC2_ENDPOINT=endpoint, AWS_ACCESS_KEY_ID=key,
                   AWS_SECRET_ACCESS_KEY=secret)
        ami = subprocess.run([f"{bin_dir}/ec2", "register-image", "--manifest", manifest],
                             env=env, check=True, capture_output=True, text=True).stdout.strip()
        group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
            "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
        ec2.create_launch_template(LaunchTemplateName="bench", LaunchTemplateData={
            "ImageId": ami, "InstanceType": "t2.nano"})
        tg = elb.create_target_group(Name="bench", Protocol="HTTP", Port=80, VpcId=vpc,
                                     HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                     HealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
        lb = elb.create_load_balancer(Name="bench", Subnets=[subnet])["LoadBalancers"][0]
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
        hosts_file = os.path.join(state, "elb", "hosts")
        names = lambda: dict(line.split()[::-1] for line in open(hosts_file) if line.strip()) \
            if os.path.exists(hosts_file) else {}
        lb_url = f"http://{wait_for('the name', lambda: names().get(lb['DNSName']), 30)}/"
        asg.create_auto_scaling_group(
            AutoScalingGroupName="bench", MinSize=0, MaxSize=6, DesiredCapacity=2,
            LaunchTemplate={"LaunchTemplateName": "bench"}, VPCZoneIdentifier=subnet,
            TargetGroupARNs=[tg])

        def healthy():
            states = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
            return [d["Target"]["Id"] for d in states if d["TargetHealth"]["State"] == "healthy"]

        first = wait_for("two healthy targets", lambda: len(healthy()) == 2 and healthy(), 180)
        one = ec2.describe_instances(InstanceIds=[first[0]])
        private = one["Reservations"][0]["Instances"][0]["PrivateIpAddress"]
        direct_url = f"http://{private}/"

        through_lb, direct = [], []
        for r in range(rounds):
            order = [(through_lb, lb_url), (direct, direct_url)]
            for results, url in (order if r % 2 == 0 else order[::-1]):
                results.append(wrk(ns, url, seconds))

        scale_out = []
        for desired in (3, 4, 5):
            before = {i["InstanceId"] for i in asg.describe_auto_scaling_groups(
                AutoScalingGroupNames=["bench"])["AutoScalingGroups"][0]["Instances"]}
            started = time.time()
            asg.set_desired_capacity(AutoScalingGroupName="bench", DesiredCapacity=desired)

            def new_instance_answers():
                page = fetch(ns, lb_url)
                return page.startswith("i-") and page not in before and page

            wait_for(f"instance {desired} through the load balancer", new_instance_answers, 300,
                     0.1)
            scale_out.append(time.time() - started)

        median = lambda rows, k: statistics.median(r[k] for r in rows)
        print(json.dumps({
            "seconds": seconds, "rounds": rounds,
            "through_lb": {"rps": median(through_lb, "rps"), "p50_ms": median(through_lb, "p50_ms"),
                           "p99_ms": median(through_lb, "p99_ms"), "runs": through_lb},
            "direct": {"rps": median(direct, "rps"), "p50_ms": median(direct, "p50_ms"),
                       "p99_ms": median(direct, "p99_ms"), "runs": direct},
            "scale_out_to_traffic_s": {"median": statistics.median(scale_out),
                                       "runs": scale_out},
        }))
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.wait()
        subprocess.run(["pkill", "-KILL", "-f", state], check=False)
        time.sleep(0.5)
        subprocess.run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(state, ignore_errors=True)

if __name__ == "__main__":
    main()
