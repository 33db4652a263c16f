"""The real boto3 against a kec2 agent's EBS: volumes, attachments, block device mappings,
snapshots, restores, images from instances, DeleteOnTermination through
ModifyInstanceAttribute, waiters and EC2 errors as ClientError.

Usage: ebs_boto3.py ENDPOINT STATE_DIR MANIFEST. Prints "ebs boto3: ok" on success."""

import sys
import time

from kec2_boto3 import client, error_code

endpoint, state_dir, manifest = sys.argv[1:4]
ec2 = client(endpoint, state_dir)
fast = {"Delay": 1, "MaxAttempts": 60}


def state(iid):
    r = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    return r


def wait_state(iid, name, timeout=30):
    deadline = time.time() + timeout
    while state(iid)["State"]["Name"] != name:
        assert time.time() < deadline, f"{iid} not {name}"
        time.sleep(0.2)


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

# DeleteOnTermination per device through ModifyInstanceAttribute; an unknown device is refused.
ec2.modify_instance_attribute(
    InstanceId=iid, BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": False}}]
)
attr = ec2.describe_instance_attribute(InstanceId=iid, Attribute="blockDeviceMapping")["BlockDeviceMappings"]
dot = {m["DeviceName"]: m["Ebs"]["DeleteOnTermination"] for m in attr}
assert dot == {"/dev/sdf": False, "/dev/sdg": False}, attr
assert error_code(
    ec2.modify_instance_attribute,
    InstanceId=iid, BlockDeviceMappings=[{"DeviceName": "/dev/sdz", "Ebs": {"DeleteOnTermination": True}}],
) == "InvalidInstanceAttributeValue"
ec2.modify_instance_attribute(
    InstanceId=iid, BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}]
)

# CreateImage of the stopped instance: a snapshot of each volume, tagged, in the image's mappings.
image = ec2.create_image(
    InstanceId=iid, Name="boto3-image", NoReboot=True,
    TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "from", "Value": iid}]},
                       {"ResourceType": "snapshot", "Tags": [{"Key": "from", "Value": iid}]}],
)["ImageId"]
ec2.get_waiter("image_available").wait(ImageIds=[image], WaiterConfig=fast)
img = ec2.describe_images(ImageIds=[image])["Images"][0]
maps = {m["DeviceName"]: m["Ebs"] for m in img["BlockDeviceMappings"]}
assert sorted(maps) == ["/dev/sdf", "/dev/sdg"], img
assert (maps["/dev/sdg"]["VolumeSize"], maps["/dev/sdg"]["VolumeType"], maps["/dev/sdg"]["Iops"]) == (8, "gp3", 4000), maps
assert maps["/dev/sdf"]["DeleteOnTermination"] is True and maps["/dev/sdg"]["DeleteOnTermination"] is False, maps
assert img["Tags"] == [{"Key": "from", "Value": iid}], img
image_snaps = sorted(m["SnapshotId"] for m in maps.values())
tagged = ec2.describe_snapshots(Filters=[{"Name": "tag:from", "Values": [iid]}])["Snapshots"]
assert sorted(s["SnapshotId"] for s in tagged) == image_snaps, tagged
assert error_code(ec2.delete_snapshot, SnapshotId=image_snaps[0]) == "InvalidSnapshot.InUse"
ec2.deregister_image(ImageId=image)
for s in image_snaps:
    ec2.delete_snapshot(SnapshotId=s)

# Snapshots: pending at once, completed by the waiter, restorable, described by owner.
snap = ec2.create_snapshot(VolumeId=vid, Description="boto3 snap",
                           TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "v"}]}])
assert snap["State"] == "pending" and snap["VolumeSize"] == 8, snap
sid = snap["SnapshotId"]
ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[sid], WaiterConfig=fast)
mine = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
assert [s["SnapshotId"] for s in mine] == [sid] and mine[0]["Progress"] == "100%", mine
assert mine[0]["Tags"] == [{"Key": "k", "Value": "v"}], mine
cp = ec2.copy_snapshot(SourceSnapshotId=sid, SourceRegion="local-1", Description="boto3 copy")["SnapshotId"]
ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[cp], WaiterConfig=fast)
assert ec2.describe_snapshots(SnapshotIds=[cp])["Snapshots"][0]["VolumeSize"] == 8
assert error_code(ec2.copy_snapshot, SourceSnapshotId=sid, SourceRegion="eu-west-1") == "InvalidParameterValue"
ec2.delete_snapshot(SnapshotId=cp)
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
