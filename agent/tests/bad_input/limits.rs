//! Hostile input and EC2's limits: filter values that once killed the agent or held a
//! worker, and every limit on filters, tags, user data, bodies and parameters, each answered
//! at once with EC2's error code, changing nothing.

use std::time::Duration;

use crate::common::{self, Agent};
use crate::{code_of, raw, snapshot};

/// How many images a DescribeImages answer lists.
fn images_listed(xml: &str) -> usize {
    roxmltree::Document::parse(xml)
        .unwrap()
        .descendants()
        .filter(|n| n.has_tag_name("imageId"))
        .count()
}

/// Calls `action` and requires an answer within `limit`.
fn timed(
    agent: &Agent,
    limit: Duration,
    action: &str,
    params: &[(&str, &str)],
) -> Result<String, cli::client::CallError> {
    let started = std::time::Instant::now();
    let got = agent.try_call(action, params);
    assert!(
        started.elapsed() < limit,
        "{action} took {:?}; agent log tail:\n{}",
        started.elapsed(),
        common::tail(&agent.log(), 20)
    );
    got
}

/// Filter values that once killed the agent or held a worker (200,000 `*`s overflowed the
/// recursive matcher's stack; `*a*a*...*ab` backtracked exponentially) are answered at once,
/// the agent answers the next call, and the EC2 limits on filters, tags, user data, bodies and
/// parameters give EC2's error codes and change nothing.
#[test]
fn hostile_filters_and_limits_are_answered_and_change_nothing() {
    let agent = Agent::start(&[]);
    let ami = agent.register_probe();
    let long_value = "a".repeat(256);
    agent.call(
        "CreateTags",
        &[
            ("ResourceId.1", &ami),
            ("Tag.1.Key", "k"),
            ("Tag.1.Value", &long_value),
        ],
    );
    let before = snapshot(&agent);
    let fast = Duration::from_secs(5);

    let stars = "*".repeat(200_000);
    let xml = timed(
        &agent,
        fast,
        "DescribeImages",
        &[("Filter.1.Name", "name"), ("Filter.1.Value.1", &stars)],
    )
    .expect("200,000 stars match every name");
    assert_eq!(images_listed(&xml), 1, "{xml}");

    let backtracking = format!("{}b", "*a".repeat(60));
    for name in ["tag:k", "name", "description"] {
        let xml = timed(
            &agent,
            fast,
            "DescribeImages",
            &[("Filter.1.Name", name), ("Filter.1.Value.1", &backtracking)],
        )
        .unwrap_or_else(|e| panic!("filter {name}: {e}"));
        assert_eq!(images_listed(&xml), 0, "{name}: {xml}");
    }
    let xml = timed(
        &agent,
        fast,
        "DescribeTags",
        &[
            ("Filter.1.Name", "value"),
            ("Filter.1.Value.1", &backtracking),
        ],
    )
    .unwrap();
    assert!(!xml.contains("<item>"), "{xml}");
    // The matcher still matches: the same pattern ending in `a` finds the long tag value.
    let xml = agent.call(
        "DescribeImages",
        &[
            ("Filter.1.Name", "tag:k"),
            ("Filter.1.Value.1", &format!("{}a", "*a".repeat(60))),
        ],
    );
    assert_eq!(images_listed(&xml), 1, "{xml}");

    // A character XML cannot carry would make every later listing unreadable.
    let (code, message) = agent.call_err(
        "CreateTags",
        &[
            ("ResourceId.1", &ami),
            ("Tag.1.Key", "k2"),
            ("Tag.1.Value", "a\u{1}b"),
        ],
    );
    assert_eq!(code, "MalformedQueryString", "{message}");
    assert!(message.contains("Tag.1.Value"), "{message}");

    // Too many filters or values.
    let many_filters: Vec<(String, String)> = (1..=51)
        .flat_map(|n| {
            [
                (format!("Filter.{n}.Name"), "name".to_string()),
                (format!("Filter.{n}.Value.1"), "*".to_string()),
            ]
        })
        .collect();
    let many_values: Vec<(String, String)> =
        std::iter::once(("Filter.1.Name".into(), "name".into()))
            .chain((1..=201).map(|m| (format!("Filter.1.Value.{m}"), format!("v{m}"))))
            .collect();
    for params in [&many_filters, &many_values] {
        let p: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (code, message) = agent.call_err("DescribeImages", &p);
        assert_eq!(code, "FilterLimitExceeded", "{message}");
        assert!(message.contains("limit"), "{message}");
    }

    // Tags: key and value lengths, the reserved prefix, 50 per resource.
    let key_129 = "k".repeat(129);
    let value_257 = "v".repeat(257);
    let create_tag = |key: &str, value: &str| {
        agent.call_err(
            "CreateTags",
            &[
                ("ResourceId.1", &ami),
                ("Tag.1.Key", key),
                ("Tag.1.Value", value),
            ],
        )
    };
    for (key, value) in [
        (key_129.as_str(), "x"),
        ("x", value_257.as_str()),
        ("aws:owner", "x"),
        ("AWS:Owner", "x"),
        ("", "x"),
    ] {
        let (code, message) = create_tag(key, value);
        assert_eq!(code, "InvalidParameterValue", "key {key:?}: {message}");
    }
    let fifty_one: Vec<(String, String)> = (1..=51)
        .flat_map(|n| {
            [
                (format!("Tag.{n}.Key"), format!("key{n}")),
                (format!("Tag.{n}.Value"), "v".to_string()),
            ]
        })
        .collect();
    let mut p: Vec<(&str, &str)> = vec![("ResourceId.1", ami.as_str())];
    p.extend(fifty_one.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    assert_eq!(agent.call_err("CreateTags", &p).0, "TagLimitExceeded");

    let run = |extra: &[(&str, &str)]| {
        let mut p: Vec<(&str, &str)> =
            vec![("ImageId", &ami), ("MinCount", "1"), ("MaxCount", "1")];
        p.extend_from_slice(extra);
        agent.call_err("RunInstances", &p)
    };
    let spec: Vec<(String, String)> = std::iter::once((
        "TagSpecification.1.ResourceType".to_string(),
        "instance".to_string(),
    ))
    .chain(
        fifty_one
            .iter()
            .map(|(k, v)| (format!("TagSpecification.1.{k}"), v.clone())),
    )
    .collect();
    let p: Vec<(&str, &str)> = spec.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(run(&p).0, "TagLimitExceeded");
    let (code, message) = run(&[
        ("TagSpecification.1.ResourceType", "instance"),
        ("TagSpecification.1.Tag.1.Key", &key_129),
    ]);
    assert_eq!(code, "InvalidParameterValue", "{message}");

    // User data: 16 KiB before base64 at most.
    use base64::Engine;
    let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![b'u'; n]);
    let (code, message) = run(&[("UserData", &b64(16 * 1024 + 1))]);
    assert_eq!(code, "InvalidParameterValue", "{message}");
    assert!(message.contains("16384"), "{message}");

    // Boot arguments past their bound.
    let probe = common::probe_manifest().with_file_name("probe.elf");
    let (code, message) = agent.call_err(
        "RegisterImage",
        &[
            ("Name", "long-args"),
            ("KernelPath", probe.to_str().unwrap()),
            ("EntryMode", "user"),
            ("BootArgs", &"x".repeat(4097)),
        ],
    );
    assert_eq!(code, "InvalidParameterValue", "{message}");
    assert!(message.contains("4096"), "{message}");

    // More parameters than the bound: a malformed request, named as such.
    let body: String = std::iter::once("Action=DescribeImages&Version=2016-11-15".to_string())
        .chain((1..=20_001).map(|n| format!("&Owner.{n}=self")))
        .collect();
    let (status, answer) = raw(&agent, body.as_bytes(), |_| {});
    assert_eq!(
        (status, code_of(&answer).as_str()),
        (400, "MalformedQueryString"),
        "{answer}"
    );
    // A body just over the 1 MiB bound, of a valid form.
    let mut body = b"Action=CreateTags&Version=2016-11-15&ResourceId.1=".to_vec();
    body.extend_from_slice(ami.as_bytes());
    body.extend_from_slice(b"&Tag.1.Key=big&Tag.1.Value=");
    body.resize((1 << 20) + 1, b'v');
    let (status, answer) = raw(&agent, &body, |_| {});
    assert_eq!(
        (status, code_of(&answer).as_str()),
        (413, "RequestEntityTooLarge")
    );

    assert_eq!(
        snapshot(&agent),
        before,
        "a refused request changed something"
    );
    let xml = agent.call("DescribeImages", &[]);
    assert_eq!(images_listed(&xml), 1);
}
