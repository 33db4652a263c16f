//! DescribeInstances filters: instance-id, instance-state-name, image-id, instance-type,
//! key-name, tag:KEY, tag-key; several values (OR), several filters (AND), with paging; the
//! network, placement and metadata filters matched against what an instance shows; the
//! response-field spellings (`subnetId`, `isDefault`) every Describe action takes.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Agent, instance_ids};

const T: Duration = Duration::from_secs(20);

fn run(agent: &Agent, extra: &[(&str, &str)]) -> String {
    let mut p = vec![("MinCount", "1"), ("MaxCount", "1")];
    p.extend_from_slice(extra);
    instance_ids(&agent.call("RunInstances", &p))[0].clone()
}

fn filtered(agent: &Agent, filters: &[(&str, &[&str])]) -> BTreeSet<String> {
    let mut owned: Vec<(String, String)> = Vec::new();
    for (i, (name, values)) in filters.iter().enumerate() {
        owned.push((format!("Filter.{}.Name", i + 1), name.to_string()));
        for (j, v) in values.iter().enumerate() {
            owned.push((format!("Filter.{}.Value.{}", i + 1, j + 1), v.to_string()));
        }
    }
    let p: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    instance_ids(&agent.call("DescribeInstances", &p))
        .into_iter()
        .collect()
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn describe_instances_filters() {
    let agent = Agent::start(&[]);
    let m = common::probe_manifest();
    let m = m.to_str().unwrap();
    let ami1 = common::child_text(
        roxmltree::Document::parse(
            &agent.call("RegisterImage", &[("Name", "one"), ("ImageLocation", m)]),
        )
        .unwrap()
        .root_element(),
        "imageId",
    );
    let ami2 = common::child_text(
        roxmltree::Document::parse(
            &agent.call("RegisterImage", &[("Name", "two"), ("ImageLocation", m)]),
        )
        .unwrap()
        .root_element(),
        "imageId",
    );
    agent.call(
        "CreateKeyPair",
        &[("KeyName", "k1"), ("KeyType", "ed25519")],
    );
    let tag = |k: &'static str, v: &'static str| {
        [
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", k),
            ("TagSpecification.1.Tag.1.Value", v),
        ]
    };
    let a = run(
        &agent,
        &[
            &[
                ("ImageId", ami1.as_str()),
                ("InstanceType", "t2.nano"),
                ("KeyName", "k1"),
            ][..],
            &tag("env", "prod"),
        ]
        .concat(),
    );
    let b = run(
        &agent,
        &[
            &[("ImageId", ami2.as_str()), ("InstanceType", "t3.micro")][..],
            &tag("team", "x"),
        ]
        .concat(),
    );
    let c = run(
        &agent,
        &[("ImageId", ami1.as_str()), ("InstanceType", "t2.nano")],
    );
    for id in [&a, &b, &c] {
        agent.wait_state(id, "running", T);
    }
    agent.call(
        "CreateTags",
        &[
            ("ResourceId.1", &b),
            ("Tag.1.Key", "env"),
            ("Tag.1.Value", "dev"),
        ],
    );
    agent.call("StopInstances", &[("InstanceId.1", &c), ("Force", "true")]);
    agent.wait_state(&c, "stopped", T);

    assert_eq!(filtered(&agent, &[]), set(&[&a, &b, &c]));
    assert_eq!(
        filtered(&agent, &[("instance-id", &[&a, &c])]),
        set(&[&a, &c])
    );
    assert_eq!(
        filtered(&agent, &[("instance-state-name", &["running"])]),
        set(&[&a, &b])
    );
    assert_eq!(
        filtered(&agent, &[("instance-state-name", &["stopped"])]),
        set(&[&c])
    );
    assert_eq!(
        filtered(&agent, &[("instance-state-code", &["80"])]),
        set(&[&c])
    );
    assert_eq!(filtered(&agent, &[("image-id", &[&ami1])]), set(&[&a, &c]));
    assert_eq!(
        filtered(&agent, &[("instance-type", &["t3.micro"])]),
        set(&[&b])
    );
    assert_eq!(filtered(&agent, &[("key-name", &["k1"])]), set(&[&a]));
    assert_eq!(
        filtered(&agent, &[("tag:env", &["prod", "dev"])]),
        set(&[&a, &b])
    );
    assert_eq!(filtered(&agent, &[("tag:env", &["dev"])]), set(&[&b]));
    assert_eq!(filtered(&agent, &[("tag-key", &["team"])]), set(&[&b]));
    assert_eq!(
        filtered(&agent, &[("tag:env", &["staging"])]),
        BTreeSet::new()
    );
    // AND across filters.
    assert_eq!(
        filtered(
            &agent,
            &[
                ("image-id", &[&ami1]),
                ("instance-state-name", &["running"])
            ]
        ),
        set(&[&a])
    );
    // A filter with MaxResults: one page holds both matches, so no NextToken.
    let xml = agent.call(
        "DescribeInstances",
        &[
            ("MaxResults", "5"),
            ("Filter.1.Name", "image-id"),
            ("Filter.1.Value.1", &ami1),
        ],
    );
    assert_eq!(
        instance_ids(&xml).into_iter().collect::<BTreeSet<_>>(),
        set(&[&a, &c])
    );
    assert!(!xml.contains("<nextToken>"));
    // The CLI's --filters form.
    let out = agent.ec2_ok(&[
        "describe-instances",
        "--filters",
        "Name=instance-type,Values=t3.micro,t2.large",
    ]);
    assert!(
        out.contains(&b) && !out.contains(&a) && !out.contains(&c),
        "{out}"
    );
    // DescribeTags filters by resource type and key.
    let tags = agent.call(
        "DescribeTags",
        &[
            ("Filter.1.Name", "key"),
            ("Filter.1.Value.1", "env"),
            ("Filter.2.Name", "resource-type"),
            ("Filter.2.Value.1", "instance"),
        ],
    );
    assert_eq!(tags.matches("<item>").count(), 2, "{tags}");
}

#[test]
fn network_resources_take_tags() {
    let agent = Agent::start(&[]);
    let xml = agent.call("DescribeSecurityGroups", &[("GroupName.1", "default")]);
    let group = xml
        .split("<groupId>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_owned();
    let xml = agent.call("DescribeVpcs", &[]);
    let vpc = xml
        .split("<vpcId>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_owned();
    agent.call(
        "CreateTags",
        &[
            ("ResourceId.1", &group),
            ("ResourceId.2", &vpc),
            ("Tag.1.Key", "team"),
            ("Tag.1.Value", "net"),
        ],
    );
    let tags = agent.call(
        "DescribeTags",
        &[("Filter.1.Name", "key"), ("Filter.1.Value.1", "team")],
    );
    assert!(
        tags.contains("<resourceType>security-group</resourceType>"),
        "{tags}"
    );
    assert!(tags.contains("<resourceType>vpc</resourceType>"), "{tags}");
    let (code, _) = agent.call_err(
        "CreateTags",
        &[
            ("ResourceId.1", "sg-0123456789abcdef0"),
            ("Tag.1.Key", "team"),
            ("Tag.1.Value", "net"),
        ],
    );
    assert_eq!(code, "InvalidGroup.NotFound");
}

/// The text of the first `name` element under `n`.
fn first(n: roxmltree::Node<'_, '_>, name: &str) -> String {
    n.descendants()
        .find(|d| d.has_tag_name(name))
        .and_then(|d| d.text())
        .unwrap_or("")
        .to_string()
}

/// DescribeInstances answers the documented filters beyond the stored columns (network,
/// placement, metadata options, ...) against what the instance shows, with wildcards, in the
/// response-field spelling too (`subnetId`), and still refuses an unknown name.
#[test]
fn describe_instances_network_and_placement_filters() {
    let agent = Agent::start(&[]);
    let ami = agent.register_probe();
    let vpcs = agent.call(
        "DescribeVpcs",
        &[("Filter.1.Name", "isDefault"), ("Filter.1.Value.1", "true")],
    );
    let vpc = first(
        roxmltree::Document::parse(&vpcs).unwrap().root_element(),
        "vpcId",
    );
    assert!(vpc.starts_with("vpc-"), "{vpcs}");
    let subnet = agent.call(
        "CreateSubnet",
        &[("VpcId", &vpc), ("CidrBlock", "172.31.200.0/24")],
    );
    let subnet = first(
        roxmltree::Document::parse(&subnet).unwrap().root_element(),
        "subnetId",
    );
    let group = agent.call(
        "CreateSecurityGroup",
        &[
            ("GroupName", "web"),
            ("GroupDescription", "web"),
            ("VpcId", &vpc),
        ],
    );
    let group = first(
        roxmltree::Document::parse(&group).unwrap().root_element(),
        "groupId",
    );
    agent.call(
        "CreateKeyPair",
        &[("KeyName", "k2"), ("KeyType", "ed25519")],
    );
    let a = run(&agent, &[("ImageId", &ami)]);
    let b = run(
        &agent,
        &[
            ("ImageId", &ami),
            ("SubnetId", &subnet),
            ("SecurityGroupId.1", &group),
            ("KeyName", "k2"),
            ("MetadataOptions.HttpTokens", "required"),
            ("BlockDeviceMapping.1.DeviceName", "/dev/sdf"),
            ("BlockDeviceMapping.1.Ebs.VolumeSize", "1"),
            // The launch volume and the interface are tagged as well as the instance.
            ("TagSpecification.1.ResourceType", "volume"),
            ("TagSpecification.1.Tag.1.Key", "role"),
            ("TagSpecification.1.Tag.1.Value", "data"),
            ("TagSpecification.2.ResourceType", "network-interface"),
            ("TagSpecification.2.Tag.1.Key", "role"),
            ("TagSpecification.2.Tag.1.Value", "nic"),
        ],
    );
    let shown = agent.call("DescribeInstances", &[("InstanceId.1", &a)]);
    let doc = roxmltree::Document::parse(&shown).unwrap();
    let item = doc.root_element();
    let a_ip = first(item, "privateIpAddress");
    let a_dns = first(item, "privateDnsName");
    let a_eni = first(item, "networkInterfaceId");
    let a_mac = first(item, "macAddress");
    let a_root = first(item, "rootDeviceType");
    assert!(a_ip.starts_with("172.31.") && !a_ip.starts_with("172.31.200."));

    let a_pattern = format!("{}?", &a[..a.len() - 1]);
    let both = set(&[&a, &b]);
    let only_a = set(&[&a]);
    let only_b = set(&[&b]);
    let cases: &[(&str, &str, &BTreeSet<String>)] = &[
        ("subnet-id", &subnet, &only_b),
        ("subnetId", &subnet, &only_b),
        ("network-interface.subnet-id", &subnet, &only_b),
        ("vpc-id", &vpc, &both),
        ("vpcId", &vpc, &both),
        ("network-interface.vpc-id", &vpc, &both),
        ("private-ip-address", &a_ip, &only_a),
        ("privateIpAddress", &a_ip, &only_a),
        (
            "network-interface.private-ip-address",
            "172.31.200.*",
            &only_b,
        ),
        (
            "network-interface.addresses.private-ip-address",
            &a_ip,
            &only_a,
        ),
        ("private-dns-name", &a_dns, &only_a),
        ("network-interface.network-interface-id", &a_eni, &only_a),
        ("network-interface.mac-address", &a_mac, &only_a),
        ("network-interface.status", "in-use", &both),
        ("network-interface.attachment.device-index", "0", &both),
        ("network-interface.group-id", &group, &only_b),
        ("instance.group-id", &group, &only_b),
        ("group-id", &group, &only_b),
        ("instance.group-name", "default", &only_a),
        ("group-name", "web", &only_b),
        ("availability-zone", "local-1a", &both),
        ("placement.availability-zone", "local-1?", &both),
        ("availabilityZone", "local-1b", &BTreeSet::new()),
        ("tenancy", "default", &both),
        ("placement.tenancy", "dedicated", &BTreeSet::new()),
        ("key-name", "k*", &only_b),
        ("image-id", "ami-*", &both),
        ("instance-type", "t2.*", &both),
        ("architecture", "x86_64", &both),
        ("launch-time", "20*", &both),
        ("root-device-type", &a_root, &both),
        ("root-device-name", "/dev/xvda", &both),
        ("block-device-mapping.device-name", "/dev/sdf", &only_b),
        ("block-device-mapping.status", "attached", &only_b),
        ("hibernation-options.configured", "false", &both),
        ("metadata-options.http-tokens", "required", &only_b),
        ("metadata-options.http-tokens", "optional", &only_a),
        ("metadata-options.http-endpoint", "enabled", &both),
        ("monitoring-state", "disabled", &both),
        ("instance-id", &a_pattern, &only_a),
    ];
    for (name, value, want) in cases {
        assert_eq!(
            &filtered(&agent, &[(name, &[value])]),
            *want,
            "filter {name}={value}"
        );
    }
    // Owner and reservation, from the response.
    let owner = first(item, "ownerId");
    assert_eq!(filtered(&agent, &[("owner-id", &[&owner])]), both);
    let reservation = first(item, "reservationId");
    assert_eq!(
        filtered(&agent, &[("reservation-id", &[&reservation])]),
        only_a
    );
    // AND with the SQL filters, and a page cut after matching.
    assert_eq!(
        filtered(&agent, &[("vpc-id", &[&vpc]), ("key-name", &["k2"])]),
        only_b
    );
    let xml = agent.call(
        "DescribeInstances",
        &[
            ("MaxResults", "5"),
            ("Filter.1.Name", "subnet-id"),
            ("Filter.1.Value.1", &subnet),
        ],
    );
    assert_eq!(instance_ids(&xml), std::slice::from_ref(&b));
    assert!(!xml.contains("<nextToken>"), "{xml}");
    let volumes = agent.call(
        "DescribeVolumes",
        &[("Filter.1.Name", "tag:role"), ("Filter.1.Value.1", "data")],
    );
    assert_eq!(volumes.matches("<volumeType>").count(), 1, "{volumes}");
    assert!(
        volumes.contains(&format!("<instanceId>{b}</instanceId>")),
        "{volumes}"
    );
    let nics = agent.call(
        "DescribeNetworkInterfaces",
        &[("Filter.1.Name", "tag:role"), ("Filter.1.Value.1", "nic")],
    );
    assert_eq!(nics.matches("<macAddress>").count(), 1, "{nics}");
    assert!(
        nics.contains(&format!("<instanceId>{b}</instanceId>")),
        "{nics}"
    );
    // Unknown names are refused, camelCase only when it names a known filter.
    for bad in [
        "colour",
        "subnetid",
        "SubnetId-x",
        "network-interface.colour",
    ] {
        let (code, message) = agent.call_err(
            "DescribeInstances",
            &[("Filter.1.Name", bad), ("Filter.1.Value.1", "x")],
        );
        assert_eq!(code, "InvalidParameterValue", "{bad}: {message}");
        assert!(
            message.contains(&format!("The filter '{bad}' is invalid")),
            "{message}"
        );
    }
    // The other Describe actions take the response-field spelling too.
    let subnets = agent.call(
        "DescribeSubnets",
        &[
            ("Filter.1.Name", "vpcId"),
            ("Filter.1.Value.1", &vpc),
            ("Filter.2.Name", "defaultForAz"),
            ("Filter.2.Value.1", "false"),
        ],
    );
    assert!(subnets.contains(&subnet), "{subnets}");
    assert_eq!(subnets.matches("<subnetId>").count(), 1, "{subnets}");
    let groups = agent.call(
        "DescribeSecurityGroups",
        &[("Filter.1.Name", "groupName"), ("Filter.1.Value.1", "web")],
    );
    assert_eq!(groups.matches("<groupName>").count(), 1, "{groups}");
    let (code, _) = agent.call_err(
        "DescribeVpcs",
        &[
            ("Filter.1.Name", "isDefaultX"),
            ("Filter.1.Value.1", "true"),
        ],
    );
    assert_eq!(code, "InvalidParameterValue");
}
