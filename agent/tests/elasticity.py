"""The seeds' last step as a user walks it with boto3: an Auto Scaling group (min 2, max 6) from
a launch template behind an application load balancer. Both probes' pages are served through
the load balancer in turn; when one probe's vmm is killed, the load balancer stops sending to
it with no failed request beyond the one that may be in flight, the group replaces it, and the
replacement is registered and served; with HealthCheckType=ELB, an instance failing the target
group's check (a matcher no page meets) is replaced too.

    elasticity.py ENDPOINT STATE_DIR MANIFEST NETNS      (prints "elasticity: ok")
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time

from aws_clients import keys_of, session

endpoint, state_dir, manifest, netns = sys.argv[1:5]
s = session(keys_of(state_dir))
ec2 = s.client("ec2", endpoint_url=endpoint)
elb = s.client("elbv2", endpoint_url=endpoint)
asg = s.client("autoscaling", endpoint_url=endpoint)
T0 = time.time()


def log(*a):
    print(f"[{time.time() - T0:6.1f}s]", *a, flush=True)


def wait_for(what, check, timeout):
    end = time.time() + timeout
    while time.time() < end:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    acts = asg.describe_scaling_activities(AutoScalingGroupName="web")["Activities"][:6]
    raise AssertionError(f"timed out waiting for {what}; health {health()}; activities "
                         + "; ".join(f"{a['StatusCode']}: {a['Description']}" for a in acts))


def health():
    return {d["Target"]["Id"]: d["TargetHealth"]["State"]
            for d in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]}


def healthy():
    return sorted(i for i, state in health().items() if state == "healthy")


def get(path="/"):
    """One request through the load balancer from the agent's namespace: (ok, body)."""
    out = subprocess.run(["ip", "netns", "exec", netns, "curl", "-sS", "--max-time", "5",
                          "-o", "-", "-w", "\n%{http_code}", f"http://{lb_ip}{path}"],
                         capture_output=True, text=True, timeout=30)
    body, _, code = out.stdout.rpartition("\n")
    return out.returncode == 0 and code == "200", body.strip() or out.stderr.strip()


def vmm_pid(iid):
    db = sqlite3.connect(os.path.join(state_dir, "state.db"))
    try:
        return db.execute("SELECT pid FROM instances WHERE id = ?", (iid,)).fetchone()[0]
    finally:
        db.close()


ami = ec2.register_image(Name="probe", ImageLocation=manifest)["ImageId"]
vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
# The load balancer's group may reach the instances' port 80; nothing else may.
lb_sg = ec2.create_security_group(GroupName="lb", Description="load balancer")["GroupId"]
web_sg = ec2.create_security_group(GroupName="web", Description="web servers")["GroupId"]
ec2.authorize_security_group_ingress(GroupId=web_sg, IpPermissions=[{
    "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
    "UserIdGroupPairs": [{"GroupId": lb_sg}]}])
ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
    "ImageId": ami, "InstanceType": "t2.nano", "SecurityGroupIds": [web_sg]})
tg = elb.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=vpc,
                             HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                             HealthyThresholdCount=2, UnhealthyThresholdCount=2,
                             )["TargetGroups"][0]["TargetGroupArn"]
# Deregistered targets drain for 5 s rather than ELB's default 300.
elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
    {"Key": "deregistration_delay.timeout_seconds", "Value": "5"}])
lb = elb.create_load_balancer(Name="web", Subnets=[subnet], SecurityGroups=[lb_sg],
                              )["LoadBalancers"][0]
elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                    DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
elb.get_waiter("load_balancer_available").wait(LoadBalancerArns=[lb["LoadBalancerArn"]],
                                               WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def hosts():
    """The agent's names file: the load balancer's DNS name to its address."""
    try:
        with open(os.path.join(state_dir, "elb", "hosts")) as f:
            return dict(line.split()[::-1] for line in f if line.strip())
    except FileNotFoundError:
        return {}


lb_ip = wait_for("the load balancer's name", lambda: hosts().get(lb["DNSName"]), 30)
asg.create_auto_scaling_group(
    AutoScalingGroupName="web", LaunchTemplate={"LaunchTemplateName": "web"}, MinSize=2,
    MaxSize=6, DesiredCapacity=2, VPCZoneIdentifier=subnet, TargetGroupARNs=[tg],
    HealthCheckType="ELB", HealthCheckGracePeriod=60)

# Both instances healthy behind the load balancer, each serving its own page in turn.
first = wait_for("two healthy targets", lambda: len(healthy()) == 2 and healthy(), 180)
members = sorted(i["InstanceId"] for i in asg.describe_auto_scaling_groups(
    AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]["Instances"])
assert first == members, (first, members)
pages = [get() for _ in range(8)]
assert all(ok for ok, _ in pages), pages
assert sorted(set(body for _, body in pages)) == first, pages
log("both pages through the load balancer:", [body for _, body in pages[:4]])

# One vmm killed: requests go on to the other with none failed but the one in flight, and
# none reaches the dead one; soon the group's replacement answers too.
victim, survivor = first
os.kill(vmm_pid(victim), signal.SIGKILL)
killed = time.time()
failures, answers = [], []
while time.time() - killed < 120 and not set(answers) - {survivor}:
    ok, body = get()
    (answers if ok else failures).append(body)
    time.sleep(0.2)
assert len(failures) <= 1, failures
assert victim not in answers, answers
assert set(answers) - {survivor}, f"no replacement answered within 120 s: {answers}"
log(f"vmm of {victim} killed: {len(answers)} answers, {len(failures)} failed, a new instance "
    f"answering after {time.time() - killed:.1f} s", failures)

# The group replaces it; the replacement is registered, checked and served.
replacement = wait_for("a healthy replacement",
                       lambda: [i for i in healthy() if i not in first], 180)[0]
wait_for("the victim drained out of the target group", lambda: victim not in health(), 60)
seen = {get()[1] for _ in range(10)}
assert seen == {survivor, replacement}, seen


def termination():
    acts = asg.describe_scaling_activities(AutoScalingGroupName="web")["Activities"]
    done = [a for a in acts if a["Description"] == f"Terminating EC2 instance: {victim}"
            and a["StatusCode"] == "Successful"]
    return done and done[0]


terminated = [wait_for("the victim's termination activity", termination, 30)]
assert "was taken out of service in response to an EC2 health check" in terminated[0]["Cause"], \
    terminated[0]["Cause"]
log("replaced by", replacement, "; cause:", terminated[0]["Cause"][:160])

# HealthCheckType=ELB: once past the grace period, an instance the target group's check fails
# (here a matcher no page can meet, while EC2's status checks pass) is replaced too.
asg.update_auto_scaling_group(AutoScalingGroupName="web", HealthCheckGracePeriod=0)
elb.modify_target_group(TargetGroupArn=tg, Matcher={"HttpCode": "201"})


def elb_replacement():
    acts = asg.describe_scaling_activities(AutoScalingGroupName="web")["Activities"]
    return [a for a in acts if "ELB system health check failure" in a["Cause"]]


replaced = wait_for("a replacement for a failed ELB health check", elb_replacement, 120)
elb.modify_target_group(TargetGroupArn=tg, Matcher={"HttpCode": "200"})
wait_for("two healthy targets again", lambda: len(healthy()) == 2, 180)
log("ELB health check replacement:", replaced[0]["Description"], "/", replaced[0]["Cause"][:120])

asg.delete_auto_scaling_group(AutoScalingGroupName="web", ForceDelete=True)
elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
print("elasticity: ok")
