//! DescribeInstances filters: instance-id, instance-state-name, image-id, instance-type,
//! key-name, tag:KEY, tag-key; several values (OR), several filters (AND), with paging.

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
