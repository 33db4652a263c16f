"""The real boto3 against a kec2 agent's EBS: volumes, attachments, block device mappings,
snapshots, restores, waiters and EC2 errors as ClientError.

Usage: ebs_boto3.py ENDPOINT STATE_DIR MANIFEST. Prints "ebs boto3: ok" on success."""

import configparser
import os
import sys
import time

import boto3
from botocore.exceptions import ClientError

endpoint, state_dir, manifest = sys.argv[1:4]
cfg = configparser.ConfigParser()
cfg.read(os.path.join(state_dir, "credentials"))
ec2 = boto3.client(
    "ec2",
    endpoint_url=endpoint,
    region_name="local-1",
    aws_access_key_id=cfg["default"]["aws_access_key_id"],
    aws_secret_access_key=cfg["default"]["aws_secret_access_key"],
)
fast = {"Delay": 1, "MaxAttempts": 60}


def state(iid):
    r = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    return r


def wait_state(iid, name, timeout=30):
    deadline = time.time() + timeout
    while state(iid)["State"]["Name"] != name:
        assert time.time() < deadline, f"{iid} not {name}"
        time.sleep(0.2)


def error_code(fn, **kw):
    try:
        fn(**kw)
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError(f"{fn.__name__} should have failed")


# A volume with tags, found by a tag filter, waited for with boto3's waiter.
vol = ec2.create_volume(
    AvailabilityZone="local-1a",
    Size=8,
    VolumeType="gp3",
    Throughput=250,
    Iops=4000,
    TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "team", "Value": "red"}]}],
)
assert vol["State"] in ("available", "creating"), vol
assert (vol["Size"], vol["VolumeType"], vol["Iops"], vol["Throughput"]) == (8, "gp3", 4000, 250), vol
assert vol["Encrypted"] is False
vid = vol["VolumeId"]
ec2.get_waiter("volume_available").wait(VolumeIds=[vid], WaiterConfig=fast)
found = ec2.describe_volumes(Filters=[{"Name": "tag:team", "Values": ["red"]}])["Volumes"]
assert [v["VolumeId"] for v in found] == [vid], found

# An instance launched with a data volume from its block device mapping.
ami = ec2.register_image(Name="probe-boto3-ebs", ImageLocation=manifest)["ImageId"]
# io1 with 50 IOPS is below the type's 100: refused, nothing launched.
code = error_code(
    ec2.run_instances,
    ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t2.nano",
    BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 4, "VolumeType": "io1", "Iops": 50}}],
)
assert code == "InvalidParameterValue", code
assert ec2.describe_instances()["Reservations"] == []
run = ec2.run_instances(
    ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t2.nano",
    BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1, "DeleteOnTermination": True}}],
)
iid = run["Instances"][0]["InstanceId"]
wait_state(iid, "running")
inst = state(iid)
bdm = inst["BlockDeviceMappings"]
assert [m["DeviceName"] for m in bdm] == ["/dev/sdf"], bdm
data_vol = bdm[0]["Ebs"]["VolumeId"]
assert bdm[0]["Ebs"]["DeleteOnTermination"] is True and bdm[0]["Ebs"]["Status"] == "attached"
assert inst["RootDeviceName"] == "/dev/xvda"

# No hot-plug: attach to a running instance is refused; stop, attach, see it.
assert error_code(ec2.attach_volume, VolumeId=vid, InstanceId=iid, Device="/dev/sdg") == "IncorrectState"
ec2.stop_instances(InstanceIds=[iid], Force=True)
wait_state(iid, "stopped")
att = ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdg")
assert (att["State"], att["Device"], att["InstanceId"]) == ("attached", "/dev/sdg", iid), att
ec2.get_waiter("volume_in_use").wait(VolumeIds=[vid], WaiterConfig=fast)
assert error_code(ec2.delete_volume, VolumeId=vid) == "VolumeInUse"
devices = sorted(m["DeviceName"] for m in state(iid)["BlockDeviceMappings"])
assert devices == ["/dev/sdf", "/dev/sdg"], devices
v = ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]
assert v["Attachments"][0]["InstanceId"] == iid and v["State"] == "in-use", v

# Snapshots: pending at once, completed by the waiter, restorable, described by owner.
snap = ec2.create_snapshot(VolumeId=vid, Description="boto3 snap",
                           TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "v"}]}])
assert snap["State"] == "pending" and snap["VolumeSize"] == 8, snap
sid = snap["SnapshotId"]
ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[sid], WaiterConfig=fast)
mine = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
assert [s["SnapshotId"] for s in mine] == [sid] and mine[0]["Progress"] == "100%", mine
assert mine[0]["Tags"] == [{"Key": "k", "Value": "v"}], mine
copy = ec2.create_volume(AvailabilityZone="local-1a", SnapshotId=sid)
assert copy["SnapshotId"] == sid and copy["Size"] == 8
ec2.get_waiter("volume_available").wait(VolumeIds=[copy["VolumeId"]], WaiterConfig=fast)
assert error_code(ec2.create_volume, AvailabilityZone="local-1a", SnapshotId=sid, Size=1) == "InvalidParameterValue"
assert error_code(ec2.describe_snapshots, SnapshotIds=["snap-0123456789abcdef0"]) == "InvalidSnapshot.NotFound"

# Modify, detach, delete.
mod = ec2.modify_volume(VolumeId=copy["VolumeId"], Size=9, VolumeType="io2", Iops=3000)["VolumeModification"]
assert (mod["TargetSize"], mod["TargetVolumeType"], mod["TargetIops"]) == (9, "io2", 3000), mod
det = ec2.detach_volume(VolumeId=vid)
assert det["State"] == "detached", det
ec2.get_waiter("volume_available").wait(VolumeIds=[vid], WaiterConfig=fast)
ec2.delete_snapshot(SnapshotId=sid)
ec2.delete_volume(VolumeId=vid)
ec2.delete_volume(VolumeId=copy["VolumeId"])
assert error_code(ec2.describe_volumes, VolumeIds=[vid]) == "InvalidVolume.NotFound"

# Terminate: the mapped data volume (DeleteOnTermination) goes.
ec2.terminate_instances(InstanceIds=[iid])
wait_state(iid, "terminated")
ec2.get_waiter("volume_deleted").wait(VolumeIds=[data_vol], WaiterConfig=fast)
print("ebs boto3: ok")
