//! The networking API against a real agent whose instance networking lives in a namespace of
//! its own: VPCs and subnets with EC2's CIDR checks, security groups and their rules (checked
//! in the namespace's iptables), ModifyInstanceAttribute groups, metadata options, Elastic IPs
//! and network interfaces, the `ec2` CLI, and boto3 parsing the answers.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{Agent, child_text};

/// Every text of elements named `tag`.
fn texts(xml: &str, tag: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name(tag))
        .map(|n| n.text().unwrap_or("").to_string())
        .collect()
}

/// The first text of elements named `tag`.
fn first(xml: &str, tag: &str) -> String {
    texts(xml, tag)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
}

fn expect_code(agent: &Agent, action: &str, params: &[(&str, &str)], code: &str) {
    let (got, message) = agent.call_err(action, params);
    assert_eq!(got, code, "{action} {params:?}: {message}");
}

fn ns_out(agent: &Agent, cmd: &[&str]) -> String {
    String::from_utf8_lossy(&agent.ns.exec(cmd).stdout).into_owned()
}

fn default_group(agent: &Agent) -> String {
    first(
        &agent.call("DescribeSecurityGroups", &[("GroupName.1", "default")]),
        "groupId",
    )
}

fn create_group(agent: &Agent, name: &str, vpc: Option<&str>) -> String {
    let mut p = vec![("GroupName", name), ("GroupDescription", "test group")];
    if let Some(v) = vpc {
        p.push(("VpcId", v));
    }
    first(&agent.call("CreateSecurityGroup", &p), "groupId")
}

fn launch_in_group(agent: &Agent, ami: &str, group: &str) -> String {
    let xml = agent.call(
        "RunInstances",
        &[
            ("ImageId", ami),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("InstanceType", "t2.nano"),
            ("SecurityGroupId.1", group),
        ],
    );
    common::instance_ids(&xml)[0].clone()
}

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
            ("IpPermissions.1.UserIdGroupPairs.1.GroupId", user.as_str()),
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

/// The instance's public address in DescribeInstances ("" when none).
fn public_ip(agent: &Agent, id: &str) -> String {
    let xml = agent.call("DescribeInstances", &[("InstanceId.1", id)]);
    texts(&xml, "ipAddress")
        .into_iter()
        .next()
        .unwrap_or_default()
}

#[test]
fn elastic_ips_and_network_interfaces() {
    let agent = Agent::start(&["--stop-timeout", "5"]);
    let ami = agent.register_probe();
    let id = agent.run_one(&ami);
    agent.wait_state(&id, "running", Duration::from_secs(30));
    let ephemeral = public_ip(&agent, &id);
    assert!(ephemeral.starts_with("198.51.100."), "{ephemeral:?}");

    // Elastic IPs.
    expect_code(
        &agent,
        "AllocateAddress",
        &[("Domain", "standard")],
        "InvalidParameterValue",
    );
    let a = agent.call("AllocateAddress", &[("Domain", "vpc")]);
    let (alloc, eip) = (first(&a, "allocationId"), first(&a, "publicIp"));
    assert!(alloc.starts_with("eipalloc-"));
    assert_ne!(eip, ephemeral);
    expect_code(
        &agent,
        "AssociateAddress",
        &[
            ("AllocationId", "eipalloc-0123456789abcdef0"),
            ("InstanceId", &id),
        ],
        "InvalidAllocationID.NotFound",
    );
    let assoc = first(
        &agent.call(
            "AssociateAddress",
            &[("AllocationId", &alloc), ("InstanceId", &id)],
        ),
        "associationId",
    );
    assert!(assoc.starts_with("eipassoc-"));
    assert_eq!(public_ip(&agent, &id), eip);
    let nat = ns_out(&agent, &["iptables", "-t", "nat", "-S"]);
    assert!(
        nat.contains(&format!("-d {eip}/32")),
        "no DNAT for {eip}:\n{nat}"
    );
    assert!(!nat.contains(&format!("-d {ephemeral}/32")), "{nat}");
    expect_code(
        &agent,
        "ReleaseAddress",
        &[("AllocationId", &alloc)],
        "InvalidIPAddress.InUse",
    );
    let by_instance = agent.call(
        "DescribeAddresses",
        &[("Filter.1.Name", "instance-id"), ("Filter.1.Value.1", &id)],
    );
    assert_eq!(texts(&by_instance, "allocationId"), vec![alloc.clone()]);
    assert_eq!(first(&by_instance, "associationId"), assoc);

    // A second interface, available: moving the address there needs AllowReassociation.
    let subnet = first(&agent.call("DescribeSubnets", &[]), "subnetId");
    let eni_xml = agent.call(
        "CreateNetworkInterface",
        &[
            ("SubnetId", &subnet),
            ("Description", "second"),
            ("PrivateIpAddress", "172.31.9.9"),
        ],
    );
    let eni = first(&eni_xml, "networkInterfaceId");
    assert_eq!(first(&eni_xml, "status"), "available");
    assert_eq!(first(&eni_xml, "privateIpAddress"), "172.31.9.9");
    expect_code(
        &agent,
        "CreateNetworkInterface",
        &[("SubnetId", &subnet), ("PrivateIpAddress", "172.31.9.9")],
        "InvalidIPAddress.InUse",
    );
    expect_code(
        &agent,
        "AssociateAddress",
        &[("AllocationId", &alloc), ("NetworkInterfaceId", &eni)],
        "Resource.AlreadyAssociated",
    );
    // Back to the instance after disassociating: it gets a new ephemeral address.
    agent.call("DisassociateAddress", &[("AssociationId", &assoc)]);
    let fresh = public_ip(&agent, &id);
    assert!(
        fresh.starts_with("198.51.100.") && fresh != eip,
        "{fresh:?}"
    );
    expect_code(
        &agent,
        "DisassociateAddress",
        &[("AssociationId", &assoc)],
        "InvalidAssociationID.NotFound",
    );
    let moved = agent.call(
        "AssociateAddress",
        &[("AllocationId", &alloc), ("NetworkInterfaceId", &eni)],
    );
    let moved_assoc = first(&moved, "associationId");
    agent.call(
        "AssociateAddress",
        &[
            ("AllocationId", &alloc),
            ("InstanceId", &id),
            ("AllowReassociation", "true"),
        ],
    );
    assert_eq!(public_ip(&agent, &id), eip);
    expect_code(
        &agent,
        "DisassociateAddress",
        &[("AssociationId", &moved_assoc)],
        "InvalidAssociationID.NotFound",
    );

    // Interfaces attach and detach only on a stopped instance.
    let attach = |index: &str| {
        vec![
            ("NetworkInterfaceId", eni.clone()),
            ("InstanceId", id.clone()),
            ("DeviceIndex", index.to_string()),
        ]
    };
    let as_refs = |v: &[(&'static str, String)]| -> Vec<(&'static str, String)> { v.to_vec() };
    let call_err = |p: Vec<(&'static str, String)>, code: &str| {
        let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
        expect_code(&agent, "AttachNetworkInterface", &p, code);
    };
    call_err(as_refs(&attach("1")), "IncorrectInstanceState");
    agent.call("StopInstances", &[("InstanceId.1", &id)]);
    agent.wait_state(&id, "stopped", Duration::from_secs(30));
    assert_eq!(
        public_ip(&agent, &id),
        eip,
        "the Elastic IP stays across stop"
    );
    call_err(as_refs(&attach("0")), "InvalidParameterValue");
    let p1 = attach("1");
    let p1: Vec<(&str, &str)> = p1.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let attachment = first(&agent.call("AttachNetworkInterface", &p1), "attachmentId");
    assert!(attachment.starts_with("eni-attach-"));
    call_err(as_refs(&attach("2")), "InvalidNetworkInterface.InUse");
    expect_code(
        &agent,
        "DeleteNetworkInterface",
        &[("NetworkInterfaceId", &eni)],
        "InvalidNetworkInterface.InUse",
    );
    let of_instance = agent.call(
        "DescribeNetworkInterfaces",
        &[
            ("Filter.1.Name", "attachment.instance-id"),
            ("Filter.1.Value.1", &id),
        ],
    );
    assert_eq!(texts(&of_instance, "networkInterfaceId").len(), 2);
    let in_use = agent.call(
        "DescribeNetworkInterfaces",
        &[("Filter.1.Name", "status"), ("Filter.1.Value.1", "in-use")],
    );
    assert_eq!(texts(&in_use, "networkInterfaceId").len(), 2);
    let primary_attachment = agent.call(
        "DescribeNetworkInterfaces",
        &[
            ("Filter.1.Name", "attachment.instance-id"),
            ("Filter.1.Value.1", &id),
            ("Filter.2.Name", "attachment.device-index"),
            ("Filter.2.Value.1", "0"),
        ],
    );
    let primary_attachment = first(&primary_attachment, "attachmentId");
    expect_code(
        &agent,
        "DetachNetworkInterface",
        &[("AttachmentId", &primary_attachment)],
        "OperationNotPermitted",
    );
    // The next start plugs both interfaces.
    agent.call("StartInstances", &[("InstanceId.1", &id)]);
    agent.wait_state(&id, "running", Duration::from_secs(30));
    let links = ns_out(&agent, &["ip", "-o", "link"]);
    assert_eq!(links.matches("kec2t").count(), 2, "{links}");
    expect_code(
        &agent,
        "DetachNetworkInterface",
        &[("AttachmentId", &attachment)],
        "IncorrectInstanceState",
    );
    agent.call("StopInstances", &[("InstanceId.1", &id)]);
    agent.wait_state(&id, "stopped", Duration::from_secs(30));
    agent.call("DetachNetworkInterface", &[("AttachmentId", &attachment)]);
    let available = agent.call(
        "DescribeNetworkInterfaces",
        &[
            ("Filter.1.Name", "status"),
            ("Filter.1.Value.1", "available"),
        ],
    );
    assert_eq!(texts(&available, "networkInterfaceId"), vec![eni.clone()]);
    agent.call("DeleteNetworkInterface", &[("NetworkInterfaceId", &eni)]);
    expect_code(
        &agent,
        "DeleteNetworkInterface",
        &[("NetworkInterfaceId", &eni)],
        "InvalidNetworkInterfaceID.NotFound",
    );

    // Release after disassociation.
    let assoc = first(
        &agent.call("DescribeAddresses", &[("AllocationId.1", &alloc)]),
        "associationId",
    );
    agent.call("DisassociateAddress", &[("AssociationId", &assoc)]);
    assert_eq!(
        public_ip(&agent, &id),
        "",
        "a stopped instance gets no ephemeral address"
    );
    agent.call("ReleaseAddress", &[("AllocationId", &alloc)]);
    expect_code(
        &agent,
        "ReleaseAddress",
        &[("AllocationId", &alloc)],
        "InvalidAllocationID.NotFound",
    );
}

#[test]
fn the_cli_drives_the_network() {
    let agent = Agent::start(&[]);
    let vpc = agent.ec2_ok(&["create-vpc", "--cidr-block", "10.9.0.0/16"]);
    let vpc = vpc.split_whitespace().next().unwrap().to_string();
    assert!(vpc.starts_with("vpc-"), "{vpc}");
    assert!(agent.ec2_ok(&["describe-vpcs"]).contains("10.9.0.0/16"));
    let subnet = agent.ec2_ok(&[
        "create-subnet",
        "--vpc-id",
        &vpc,
        "--cidr-block",
        "10.9.1.0/24",
    ]);
    assert!(subnet.starts_with("subnet-"), "{subnet}");
    assert!(agent.ec2_ok(&["describe-subnets"]).contains("10.9.1.0/24"));
    let sg = agent.ec2_ok(&[
        "create-security-group",
        "--group-name",
        "web",
        "--description",
        "web servers",
    ]);
    let sg = sg.trim().to_string();
    assert!(sg.starts_with("sg-"), "{sg}");
    agent.ec2_ok(&[
        "authorize-security-group-ingress",
        "--group-id",
        &sg,
        "--protocol",
        "tcp",
        "--port",
        "80-81",
        "--cidr",
        "0.0.0.0/0",
    ]);
    let groups = agent.ec2_ok(&["describe-security-groups", "--group-ids", &sg]);
    assert!(groups.contains("tcp 80-81 0.0.0.0/0"), "{groups}");
    agent.ec2_ok(&[
        "revoke-security-group-ingress",
        "--group-id",
        &sg,
        "--protocol",
        "tcp",
        "--port",
        "80-81",
        "--cidr",
        "0.0.0.0/0",
    ]);
    let out = agent.ec2(&[
        "revoke-security-group-ingress",
        "--group-id",
        &sg,
        "--protocol",
        "tcp",
        "--port",
        "80-81",
        "--cidr",
        "0.0.0.0/0",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("InvalidPermission.NotFound"));
    let alloc = agent.ec2_ok(&["allocate-address"]);
    let alloc_id = alloc.split_whitespace().next().unwrap().to_string();
    assert!(alloc_id.starts_with("eipalloc-"), "{alloc}");
    assert!(agent.ec2_ok(&["describe-addresses"]).contains(&alloc_id));
    agent.ec2_ok(&["release-address", "--allocation-id", &alloc_id]);
    assert!(!agent.ec2_ok(&["describe-addresses"]).contains(&alloc_id));
    let json = agent.ec2_ok(&["describe-network-interfaces", "--output", "json"]);
    assert!(json.contains("NetworkInterfaces"), "{json}");
}

/// The boto3 virtualenv (see tests/boto3.rs, which makes it).
fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("KEC2_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/kec2/venv"));
    let python = venv.join("bin/python3");
    python.exists().then_some(python)
}

const BOTO3_SCRIPT: &str = r#"
import configparser, os, sys
import boto3
from botocore.exceptions import ClientError
endpoint, state_dir = sys.argv[1:3]
cfg = configparser.ConfigParser()
cfg.read(os.path.join(state_dir, "credentials"))
ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name="local-1",
    aws_access_key_id=cfg["default"]["aws_access_key_id"],
    aws_secret_access_key=cfg["default"]["aws_secret_access_key"])
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
try:
    ec2.authorize_security_group_ingress(GroupId=sg["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    raise SystemExit("duplicate accepted")
except ClientError as e:
    assert e.response["Error"]["Code"] == "InvalidPermission.Duplicate", e
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
"#;

#[test]
fn boto3_parses_the_network_answers() {
    let Some(python) = venv_python() else {
        eprintln!("skipped: no boto3 virtualenv (run the boto3 test first, which makes it)");
        return;
    };
    let agent = Agent::start(&[]);
    let out = Command::new(python)
        .arg("-c")
        .arg(BOTO3_SCRIPT)
        .arg(&agent.endpoint)
        .arg(agent.dir.path())
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_REGION")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("boto3 network: ok"),
        "boto3 failed:\n{stdout}\n{}\nagent log tail:\n{}",
        String::from_utf8_lossy(&out.stderr),
        common::tail(&agent.log(), 30)
    );
}
