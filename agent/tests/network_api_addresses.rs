//! The networking API, continued: Elastic IPs and network interfaces, the `ec2` CLI's network
//! commands, and boto3 parsing the answers; against a real agent with its instance networking
//! in a namespace of its own.

mod common;

use std::time::Duration;

use common::Agent;
use common::network::{expect_code, first, ns_out, texts};

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

/// A /29 pool gives instances five addresses (the first is the host's): a launch that wants
/// more is cut to what is left, one that cannot have MinCount is refused up front and leaves
/// nothing, and so is a start; an instance that gives its address back makes room.
#[test]
fn a_launch_the_public_pool_cannot_serve_is_refused_up_front() {
    let agent = Agent::start(&["--stop-timeout", "5", "--public-pool", "198.51.101.0/29"]);
    let ami = agent.register_probe();
    let params = |min: &'static str, max: &'static str| {
        [
            ("ImageId", ami.clone()),
            ("InstanceType", "t2.nano".into()),
            ("MinCount", min.into()),
            ("MaxCount", max.into()),
        ]
    };
    let run = |min, max| {
        let p = params(min, max);
        let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
        common::instance_ids(&agent.call("RunInstances", &p))
    };
    let refuse = |min, max| {
        let p = params(min, max);
        let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
        agent.call_err("RunInstances", &p)
    };
    let first_four = run("4", "4");
    assert_eq!(first_four.len(), 4);
    let (code, message) = refuse("2", "3");
    assert_eq!(code, "InsufficientAddressCapacity", "{message}");
    assert!(message.contains("198.51.101.0/29"), "{message}");
    assert_eq!(
        agent.states().len(),
        4,
        "a refused launch leaves no instance"
    );
    let last = run("1", "3");
    assert_eq!(last.len(), 1, "MaxCount is cut to the addresses left");
    let mut ips = Vec::new();
    for id in first_four.iter().chain(&last) {
        agent.wait_state(id, "running", Duration::from_secs(60));
        ips.push(public_ip(&agent, id));
    }
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 5, "{ips:?}");
    assert!(
        ips.iter().all(|ip| ip.starts_with("198.51.101.")),
        "{ips:?}"
    );

    // A stopped instance gives its address back; another takes it; the stopped one cannot
    // start again and stays stopped.
    agent.call("StopInstances", &[("InstanceId.1", &last[0])]);
    agent.wait_state(&last[0], "stopped", Duration::from_secs(30));
    let newcomer = run("1", "1");
    agent.wait_state(&newcomer[0], "running", Duration::from_secs(60));
    let (code, message) = agent.call_err("StartInstances", &[("InstanceId.1", &last[0])]);
    assert_eq!(code, "InsufficientAddressCapacity", "{message}");
    assert_eq!(agent.instance(&last[0]).state, "stopped");
    agent.call("TerminateInstances", &[("InstanceId.1", &newcomer[0])]);
    agent.wait_state(&newcomer[0], "terminated", Duration::from_secs(30));
    agent.call("StartInstances", &[("InstanceId.1", &last[0])]);
    agent.wait_state(&last[0], "running", Duration::from_secs(60));
    assert!(public_ip(&agent, &last[0]).starts_with("198.51.101."));
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

#[test]
fn boto3_parses_the_network_answers() {
    let agent = Agent::start(&[]);
    common::run_boto3(&agent, "network_boto3.py", "boto3 network: ok");
}
