"""Launch templates on a real agent, through boto3 and the `aws` CLI: a template with the
probe image, a type, tags, metadata options and user data; versions from a SourceVersion;
$Default and $Latest; ModifyLaunchTemplate; RunInstances from the template with the
instance type overridden, the instance running with the template's tags, the
aws:ec2launchtemplate tags and its user data; bad input answered with EC2's codes, changing
nothing; DeleteLaunchTemplateVersions' per-version errors; DeleteLaunchTemplate.

Usage: launch_templates_boto3.py ENDPOINT STATE_DIR MANIFEST. Prints "launch templates: ok"."""

import base64
import json
import sys
import time

import aws_clients
from kec2_boto3 import client, error_code

endpoint, state_dir, manifest = sys.argv[1:4]
ec2 = client(endpoint, state_dir)
keys = aws_clients.keys_of(state_dir)

USER_DATA = "#!/bin/sh\necho launched-from-a-template\n"
B64 = base64.b64encode(USER_DATA.encode()).decode()


def tags_of(item):
    return {t["Key"]: t["Value"] for t in item.get("Tags", [])}


def instances():
    return [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]


def templates():
    return ec2.describe_launch_templates()["LaunchTemplates"]


ami = ec2.register_image(Name="probe-lt", ImageLocation=manifest)["ImageId"]

# A template: version 1, the default and the latest, tagged itself.
lt = ec2.create_launch_template(
    LaunchTemplateName="web-lt",
    VersionDescription="first",
    LaunchTemplateData={
        "ImageId": ami,
        "InstanceType": "t2.micro",
        "UserData": B64,
        "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2},
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "web"},
                                                  {"Key": "env", "Value": "dev"}]},
        ],
    },
    TagSpecifications=[{"ResourceType": "launch-template",
                        "Tags": [{"Key": "owner", "Value": "lt-test"}]}],
)["LaunchTemplate"]
lt_id = lt["LaunchTemplateId"]
assert lt_id.startswith("lt-") and lt["LaunchTemplateName"] == "web-lt", lt
assert (lt["DefaultVersionNumber"], lt["LatestVersionNumber"]) == (1, 1), lt
assert tags_of(lt) == {"owner": "lt-test"}, lt
assert "CreateTime" in lt, lt

# Bad names and a taken name: EC2's codes, nothing made.
assert error_code(ec2.create_launch_template, LaunchTemplateName="web-lt",
                  LaunchTemplateData={"ImageId": ami}) == \
    "InvalidLaunchTemplateName.AlreadyExistsException"
for bad in ["ab", "has space", "x" * 129, "star*"]:
    assert error_code(ec2.create_launch_template, LaunchTemplateName=bad,
                      LaunchTemplateData={"ImageId": ami}) == \
        "InvalidLaunchTemplateName.MalformedException", bad
assert error_code(ec2.create_launch_template, LaunchTemplateName="tagged-wrong",
                  LaunchTemplateData={"ImageId": ami},
                  TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"}]}]) == \
    "InvalidParameterValue"
assert [t["LaunchTemplateName"] for t in templates()] == ["web-lt"]

# Version 2 from version 1: only the type changes; version 3 from nothing, with an image
# that does not exist (accepted now, refused at launch, as EC2 does).
v2 = ec2.create_launch_template_version(
    LaunchTemplateId=lt_id, SourceVersion="1", VersionDescription="small",
    LaunchTemplateData={"InstanceType": "t2.small",
                        "MetadataOptions": {"HttpPutResponseHopLimit": 3}},
)["LaunchTemplateVersion"]
assert (v2["VersionNumber"], v2["DefaultVersion"]) == (2, False), v2
d2 = v2["LaunchTemplateData"]
assert d2["ImageId"] == ami and d2["InstanceType"] == "t2.small" and d2["UserData"] == B64, d2
assert d2["MetadataOptions"]["HttpTokens"] == "required", d2
assert d2["MetadataOptions"]["HttpPutResponseHopLimit"] == 3, d2
assert tags_of(d2["TagSpecifications"][0]) == {"team": "web", "env": "dev"}, d2
v3 = ec2.create_launch_template_version(
    LaunchTemplateName="web-lt", LaunchTemplateData={"ImageId": "ami-0000000000000dead"},
)["LaunchTemplateVersion"]
assert v3["VersionNumber"] == 3 and "InstanceType" not in v3["LaunchTemplateData"], v3
assert error_code(ec2.create_launch_template_version, LaunchTemplateId=lt_id, SourceVersion="9",
                  LaunchTemplateData={"KeyName": "k"}) == "InvalidLaunchTemplateId.VersionNotFound"
assert error_code(ec2.create_launch_template_version, LaunchTemplateName="nope-lt",
                  LaunchTemplateData={"KeyName": "k"}) == "InvalidLaunchTemplateName.NotFoundException"


def versions(**kw):
    return [v["VersionNumber"] for v in
            ec2.describe_launch_template_versions(**kw)["LaunchTemplateVersions"]]


assert versions(LaunchTemplateId=lt_id) == [3, 2, 1]
assert versions(LaunchTemplateId=lt_id, Versions=["$Latest"]) == [3]
assert versions(LaunchTemplateName="web-lt", Versions=["$Default"]) == [1]
assert versions(LaunchTemplateId=lt_id, MinVersion="2") == [3, 2]
assert versions(LaunchTemplateId=lt_id, MinVersion="1", MaxVersion="2") == [2, 1]
assert versions(LaunchTemplateId=lt_id,
                Filters=[{"Name": "is-default-version", "Values": ["true"]}]) == [1]
assert versions(LaunchTemplateId=lt_id,
                Filters=[{"Name": "instance-type", "Values": ["t2.small"]}]) == [2]
assert versions(Versions=["$Latest"]) == [3], "every template's latest"
pages = ec2.get_paginator("describe_launch_template_versions").paginate(
    LaunchTemplateId=lt_id, PaginationConfig={"PageSize": 1})
assert [[v["VersionNumber"] for v in p["LaunchTemplateVersions"]] for p in pages] == [[3], [2], [1]]
assert error_code(ec2.describe_launch_template_versions, LaunchTemplateId=lt_id,
                  Versions=["7"]) == "InvalidLaunchTemplateId.VersionNotFound"

# DescribeLaunchTemplates by id, name, filter; missing and malformed ones.
assert [t["LaunchTemplateId"] for t in
        ec2.describe_launch_templates(LaunchTemplateIds=[lt_id])["LaunchTemplates"]] == [lt_id]
got = ec2.describe_launch_templates(LaunchTemplateNames=["web-lt"])["LaunchTemplates"][0]
assert got["LatestVersionNumber"] == 3 and got["DefaultVersionNumber"] == 1, got
assert len(ec2.describe_launch_templates(
    Filters=[{"Name": "tag:owner", "Values": ["lt-test"]}])["LaunchTemplates"]) == 1
assert ec2.describe_launch_templates(
    Filters=[{"Name": "launch-template-name", "Values": ["db-*"]}])["LaunchTemplates"] == []
assert error_code(ec2.describe_launch_templates, LaunchTemplateNames=["nope-lt"]) == \
    "InvalidLaunchTemplateName.NotFoundException"
assert error_code(ec2.describe_launch_templates, LaunchTemplateIds=["lt-0123456789abcdef0"]) == \
    "InvalidLaunchTemplateId.NotFound"
assert error_code(ec2.describe_launch_templates, LaunchTemplateIds=["lt-zz"]) == \
    "InvalidLaunchTemplateId.Malformed"

# The template's tags through DescribeTags and CreateTags.
ec2.create_tags(Resources=[lt_id], Tags=[{"Key": "cost", "Value": "7"}])
tagged = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [lt_id]}])["Tags"]
assert {(t["Key"], t["Value"], t["ResourceType"]) for t in tagged} == {
    ("owner", "lt-test", "launch-template"), ("cost", "7", "launch-template")}, tagged

# ModifyLaunchTemplate: the default becomes 2; a version that does not exist changes nothing.
m = ec2.modify_launch_template(LaunchTemplateId=lt_id, DefaultVersion="2")["LaunchTemplate"]
assert m["DefaultVersionNumber"] == 2, m
assert error_code(ec2.modify_launch_template, LaunchTemplateId=lt_id, DefaultVersion="9") == \
    "InvalidLaunchTemplateId.VersionNotFound"
assert versions(LaunchTemplateId=lt_id, Versions=["$Default"]) == [2]

# Bad launches: EC2's codes, nothing launched.
bad_launches = [
    ({"LaunchTemplateName": "web-lt", "Version": "3"}, "InvalidAMIID.NotFound"),
    ({"LaunchTemplateName": "nope-lt"}, "InvalidLaunchTemplateName.NotFoundException"),
    ({"LaunchTemplateId": "lt-0123456789abcdef0"}, "InvalidLaunchTemplateId.NotFound"),
    ({"LaunchTemplateId": lt_id, "Version": "7"}, "InvalidLaunchTemplateId.VersionNotFound"),
]
for spec, want in bad_launches:
    code = error_code(ec2.run_instances, LaunchTemplate=spec, MinCount=1, MaxCount=1)
    assert code == want, (spec, code)
assert error_code(ec2.run_instances, MinCount=1, MaxCount=1) == "MissingParameter"
assert instances() == []

# A launch from the default version (2, t2.small) with the type overridden and a tag added.
run = ec2.run_instances(
    LaunchTemplate={"LaunchTemplateName": "web-lt"}, MinCount=1, MaxCount=1,
    InstanceType="t2.nano",
    TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "env", "Value": "prod"}]}],
)
iid = run["Instances"][0]["InstanceId"]
ec2.get_waiter("instance_running").wait(InstanceIds=[iid],
                                        WaiterConfig={"Delay": 1, "MaxAttempts": 60})
inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
assert inst["State"]["Name"] == "running", inst["State"]
assert inst["ImageId"] == ami and inst["InstanceType"] == "t2.nano", inst
assert tags_of(inst) == {"team": "web", "env": "prod",
                         "aws:ec2launchtemplate:id": lt_id,
                         "aws:ec2launchtemplate:version": "2"}, tags_of(inst)
assert inst["MetadataOptions"]["HttpTokens"] == "required", inst["MetadataOptions"]
assert inst["MetadataOptions"]["HttpPutResponseHopLimit"] == 3, inst["MetadataOptions"]
ud = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")["UserData"]["Value"]
assert base64.b64decode(ud).decode() == USER_DATA, ud

# $Latest by id, with a version number as text.
run2 = ec2.run_instances(LaunchTemplate={"LaunchTemplateId": lt_id, "Version": "1"},
                         MinCount=1, MaxCount=1)
i2 = run2["Instances"][0]
assert i2["InstanceType"] == "t2.micro", i2
assert tags_of(i2)["aws:ec2launchtemplate:version"] == "1", i2

# A template launching through network interface 0 (subnet, groups, no public address),
# with a data volume tagged by the template; the request's subnet would go on interface 0.
subnet = ec2.describe_subnets()["Subnets"][0]
group = ec2.describe_security_groups(
    Filters=[{"Name": "group-name", "Values": ["default"]},
             {"Name": "vpc-id", "Values": [subnet["VpcId"]]}])["SecurityGroups"][0]["GroupId"]
ec2.create_launch_template(LaunchTemplateName="net-lt", LaunchTemplateData={
    "ImageId": ami, "InstanceType": "t2.nano", "Monitoring": {"Enabled": True},
    "NetworkInterfaces": [{"DeviceIndex": 0, "SubnetId": subnet["SubnetId"], "Groups": [group],
                           "AssociatePublicIpAddress": False}],
    "BlockDeviceMappings": [{"DeviceName": "/dev/sdf",
                             "Ebs": {"VolumeSize": 1, "DeleteOnTermination": True}}],
    "TagSpecifications": [{"ResourceType": "volume", "Tags": [{"Key": "disk", "Value": "lt"}]},
                          {"ResourceType": "network-interface",
                           "Tags": [{"Key": "nic", "Value": "lt"}]}],
})
assert error_code(ec2.run_instances, LaunchTemplate={"LaunchTemplateName": "net-lt"},
                  MinCount=1, MaxCount=1, SubnetId="subnet-0000000000000dead") == \
    "InvalidSubnetID.NotFound", "the request's subnet goes on the template's interface"
i3 = ec2.run_instances(LaunchTemplate={"LaunchTemplateName": "net-lt"},
                       MinCount=1, MaxCount=1)["Instances"][0]
i3_id = i3["InstanceId"]
assert i3["SubnetId"] == subnet["SubnetId"], i3
assert [g["GroupId"] for g in i3["SecurityGroups"]] == [group], i3
assert "PublicIpAddress" not in i3, i3
assert i3["Monitoring"]["State"] in ("enabled", "pending"), i3["Monitoring"]
nic = i3["NetworkInterfaces"][0]["NetworkInterfaceId"]
nic_view = ec2.describe_network_interfaces(NetworkInterfaceIds=[nic])["NetworkInterfaces"][0]
assert {t["Key"]: t["Value"] for t in nic_view["TagSet"]} == {"nic": "lt"}, nic_view
vols = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [i3_id]}])["Volumes"]
data_vol = [v for v in vols if v["Attachments"][0]["Device"] == "/dev/sdf"]
assert len(data_vol) == 1 and data_vol[0]["Size"] == 1, vols
assert all(tags_of(v) == {"disk": "lt"} for v in vols), vols
ec2.terminate_instances(InstanceIds=[i3_id])
ec2.delete_launch_template(LaunchTemplateName="net-lt")

# DescribeLaunchTemplates in pages.
ec2.create_launch_template(LaunchTemplateName="page-lt", LaunchTemplateData={"ImageId": ami})
pages = ec2.get_paginator("describe_launch_templates").paginate(PaginationConfig={"PageSize": 1})
paged = [[t["LaunchTemplateName"] for t in p["LaunchTemplates"]] for p in pages]
assert sorted(paged) == [["page-lt"], ["web-lt"]], paged
assert error_code(ec2.describe_launch_templates, NextToken="not-ours") == "InvalidParameterValue"
ec2.delete_launch_template(LaunchTemplateName="page-lt")

# DeleteLaunchTemplateVersions: the default one (2) stays, with EC2's per-version errors.
r = ec2.delete_launch_template_versions(LaunchTemplateId=lt_id, Versions=["2", "3", "9"])
assert [v["VersionNumber"] for v in r["SuccessfullyDeletedLaunchTemplateVersions"]] == [3], r
failed = {v["VersionNumber"]: v["ResponseError"]["Code"]
          for v in r["UnsuccessfullyDeletedLaunchTemplateVersions"]}
assert failed == {2: "unexpectedError", 9: "launchTemplateVersionDoesNotExist"}, r
assert versions(LaunchTemplateId=lt_id) == [2, 1]
got = ec2.describe_launch_templates(LaunchTemplateIds=[lt_id])["LaunchTemplates"][0]
assert got["LatestVersionNumber"] == 2, got
assert versions(LaunchTemplateId=lt_id, Versions=["$Latest"]) == [2]

# The `aws` CLI: create and describe, as its users type them.
status, out, err = aws_clients.aws_cli(endpoint, keys, [
    "ec2", "create-launch-template", "--launch-template-name", "cli-lt",
    "--version-description", "from the cli",
    "--launch-template-data", json.dumps({"ImageId": ami, "InstanceType": "t2.nano"})])
assert status == 0, err
cli_lt = json.loads(out)["LaunchTemplate"]
assert cli_lt["LaunchTemplateName"] == "cli-lt" and cli_lt["LatestVersionNumber"] == 1, out
status, out, err = aws_clients.aws_cli(endpoint, keys, [
    "ec2", "describe-launch-template-versions", "--launch-template-name", "cli-lt",
    "--versions", "$Latest"])
assert status == 0, err
vs = json.loads(out)["LaunchTemplateVersions"]
assert len(vs) == 1 and vs[0]["LaunchTemplateData"] == {"ImageId": ami, "InstanceType": "t2.nano"}, vs
assert vs[0]["VersionDescription"] == "from the cli", vs

# ClientToken: a retry gives what the first call made; the token with other parameters is
# refused.
first = ec2.create_launch_template(LaunchTemplateName="retry-lt", ClientToken="tok-1",
                                   LaunchTemplateData={"ImageId": ami})["LaunchTemplate"]
again = ec2.create_launch_template(LaunchTemplateName="retry-lt", ClientToken="tok-1",
                                   LaunchTemplateData={"ImageId": ami})["LaunchTemplate"]
assert first["LaunchTemplateId"] == again["LaunchTemplateId"], (first, again)
assert error_code(ec2.create_launch_template, LaunchTemplateName="other-lt", ClientToken="tok-1",
                  LaunchTemplateData={"ImageId": ami}) == "IdempotentParameterMismatch"
made = [ec2.create_launch_template_version(
    LaunchTemplateName="retry-lt", ClientToken="tok-2",
    LaunchTemplateData={"InstanceType": "t2.nano"})["LaunchTemplateVersion"]["VersionNumber"]
    for _ in range(2)]
assert made == [2, 2], made
ec2.delete_launch_template(LaunchTemplateName="retry-lt")

# DeleteLaunchTemplate: gone with its versions; the instances stay.
d = ec2.delete_launch_template(LaunchTemplateName="web-lt")["LaunchTemplate"]
assert d["LaunchTemplateId"] == lt_id, d
assert error_code(ec2.describe_launch_template_versions, LaunchTemplateId=lt_id) == \
    "InvalidLaunchTemplateId.NotFound"
assert [t["LaunchTemplateName"] for t in templates()] == ["cli-lt"]
assert ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [lt_id]}])["Tags"] == []
ec2.terminate_instances(InstanceIds=[iid, i2["InstanceId"]])
print("launch templates: ok")
