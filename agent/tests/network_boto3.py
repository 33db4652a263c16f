"""The real boto3 parses the agent's network answers: VPCs, subnets, security groups and
their rules, Elastic IPs and network interfaces.

Usage: network_boto3.py ENDPOINT STATE_DIR [MANIFEST]. Prints "boto3 network: ok" on success."""

import sys

from kec2_boto3 import client, error_code

endpoint, state_dir = sys.argv[1:3]
ec2 = client(endpoint, state_dir)
vpcs = ec2.describe_vpcs()["Vpcs"]
assert vpcs[0]["CidrBlock"] == "172.31.0.0/16" and vpcs[0]["IsDefault"] is True, vpcs
vpc = ec2.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]
sub = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.3.0.0/24")["Subnet"]
assert sub["AvailableIpAddressCount"] == 251, sub
subs = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
assert [s["SubnetId"] for s in subs] == [sub["SubnetId"]], subs
sg = ec2.create_security_group(GroupName="web", Description="web",
    TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "k", "Value": "v"}]}])
other = ec2.create_security_group(GroupName="peer", Description="peer")["GroupId"]
rules = ec2.authorize_security_group_ingress(GroupId=sg["GroupId"], IpPermissions=[
    {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
     "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "http"}]},
    {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1,
     "UserIdGroupPairs": [{"GroupId": other}]}])
assert rules["Return"] is True and len(rules["SecurityGroupRules"]) == 2, rules
g = ec2.describe_security_groups(GroupIds=[sg["GroupId"]])["SecurityGroups"][0]
assert g["Tags"] == [{"Key": "k", "Value": "v"}], g
perms = {p["IpProtocol"]: p for p in g["IpPermissions"]}
assert perms["tcp"]["FromPort"] == 80 and perms["tcp"]["IpRanges"][0]["Description"] == "http", g
assert perms["icmp"]["UserIdGroupPairs"][0]["GroupId"] == other, g
assert g["IpPermissionsEgress"][0]["IpProtocol"] == "-1", g
code = error_code(ec2.authorize_security_group_ingress, GroupId=sg["GroupId"], IpPermissions=[
    {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
assert code == "InvalidPermission.Duplicate", code
ec2.revoke_security_group_ingress(GroupId=sg["GroupId"], IpPermissions=[
    {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
sgr = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg["GroupId"]]}])
assert len(sgr["SecurityGroupRules"]) == 2, sgr
addr = ec2.allocate_address(Domain="vpc")
got = ec2.describe_addresses(AllocationIds=[addr["AllocationId"]])["Addresses"]
assert got[0]["PublicIp"] == addr["PublicIp"] and got[0]["Domain"] == "vpc", got
eni = ec2.create_network_interface(SubnetId=sub["SubnetId"])["NetworkInterface"]
assert eni["Status"] == "available" and eni["PrivateIpAddress"] == "10.3.0.4", eni
assoc = ec2.associate_address(AllocationId=addr["AllocationId"],
    NetworkInterfaceId=eni["NetworkInterfaceId"])
enis = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni["NetworkInterfaceId"]])
e = enis["NetworkInterfaces"][0]
assert e["Association"]["PublicIp"] == addr["PublicIp"], e
assert e["Groups"][0]["GroupName"] == "default", e
ec2.disassociate_address(AssociationId=assoc["AssociationId"])
ec2.release_address(AllocationId=addr["AllocationId"])
ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
ec2.modify_subnet_attribute(SubnetId=sub["SubnetId"], MapPublicIpOnLaunch={"Value": True})
ec2.delete_subnet(SubnetId=sub["SubnetId"])
ec2.delete_vpc(VpcId=vpc["VpcId"])
ec2.delete_security_group(GroupId=sg["GroupId"])
print("boto3 network: ok")
