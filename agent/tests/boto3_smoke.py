"""The real boto3 against a kec2 agent: run/describe/stop/start/reboot/terminate, console
output, key pairs, images, tags, instance types, and EC2 errors as ClientError.

Usage: boto3_smoke.py ENDPOINT STATE_DIR MANIFEST. Prints "boto3 smoke: ok" on success."""

import base64
import sys
import time

from kec2_boto3 import client, error_code

endpoint, state_dir, manifest = sys.argv[1:4]
ec2 = client(endpoint, state_dir)


def wait(ids, state, timeout=30):
    deadline = time.time() + timeout
    while True:
        res = ec2.describe_instances(InstanceIds=ids)
        states = [i["State"]["Name"] for r in res["Reservations"] for i in r["Instances"]]
        if states and all(s == state for s in states):
            return res
        assert time.time() < deadline, f"{ids} not {state}: {states}"
        time.sleep(0.2)


# The one region and zone.
assert [r["RegionName"] for r in ec2.describe_regions()["Regions"]] == ["local-1"]
zones = ec2.describe_availability_zones()["AvailabilityZones"]
assert [(z["ZoneName"], z["State"]) for z in zones] == [("local-1a", "available")], zones

# Images.
ami = ec2.register_image(Name="probe-boto3", ImageLocation=manifest)["ImageId"]
images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["probe-*"]}])
assert [i["ImageId"] for i in images["Images"]] == [ami], images
assert images["Images"][0]["State"] == "available"

# Key pairs.
created = ec2.create_key_pair(KeyName="bk", KeyType="ed25519")
assert "OPENSSH PRIVATE KEY" in created["KeyMaterial"]
assert created["KeyFingerprint"].startswith("SHA256:")
pub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH3HhBTtkqRq6f3Ea3CdgtHrYgJ4nDk3sQzBqUK4MlFk test@host"
imported = ec2.import_key_pair(KeyName="imp", PublicKeyMaterial=pub.encode())
assert imported["KeyName"] == "imp"
names = sorted(k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"])
assert names == ["bk", "imp"], names
only = ec2.describe_key_pairs(KeyNames=["imp"], IncludePublicKey=True)["KeyPairs"]
assert only[0]["PublicKey"].startswith("ssh-ed25519 "), only
assert error_code(ec2.describe_key_pairs, KeyNames=["missing"]) == "InvalidKeyPair.NotFound"
ec2.delete_key_pair(KeyName="imp")
assert [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]] == ["bk"]

# Instance types.
types = ec2.describe_instance_types(InstanceTypes=["t2.micro", "m5.large"])["InstanceTypes"]
sizes = {t["InstanceType"]: (t["VCpuInfo"]["DefaultVCpus"], t["MemoryInfo"]["SizeInMiB"]) for t in types}
assert sizes == {"t2.micro": (1, 1024), "m5.large": (2, 8192)}, sizes

# Run two, with key, user data and tags.
run = ec2.run_instances(
    ImageId=ami,
    MinCount=2,
    MaxCount=2,
    InstanceType="t2.nano",
    KeyName="bk",
    UserData="#!/bin/sh\necho hi\n",
    ClientToken="boto3-token",
    TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "b3"}]}],
)
ids = [i["InstanceId"] for i in run["Instances"]]
assert len(ids) == 2 and all(i["State"]["Name"] == "pending" for i in run["Instances"])
again = ec2.run_instances(ImageId=ami, MinCount=2, MaxCount=2, InstanceType="t2.nano", KeyName="bk",
                          ClientToken="boto3-token")
assert [i["InstanceId"] for i in again["Instances"]] == ids, "ClientToken is not idempotent"
assert error_code(ec2.run_instances, ImageId=ami, MinCount=2, MaxCount=2, InstanceType="t2.micro",
                  KeyName="bk", ClientToken="boto3-token") == "IdempotentParameterMismatch"
res = wait(ids, "running")
inst = res["Reservations"][0]["Instances"][0]
assert inst["KeyName"] == "bk" and inst["InstanceType"] == "t2.nano"
assert inst["Placement"]["AvailabilityZone"] == "local-1a"
assert {"Key": "Name", "Value": "b3"} in inst["Tags"]
assert inst["LaunchTime"].year >= 2024
ud = ec2.describe_instance_attribute(InstanceId=ids[0], Attribute="userData")["UserData"]["Value"]
assert base64.b64decode(ud) == b"#!/bin/sh\necho hi\n", ud
by_tag = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["b3"]},
                                          {"Name": "instance-state-name", "Values": ["running"]}])
assert sorted(i["InstanceId"] for r in by_tag["Reservations"] for i in r["Instances"]) == sorted(ids)
page = ec2.describe_instances(MaxResults=5)
assert "NextToken" not in page

# Console output (botocore decodes the base64).
deadline = time.time() + 20
while f"probe: imds instance-id={ids[0]}" not in (ec2.get_console_output(InstanceId=ids[0]).get("Output") or ""):
    assert time.time() < deadline, "no probe output"
    time.sleep(0.2)

# The status checks pass once the agent has sampled the instances (every second here).
deadline = time.time() + 20
while True:
    status = ec2.describe_instance_status(InstanceIds=ids)["InstanceStatuses"]
    if [s["InstanceStatus"]["Status"] for s in status] == ["ok", "ok"]:
        break
    assert time.time() < deadline, status
    assert all(s["InstanceStatus"]["Status"] in ("initializing", "ok") for s in status), status
    time.sleep(0.5)
assert [s["SystemStatus"]["Details"][0]["Status"] for s in status] == ["passed", "passed"], status

# Stop, start, reboot.
stopped = ec2.stop_instances(InstanceIds=[ids[0]])["StoppingInstances"][0]
assert stopped["PreviousState"]["Name"] == "running" and stopped["CurrentState"]["Name"] == "stopping"
res = wait([ids[0]], "stopped")
inst = res["Reservations"][0]["Instances"][0]
assert inst["State"]["Code"] == 80
assert inst["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
assert inst["StateTransitionReason"].startswith("User initiated")
started = ec2.start_instances(InstanceIds=[ids[0]])["StartingInstances"][0]
assert started["CurrentState"]["Name"] == "pending"
wait([ids[0]], "running")
ec2.reboot_instances(InstanceIds=[ids[1]])
wait(ids, "running")

# Tags.
ec2.create_tags(Resources=[ids[0]], Tags=[{"Key": "env", "Value": "test"}])
tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [ids[0]]}])["Tags"]
assert sorted((t["Key"], t["Value"]) for t in tags) == [("Name", "b3"), ("env", "test")], tags
ec2.delete_tags(Resources=[ids[0]], Tags=[{"Key": "env"}])
assert len(ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [ids[0]]}])["Tags"]) == 1

# Errors surface as ClientError with EC2's codes.
assert error_code(ec2.stop_instances, InstanceIds=["i-0123456789abcdef0"]) == "InvalidInstanceID.NotFound"
assert error_code(ec2.run_instances, ImageId="ami-0123456789abcdef0", MinCount=1, MaxCount=1) == "InvalidAMIID.NotFound"
assert error_code(ec2.run_instances, ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t9.huge") == "InvalidParameterValue"
assert error_code(ec2.stop_instances, InstanceIds=ids, DryRun=True) == "DryRunOperation"

# Terminate.
term = ec2.terminate_instances(InstanceIds=ids)["TerminatingInstances"]
assert all(t["CurrentState"]["Name"] == "shutting-down" for t in term), term
res = wait(ids, "terminated")
assert all(i["State"]["Code"] == 48 for r in res["Reservations"] for i in r["Instances"])
assert error_code(ec2.start_instances, InstanceIds=[ids[0]]) == "IncorrectInstanceState"
ec2.deregister_image(ImageId=ami)
assert ec2.describe_images(Owners=["self"])["Images"] == []

print("boto3 smoke: ok")
