//! The networking API against a real agent whose instance networking lives in a namespace of
//! its own: VPCs and subnets with EC2's CIDR checks, security groups and their rules (checked
//! in the namespace's iptables), ModifyInstanceAttribute groups and metadata options. Elastic
//! IPs, network interfaces, the CLI and boto3 are in network_api_addresses.rs.

mod common;

use std::time::Duration;

use common::network::{
    create_group, default_group, expect_code, first, launch_in_group, ns_out, texts,
};
use common::{Agent, child_text};
#[test]
fn default_network_exists_and_cidrs_are_checked() {
    let agent = Agent::start(&[]);
    let vpcs = agent.call("DescribeVpcs", &[]);
    assert_eq!(texts(&vpcs, "cidrBlock")[0], "172.31.0.0/16");
    assert_eq!(first(&vpcs, "isDefault"), "true");
    let default_vpc = first(&vpcs, "vpcId");
    let subnets = agent.call("DescribeSubnets", &[]);
    assert_eq!(first(&subnets, "cidrBlock"), "172.31.0.0/20");
    assert_eq!(first(&subnets, "defaultForAz"), "true");
    assert_eq!(first(&subnets, "mapPublicIpOnLaunch"), "true");
    assert_eq!(first(&subnets, "availableIpAddressCount"), "4091");
    assert_eq!(first(&subnets, "availabilityZone"), "local-1a");
    let groups = agent.call(
        "DescribeSecurityGroups",
        &[
            ("Filter.1.Name", "vpc-id"),
            ("Filter.1.Value.1", &default_vpc),
        ],
    );
    assert_eq!(texts(&groups, "groupName"), vec!["default"]);

    // VPC blocks: /16 to /28, host bits zero, no overlap on this host.
    for (cidr, code) in [
        ("10.0.0.0/8", "InvalidVpc.Range"),
        ("10.0.0.0/29", "InvalidVpc.Range"),
        ("10.0.0.1/16", "InvalidParameterValue"),
        ("nonsense", "InvalidParameterValue"),
        ("172.31.128.0/20", "InvalidVpc.Range"),
        ("198.51.100.0/24", "InvalidVpc.Range"),
    ] {
        expect_code(&agent, "CreateVpc", &[("CidrBlock", cidr)], code);
    }
    let (_, why) = agent.call_err("CreateVpc", &[("CidrBlock", "172.31.0.0/16")]);
    assert!(why.contains("overlap"), "{why}");
    let vpc_xml = agent.call(
        "CreateVpc",
        &[
            ("CidrBlock", "10.1.0.0/16"),
            ("TagSpecification.1.ResourceType", "vpc"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", "lab"),
        ],
    );
    let vpc = first(&vpc_xml, "vpcId");
    assert_eq!(first(&vpc_xml, "isDefault"), "false");
    let tagged = agent.call(
        "DescribeVpcs",
        &[("Filter.1.Name", "tag:Name"), ("Filter.1.Value.1", "lab")],
    );
    assert_eq!(texts(&tagged, "vpcId"), vec![vpc.clone()]);
    let vpc_groups = agent.call(
        "DescribeSecurityGroups",
        &[("Filter.1.Name", "vpc-id"), ("Filter.1.Value.1", &vpc)],
    );
    assert_eq!(texts(&vpc_groups, "groupName"), vec!["default"]);
    expect_code(
        &agent,
        "CreateVpc",
        &[("CidrBlock", "10.1.128.0/17")],
        "InvalidVpc.Range",
    );

    // Subnets: inside the VPC, /16 to /28, no overlap, only local-1a.
    let sub = |cidr: &'static str| vec![("VpcId", vpc.as_str()), ("CidrBlock", cidr)];
    expect_code(
        &agent,
        "CreateSubnet",
        &sub("10.2.0.0/24"),
        "InvalidSubnet.Range",
    );
    expect_code(
        &agent,
        "CreateSubnet",
        &sub("10.1.0.0/29"),
        "InvalidSubnet.Range",
    );
    expect_code(
        &agent,
        "CreateSubnet",
        &[
            ("VpcId", "vpc-0123456789abcdef0"),
            ("CidrBlock", "10.1.0.0/24"),
        ],
        "InvalidVpcID.NotFound",
    );
    let mut wrong_zone = sub("10.1.0.0/24");
    wrong_zone.push(("AvailabilityZone", "local-1b"));
    expect_code(&agent, "CreateSubnet", &wrong_zone, "InvalidParameterValue");
    let subnet = first(&agent.call("CreateSubnet", &sub("10.1.0.0/24")), "subnetId");
    expect_code(
        &agent,
        "CreateSubnet",
        &sub("10.1.0.128/25"),
        "InvalidSubnet.Conflict",
    );
    let addrs = ns_out(&agent, &["ip", "-4", "addr"]);
    assert!(addrs.contains("10.1.0.1/24"), "no router address:\n{addrs}");
    let described = agent.call("DescribeSubnets", &[("SubnetId.1", &subnet)]);
    assert_eq!(first(&described, "availableIpAddressCount"), "251");
    assert_eq!(first(&described, "mapPublicIpOnLaunch"), "false");
    agent.call(
        "ModifySubnetAttribute",
        &[("SubnetId", &subnet), ("MapPublicIpOnLaunch.Value", "true")],
    );
    let public = agent.call(
        "DescribeSubnets",
        &[
            ("Filter.1.Name", "map-public-ip-on-launch"),
            ("Filter.1.Value.1", "true"),
        ],
    );
    assert_eq!(texts(&public, "subnetId").len(), 2);

    // DeleteVpc waits for its subnets and groups; DeleteSubnet for its interfaces.
    let eni = first(
        &agent.call("CreateNetworkInterface", &[("SubnetId", &subnet)]),
        "networkInterfaceId",
    );
    expect_code(
        &agent,
        "DeleteSubnet",
        &[("SubnetId", &subnet)],
        "DependencyViolation",
    );
    agent.call("DeleteNetworkInterface", &[("NetworkInterfaceId", &eni)]);
    expect_code(
        &agent,
        "DeleteVpc",
        &[("VpcId", &vpc)],
        "DependencyViolation",
    );
    agent.call("DeleteSubnet", &[("SubnetId", &subnet)]);
    let group = create_group(&agent, "web", Some(&vpc));
    expect_code(
        &agent,
        "DeleteVpc",
        &[("VpcId", &vpc)],
        "DependencyViolation",
    );
    agent.call("DeleteSecurityGroup", &[("GroupId", &group)]);
    agent.call("DeleteVpc", &[("VpcId", &vpc)]);
    expect_code(
        &agent,
        "DescribeVpcs",
        &[("VpcId.1", &vpc)],
        "InvalidVpcID.NotFound",
    );
    let addrs = ns_out(&agent, &["ip", "-4", "addr"]);
    assert!(
        !addrs.contains("10.1.0.1/24"),
        "router address left:\n{addrs}"
    );
}

#[test]
fn security_group_rules_are_checked() {
    let agent = Agent::start(&[]);
    let sg = create_group(&agent, "web", None);
    expect_code(
        &agent,
        "CreateSecurityGroup",
        &[("GroupName", "web"), ("GroupDescription", "again")],
        "InvalidGroup.Duplicate",
    );
    expect_code(
        &agent,
        "CreateSecurityGroup",
        &[("GroupName", "sg-web"), ("GroupDescription", "x")],
        "InvalidParameterValue",
    );
    expect_code(
        &agent,
        "CreateSecurityGroup",
        &[("GroupName", "x")],
        "MissingParameter",
    );
    let described = agent.call("DescribeSecurityGroups", &[("GroupId.1", &sg)]);
    assert_eq!(first(&described, "groupName"), "web");
    // A new group: all egress, no ingress.
    let doc = roxmltree::Document::parse(&described).unwrap();
    let egress = doc
        .descendants()
        .find(|n| n.has_tag_name("ipPermissionsEgress"))
        .unwrap();
    assert!(
        egress
            .descendants()
            .any(|n| n.has_tag_name("cidrIp") && n.text() == Some("0.0.0.0/0"))
    );
    let ingress = doc
        .descendants()
        .find(|n| n.has_tag_name("ipPermissions"))
        .unwrap();
    assert_eq!(ingress.children().filter(|c| c.is_element()).count(), 0);
    expect_code(
        &agent,
        "DescribeSecurityGroups",
        &[("GroupId.1", "sg-0123456789abcdef0")],
        "InvalidGroup.NotFound",
    );

    let perm = |extra: &[(&'static str, &'static str)]| {
        let mut p: Vec<(&str, &str)> = vec![("GroupId", sg.as_str())];
        p.extend_from_slice(extra);
        p
    };
    let ssh = [
        ("IpPermissions.1.IpProtocol", "tcp"),
        ("IpPermissions.1.FromPort", "22"),
        ("IpPermissions.1.ToPort", "22"),
        ("IpPermissions.1.IpRanges.1.CidrIp", "10.0.0.0/8"),
        ("IpPermissions.1.IpRanges.1.Description", "ssh"),
    ];
    let added = agent.call("AuthorizeSecurityGroupIngress", &perm(&ssh));
    assert_eq!(first(&added, "return"), "true");
    assert!(first(&added, "securityGroupRuleId").starts_with("sgr-"));
    assert_eq!(first(&added, "cidrIpv4"), "10.0.0.0/8");
    expect_code(
        &agent,
        "AuthorizeSecurityGroupIngress",
        &perm(&ssh),
        "InvalidPermission.Duplicate",
    );
    // Protocol numbers are normalised: 6 is tcp, so this is the same rule.
    let mut six = ssh;
    six[0].1 = "6";
    expect_code(
        &agent,
        "AuthorizeSecurityGroupIngress",
        &perm(&six),
        "InvalidPermission.Duplicate",
    );
    for (bad, code) in [
        (
            vec![
                ("IpProtocol", "tcp"),
                ("FromPort", "70000"),
                ("ToPort", "70000"),
                ("CidrIp", "0.0.0.0/0"),
            ],
            "InvalidParameterValue",
        ),
        (
            vec![
                ("IpProtocol", "tcp"),
                ("FromPort", "90"),
                ("ToPort", "80"),
                ("CidrIp", "0.0.0.0/0"),
            ],
            "InvalidParameterValue",
        ),
        (
            vec![("IpProtocol", "tcp"), ("CidrIp", "0.0.0.0/0")],
            "InvalidParameterValue",
        ),
        (
            vec![
                ("IpProtocol", "gre"),
                ("FromPort", "1"),
                ("ToPort", "1"),
                ("CidrIp", "0.0.0.0/0"),
            ],
            "InvalidParameterValue",
        ),
        (
            vec![
                ("IpProtocol", "icmp"),
                ("FromPort", "300"),
                ("ToPort", "-1"),
                ("CidrIp", "0.0.0.0/0"),
            ],
            "InvalidParameterValue",
        ),
        (
            vec![
                ("IpProtocol", "icmp"),
                ("FromPort", "-1"),
                ("ToPort", "3"),
                ("CidrIp", "0.0.0.0/0"),
            ],
            "InvalidParameterValue",
        ),
        (
            vec![
                ("IpProtocol", "tcp"),
                ("FromPort", "1"),
                ("ToPort", "2"),
                ("CidrIp", "10.0.0.1/8"),
            ],
            "InvalidParameterValue",
        ),
        (
            vec![
                ("IpProtocol", "tcp"),
                ("FromPort", "1"),
                ("ToPort", "2"),
                ("SourceSecurityGroupName", "nope"),
            ],
            "InvalidGroup.NotFound",
        ),
        (
            vec![("IpProtocol", "tcp"), ("FromPort", "1"), ("ToPort", "2")],
            "MissingParameter",
        ),
        (
            vec![
                ("IpPermissions.1.IpProtocol", "tcp"),
                ("IpPermissions.1.FromPort", "1"),
                ("IpPermissions.1.ToPort", "2"),
                ("IpPermissions.1.Groups.1.GroupId", "sg-0123456789abcdef0"),
            ],
            "InvalidGroup.NotFound",
        ),
    ] {
        expect_code(&agent, "AuthorizeSecurityGroupIngress", &perm(&bad), code);
    }
    expect_code(
        &agent,
        "AuthorizeSecurityGroupIngress",
        &[
            ("GroupId", "sg-0123456789abcdef0"),
            ("IpProtocol", "tcp"),
            ("FromPort", "1"),
            ("ToPort", "2"),
            ("CidrIp", "0.0.0.0/0"),
        ],
        "InvalidGroup.NotFound",
    );
    // Group peers must be in the same VPC.
    let vpc = first(
        &agent.call("CreateVpc", &[("CidrBlock", "10.5.0.0/16")]),
        "vpcId",
    );
    let far = create_group(&agent, "far", Some(&vpc));
    let peer_far = [
        ("IpPermissions.1.IpProtocol", "-1"),
        ("IpPermissions.1.Groups.1.GroupId", far.as_str()),
    ];
    let mut p = vec![("GroupId", sg.as_str())];
    p.extend_from_slice(&peer_far);
    expect_code(
        &agent,
        "AuthorizeSecurityGroupIngress",
        &p,
        "InvalidGroup.NotFound",
    );
    // A peer in the same VPC, in the legacy flat form, then its revocation.
    let default = default_group(&agent);
    let flat = [
        ("GroupId", sg.as_str()),
        ("IpProtocol", "udp"),
        ("FromPort", "53"),
        ("ToPort", "53"),
        ("SourceSecurityGroupName", "default"),
    ];
    agent.call("AuthorizeSecurityGroupIngress", &flat);
    let described = agent.call("DescribeSecurityGroups", &[("GroupId.1", &sg)]);
    assert!(
        texts(&described, "groupId").contains(&default),
        "{described}"
    );
    // The default group is named by web's rule now: web goes first, default never.
    expect_code(
        &agent,
        "DeleteSecurityGroup",
        &[("GroupId", &default)],
        "CannotDelete",
    );
    let user = create_group(&agent, "user", None);
    agent.call(
        "AuthorizeSecurityGroupIngress",
        &[
            ("GroupId", default.as_str()),
            ("IpPermissions.1.IpProtocol", "tcp"),
            ("IpPermissions.1.FromPort", "443"),
            ("IpPermissions.1.ToPort", "443"),
            ("IpPermissions.1.Groups.1.GroupId", user.as_str()),
        ],
    );
    expect_code(
        &agent,
        "DeleteSecurityGroup",
        &[("GroupId", &user)],
        "DependencyViolation",
    );
    agent.call(
        "RevokeSecurityGroupIngress",
        &[
            ("GroupId", default.as_str()),
            ("IpPermissions.1.IpProtocol", "tcp"),
            ("IpPermissions.1.FromPort", "443"),
            ("IpPermissions.1.ToPort", "443"),
            ("IpPermissions.1.Groups.1.GroupId", user.as_str()),
        ],
    );
    agent.call("DeleteSecurityGroup", &[("GroupName", "user")]);
    agent.call("RevokeSecurityGroupIngress", &flat);
    expect_code(
        &agent,
        "RevokeSecurityGroupIngress",
        &flat,
        "InvalidPermission.NotFound",
    );
    agent.call("RevokeSecurityGroupIngress", &perm(&ssh));
    expect_code(
        &agent,
        "RevokeSecurityGroupIngress",
        &perm(&ssh),
        "InvalidPermission.NotFound",
    );
    // Egress: the default allow-all rule can be revoked and put back.
    let all_out = [
        ("GroupId", sg.as_str()),
        ("IpPermissions.1.IpProtocol", "-1"),
        ("IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0"),
    ];
    expect_code(
        &agent,
        "AuthorizeSecurityGroupEgress",
        &all_out,
        "InvalidPermission.Duplicate",
    );
    agent.call("RevokeSecurityGroupEgress", &all_out);
    agent.call("AuthorizeSecurityGroupEgress", &all_out);
    let rules = agent.call(
        "DescribeSecurityGroupRules",
        &[("Filter.1.Name", "group-id"), ("Filter.1.Value.1", &sg)],
    );
    assert_eq!(texts(&rules, "isEgress"), vec!["true"]);
    agent.call("DeleteSecurityGroup", &[("GroupId", &sg)]);
    expect_code(
        &agent,
        "DeleteSecurityGroup",
        &[("GroupId", &sg)],
        "InvalidGroup.NotFound",
    );
}

/// `iptables -S` in the agent's namespace.
fn filter_rules(agent: &Agent) -> String {
    ns_out(agent, &["iptables", "-S"])
}

#[test]
fn rules_metadata_options_and_groups_apply_to_a_running_instance() {
    let agent = Agent::start(&["--stop-timeout", "5"]);
    let ami = agent.register_probe();
    let sg = create_group(&agent, "web", None);
    let id = launch_in_group(&agent, &ami, &sg);
    agent.wait_state(&id, "running", Duration::from_secs(30));

    let rule = [
        ("GroupId", sg.as_str()),
        ("IpProtocol", "tcp"),
        ("FromPort", "8080"),
        ("ToPort", "8081"),
        ("CidrIp", "203.0.113.0/24"),
    ];
    agent.call("AuthorizeSecurityGroupIngress", &rule);
    let rules = filter_rules(&agent);
    assert!(
        rules.contains("-s 203.0.113.0/24") && rules.contains("--dport 8080:8081"),
        "rule not in iptables:\n{rules}"
    );
    expect_code(
        &agent,
        "DeleteSecurityGroup",
        &[("GroupId", &sg)],
        "DependencyViolation",
    );
    agent.call("RevokeSecurityGroupIngress", &rule);
    let rules = filter_rules(&agent);
    assert!(
        !rules.contains("203.0.113.0/24"),
        "rule left in iptables:\n{rules}"
    );

    // ModifyInstanceAttribute GroupId.N: 1 to 5 groups of the instance's VPC.
    let vpc = first(
        &agent.call("CreateVpc", &[("CidrBlock", "10.7.0.0/16")]),
        "vpcId",
    );
    let far = create_group(&agent, "far", Some(&vpc));
    expect_code(
        &agent,
        "ModifyInstanceAttribute",
        &[("InstanceId", &id), ("GroupId.1", &far)],
        "InvalidParameter",
    );
    let many: Vec<String> = (0..6)
        .map(|i| create_group(&agent, &format!("g{i}"), None))
        .collect();
    let mut p = vec![("InstanceId".to_string(), id.clone())];
    for (i, g) in many.iter().enumerate() {
        p.push((format!("GroupId.{}", i + 1), g.clone()));
    }
    let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    expect_code(
        &agent,
        "ModifyInstanceAttribute",
        &p,
        "SecurityGroupsPerInterfaceLimitExceeded",
    );
    expect_code(
        &agent,
        "ModifyInstanceAttribute",
        &[("InstanceId", &id), ("InstanceType.Value", "t2.micro")],
        "InvalidParameterValue",
    );
    let default = default_group(&agent);
    agent.call(
        "ModifyInstanceAttribute",
        &[
            ("InstanceId", &id),
            ("GroupId.1", &default),
            ("GroupId.2", &many[0]),
        ],
    );
    let xml = agent.call("DescribeInstances", &[("InstanceId.1", &id)]);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let instance = doc
        .descendants()
        .find(|n| n.has_tag_name("instancesSet"))
        .unwrap();
    let groups = instance
        .descendants()
        .find(|n| n.has_tag_name("groupSet"))
        .unwrap();
    let ids: Vec<String> = groups
        .children()
        .filter(|c| c.has_tag_name("item"))
        .map(|i| child_text(i, "groupId"))
        .collect();
    assert_eq!(ids, vec![default.clone(), many[0].clone()]);
    agent.call("DeleteSecurityGroup", &[("GroupId", &sg)]);

    // ModifyInstanceMetadataOptions: checked, stored, applied.
    for (field, value) in [
        ("HttpPutResponseHopLimit", "65"),
        ("HttpPutResponseHopLimit", "0"),
        ("HttpTokens", "sometimes"),
        ("HttpEndpoint", "off"),
        ("HttpProtocolIpv6", "enabled"),
    ] {
        expect_code(
            &agent,
            "ModifyInstanceMetadataOptions",
            &[("InstanceId", &id), (field, value)],
            "InvalidParameterValue",
        );
    }
    expect_code(
        &agent,
        "ModifyInstanceMetadataOptions",
        &[
            ("InstanceId", "i-0123456789abcdef0"),
            ("HttpTokens", "required"),
        ],
        "InvalidInstanceID.NotFound",
    );
    let nat = ns_out(&agent, &["iptables", "-t", "nat", "-S"]);
    assert!(
        nat.contains("169.254.169.254/32"),
        "no metadata redirect:\n{nat}"
    );
    let out = agent.call(
        "ModifyInstanceMetadataOptions",
        &[
            ("InstanceId", &id),
            ("HttpTokens", "required"),
            ("HttpPutResponseHopLimit", "2"),
            ("HttpEndpoint", "disabled"),
        ],
    );
    assert_eq!(first(&out, "httpTokens"), "required");
    assert_eq!(first(&out, "httpPutResponseHopLimit"), "2");
    assert_eq!(first(&out, "httpEndpoint"), "disabled");
    let xml = agent.call("DescribeInstances", &[("InstanceId.1", &id)]);
    assert_eq!(first(&xml, "httpTokens"), "required");
    let nat = ns_out(&agent, &["iptables", "-t", "nat", "-S"]);
    assert!(
        !nat.contains("169.254.169.254/32"),
        "metadata redirect left:\n{nat}"
    );
    agent.call(
        "ModifyInstanceMetadataOptions",
        &[("InstanceId", &id), ("HttpEndpoint", "enabled")],
    );
    let nat = ns_out(&agent, &["iptables", "-t", "nat", "-S"]);
    assert!(
        nat.contains("169.254.169.254/32"),
        "metadata redirect not back:\n{nat}"
    );
}
