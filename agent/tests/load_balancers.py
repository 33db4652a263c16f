"""Elastic Load Balancing v2 on a real agent through boto3's `elbv2` client and the `aws elbv2`
CLI: a target group with a probe instance, an application load balancer and its listener,
waiters, the probe's page fetched with curl in the agent's network namespace by the load
balancer's DNS name (resolved from the agent's hosts file), attributes, tags, rules, ELB's
error codes (changing nothing), and the teardown.

Usage: load_balancers.py ENDPOINT STATE_DIR AMI NETNS. Prints "elbv2: ok" on success."""

import json
import subprocess
import sys

from botocore.config import Config
from botocore.exceptions import ClientError

import aws_clients
from aws_clients import keys_of

endpoint, state_dir, ami, netns = sys.argv[1:5]
keys = keys_of(state_dir)
config = Config(retries={"max_attempts": 0})
session = aws_clients.session(keys)
ec2 = session.client("ec2", endpoint_url=endpoint, config=config)
elb = session.client("elbv2", endpoint_url=endpoint, config=config)


def code_of(fn, **kw):
    try:
        fn(**kw)
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError(f"{fn.__name__} should have failed")


def aws(args, ok=True):
    status, out, err = aws_clients.aws_cli(endpoint, keys, ["elbv2", *args])
    if ok:
        assert status == 0, (args, err)
        return json.loads(out) if out.strip() else {}
    assert status != 0, (args, out)
    return err


def hosts():
    with open(f"{state_dir}/elb/hosts") as f:
        return dict(line.split()[::-1] for line in f if line.strip())


def curl(name, path="/", scheme="http", port=80):
    """The page at `path` of the load balancer `name`, fetched in the agent's namespace."""
    address = hosts()[name]
    out = subprocess.run(["ip", "netns", "exec", netns, "curl", "-sS", "-k", "--max-time", "10",
                          "--resolve", f"{name}:{port}:{address}",
                          f"{scheme}://{name}:{port}{path}"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
instance = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1,
                             InstanceType="t2.nano")["Instances"][0]["InstanceId"]
ec2.get_waiter("instance_running").wait(InstanceIds=[instance],
                                        WaiterConfig={"Delay": 1, "MaxAttempts": 60})

tg = elb.create_target_group(Name="py-web", Protocol="HTTP", Port=80, VpcId=vpc,
                             HealthCheckPath="/", HealthCheckIntervalSeconds=5,
                             HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
                             Matcher={"HttpCode": "200-299"},
                             Tags=[{"Key": "team", "Value": "web"}])["TargetGroups"][0]
tg_arn = tg["TargetGroupArn"]
assert tg["HealthCheckIntervalSeconds"] == 5 and tg["Matcher"]["HttpCode"] == "200-299", tg
assert tg["TargetType"] == "instance" and tg["LoadBalancerArns"] == [], tg
same = elb.create_target_group(Name="py-web", Protocol="HTTP", Port=80, VpcId=vpc,
                               HealthCheckPath="/", HealthCheckIntervalSeconds=5,
                               HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
                               Matcher={"HttpCode": "200-299"})
assert same["TargetGroups"][0]["TargetGroupArn"] == tg_arn, "the same settings: the same group"
elb.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": instance}])

lb = elb.create_load_balancer(Name="py-front", Subnets=[subnet])["LoadBalancers"][0]
lb_arn, dns = lb["LoadBalancerArn"], lb["DNSName"]
assert lb["Type"] == "application" and lb["Scheme"] == "internet-facing", lb
assert lb["AvailabilityZones"][0]["SubnetId"] == subnet, lb
elb.get_waiter("load_balancer_available").wait(LoadBalancerArns=[lb_arn],
                                               WaiterConfig={"Delay": 1, "MaxAttempts": 30})
listener = elb.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80,
                               DefaultActions=[{"Type": "forward",
                                                "TargetGroupArn": tg_arn}])["Listeners"][0]
elb.get_waiter("target_in_service").wait(TargetGroupArn=tg_arn,
                                         WaiterConfig={"Delay": 1, "MaxAttempts": 60})
# The probe serves "imds-pending" until it has read its instance id from the metadata.
for _ in range(40):
    page = curl(dns)
    if instance in page:
        break
    subprocess.run(["sleep", "0.5"])
assert instance in page, page
print("elbv2 traffic: ok")

# ModifyListener: the default action becomes a fixed response, then forwards again.
maintenance = [{"Type": "fixed-response", "FixedResponseConfig": {
    "StatusCode": "503", "ContentType": "text/plain", "MessageBody": "maintenance"}}]
modified = elb.modify_listener(ListenerArn=listener["ListenerArn"], DefaultActions=maintenance)
assert modified["Listeners"][0]["DefaultActions"][0]["Type"] == "fixed-response", modified
for _ in range(20):
    if curl(dns) == "maintenance":
        break
    subprocess.run(["sleep", "0.5"])
assert curl(dns) == "maintenance"
assert elb.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"][0][
    "TargetHealth"]["Reason"] == "Target.NotInUse"
elb.modify_listener(ListenerArn=listener["ListenerArn"],
                    DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])
elb.get_waiter("target_in_service").wait(TargetGroupArn=tg_arn,
                                         WaiterConfig={"Delay": 1, "MaxAttempts": 60})
for _ in range(20):
    if instance in curl(dns):
        break
    subprocess.run(["sleep", "0.5"])
assert instance in curl(dns)
print("elbv2 modify listener: ok")

# Attributes.
attrs = {a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(
    TargetGroupArn=tg_arn)["Attributes"]}
assert attrs["deregistration_delay.timeout_seconds"] == "300", attrs
elb.modify_target_group_attributes(TargetGroupArn=tg_arn, Attributes=[
    {"Key": "stickiness.enabled", "Value": "true"},
    {"Key": "stickiness.lb_cookie.duration_seconds", "Value": "120"}])
attrs = {a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(
    TargetGroupArn=tg_arn)["Attributes"]}
assert attrs["stickiness.enabled"] == "true", attrs
lb_attrs = {a["Key"]: a["Value"] for a in elb.modify_load_balancer_attributes(
    LoadBalancerArn=lb_arn,
    Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": "30"}])["Attributes"]}
assert lb_attrs["idle_timeout.timeout_seconds"] == "30", lb_attrs
assert code_of(elb.modify_target_group_attributes, TargetGroupArn=tg_arn, Attributes=[
    {"Key": "deregistration_delay.timeout_seconds", "Value": "9999"}]) == "ValidationError"
print("elbv2 attributes: ok")

# Tags.
elb.add_tags(ResourceArns=[lb_arn], Tags=[{"Key": "env", "Value": "test"}])
described = elb.describe_tags(ResourceArns=[lb_arn, tg_arn])["TagDescriptions"]
assert described[0]["Tags"] == [{"Key": "env", "Value": "test"}], described
assert described[1]["Tags"] == [{"Key": "team", "Value": "web"}], described
elb.remove_tags(ResourceArns=[lb_arn], TagKeys=["env"])
assert elb.describe_tags(ResourceArns=[lb_arn])["TagDescriptions"][0]["Tags"] == []
print("elbv2 tags: ok")

# Rules: a redirect and a fixed response, priorities swapped in one call.
listener_arn = listener["ListenerArn"]
r1 = elb.create_rule(ListenerArn=listener_arn, Priority=5,
                     Conditions=[{"Field": "host-header", "Values": ["old.example"]}],
                     Actions=[{"Type": "redirect", "RedirectConfig": {
                         "Host": "new.example", "StatusCode": "HTTP_301"}}])["Rules"][0]
r2 = elb.create_rule(ListenerArn=listener_arn, Priority=6,
                     Conditions=[{"Field": "path-pattern",
                                  "PathPatternConfig": {"Values": ["/teapot"]}}],
                     Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
                         "StatusCode": "200", "ContentType": "text/plain",
                         "MessageBody": "short and stout"}}])["Rules"][0]
assert code_of(elb.create_rule, ListenerArn=listener_arn, Priority=5,
               Conditions=[{"Field": "path-pattern", "Values": ["/x"]}],
               Actions=[{"Type": "forward", "TargetGroupArn": tg_arn}]) == "PriorityInUse"
swapped = elb.set_rule_priorities(RulePriorities=[
    {"RuleArn": r1["RuleArn"], "Priority": 6}, {"RuleArn": r2["RuleArn"], "Priority": 5}])
assert sorted(r["Priority"] for r in swapped["Rules"]) == ["5", "6"], swapped
rules = elb.describe_rules(ListenerArn=listener_arn)["Rules"]
assert [r["Priority"] for r in rules] == ["5", "6", "default"], rules
assert rules[0]["RuleArn"] == r2["RuleArn"] and rules[2]["IsDefault"], rules
for _ in range(20):
    if curl(dns, "/teapot") == "short and stout":
        break
    subprocess.run(["sleep", "0.5"])
assert curl(dns, "/teapot") == "short and stout"
elb.delete_rule(RuleArn=r1["RuleArn"])
assert code_of(elb.delete_rule, RuleArn=r1["RuleArn"]) == "RuleNotFound"
print("elbv2 rules: ok")

# ELB's codes; nothing changes.
assert code_of(elb.create_load_balancer, Name="py-front", Subnets=[subnet],
               Type="network") == "DuplicateLoadBalancerName"
assert code_of(elb.create_target_group, Name="py-web", Protocol="TCP", Port=81,
               VpcId=vpc) == "DuplicateTargetGroupName"
assert code_of(elb.create_load_balancer, Name="bad_name", Subnets=[subnet]) == "ValidationError"
assert code_of(elb.create_load_balancer, Name="x", Subnets=["subnet-0123456789abcdef0"]) \
    == "SubnetNotFound"
assert code_of(elb.delete_target_group, TargetGroupArn=tg_arn) == "ResourceInUse"
assert code_of(elb.register_targets, TargetGroupArn=tg_arn,
               Targets=[{"Id": "i-0123456789abcdef0"}]) == "InvalidTarget"
assert code_of(elb.deregister_targets, TargetGroupArn=tg_arn,
               Targets=[{"Id": instance, "Port": 8080}]) == "InvalidTarget"
assert code_of(elb.describe_target_groups, Names=["nope"]) == "TargetGroupNotFound"
assert code_of(elb.describe_listeners, ListenerArns=[listener_arn + "0"]) == "ListenerNotFound"
assert code_of(elb.create_listener, LoadBalancerArn=lb_arn, Protocol="TCP", Port=81,
               DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}]) \
    == "IncompatibleProtocols"
assert code_of(elb.create_target_group, Name="no-vpc", Protocol="HTTP", Port=80) \
    == "ValidationError"
assert [t["TargetGroupName"] for t in elb.describe_target_groups()["TargetGroups"]] == ["py-web"]
assert len(elb.describe_load_balancers()["LoadBalancers"]) == 1
print("elbv2 errors: ok")

# The aws CLI.
described = aws(["describe-load-balancers", "--names", "py-front"])
assert described["LoadBalancers"][0]["DNSName"] == dns, described
health = aws(["describe-target-health", "--target-group-arn", tg_arn])
assert health["TargetHealthDescriptions"][0]["TargetHealth"]["State"] == "healthy", health
made = aws(["create-target-group", "--name", "cli-tg", "--protocol", "TCP", "--port", "22",
            "--vpc-id", vpc, "--target-type", "ip"])
cli_tg = made["TargetGroups"][0]["TargetGroupArn"]
assert made["TargetGroups"][0]["HealthCheckProtocol"] == "TCP", made
err = aws(["register-targets", "--target-group-arn", cli_tg, "--targets", "Id=10.9.9.9"],
          ok=False)
assert "InvalidTarget" in err, err
aws(["delete-target-group", "--target-group-arn", cli_tg])
err = aws(["describe-target-groups", "--names", "cli-tg"], ok=False)
assert "TargetGroupNotFound" in err, err
print("elbv2 cli: ok")

# HTTPS: a certificate and key the operator put on the host, named by an ACM-style ARN.
account = lb_arn.split(":")[4]
cert_dir = f"{state_dir}/elb/certificates"
subprocess.run(["mkdir", "-p", cert_dir], check=True)
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-subj", f"/CN={dns}", "-keyout", f"{cert_dir}/key.tmp",
                "-out", f"{cert_dir}/cert.tmp"], check=True, capture_output=True)
with open(f"{cert_dir}/py-web.pem", "w") as pem:
    for part in ["cert.tmp", "key.tmp"]:
        with open(f"{cert_dir}/{part}") as f:
            pem.write(f.read())
cert_arn = f"arn:aws:acm:local-1:{account}:certificate/py-web"
assert code_of(elb.create_listener, LoadBalancerArn=lb_arn, Protocol="HTTPS", Port=443,
               Certificates=[{"CertificateArn": cert_arn + "-missing"}],
               DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}]) \
    == "CertificateNotFound"
tls = elb.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTPS", Port=443,
                          Certificates=[{"CertificateArn": cert_arn}],
                          DefaultActions=[{"Type": "forward",
                                           "TargetGroupArn": tg_arn}])["Listeners"][0]
assert tls["Certificates"] == [{"CertificateArn": cert_arn}], tls
for _ in range(20):
    try:
        if instance in curl(dns, scheme="https", port=443):
            break
    except AssertionError:
        pass
    subprocess.run(["sleep", "0.5"])
assert instance in curl(dns, scheme="https", port=443)
# routing.http2.enabled (true by default) offers HTTP/2 on HTTPS listeners.
version = subprocess.run(["ip", "netns", "exec", netns, "curl", "-sS", "-k", "--http2",
                          "--max-time", "10", "-o", "/dev/null", "-w", "%{http_version}",
                          "--resolve", f"{dns}:443:{hosts()[dns]}", f"https://{dns}:443/"],
                         capture_output=True, text=True, timeout=30)
assert version.stdout == "2", (version.stdout, version.stderr)
elb.delete_listener(ListenerArn=tls["ListenerArn"])
print("elbv2 https: ok")

# Teardown: the listener, then the load balancer and its group.
elb.delete_listener(ListenerArn=listener_arn)
assert code_of(elb.describe_listeners, ListenerArns=[listener_arn]) == "ListenerNotFound"
elb.delete_load_balancer(LoadBalancerArn=lb_arn)
elb.get_waiter("load_balancers_deleted").wait(LoadBalancerArns=[lb_arn],
                                              WaiterConfig={"Delay": 1, "MaxAttempts": 10})
elb.delete_target_group(TargetGroupArn=tg_arn)
enis = ec2.describe_network_interfaces()["NetworkInterfaces"]
assert not any(e.get("Description", "").startswith("ELB ") for e in enis), enis
print("elbv2: ok")
