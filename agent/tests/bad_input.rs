//! Bad input: every error code from a request that should produce it, malformed bodies, bad
//! signatures, huge bodies, unknown actions; and none of it changes anything.

mod common;

use std::time::Duration;

use agent::api::sigv4;
use common::Agent;

/// Sends a raw POST signed with `creds` (optionally tampered with); returns (status, body).
fn raw(
    agent: &Agent,
    body: &[u8],
    tamper: impl FnOnce(&mut Vec<(String, String)>),
) -> (u16, String) {
    let creds = agent.credentials();
    let host = agent.endpoint.trim_start_matches("http://").to_string();
    let mut headers = sigv4::sign_post(
        &creds.access_key,
        &creds.secret_key,
        "local-1",
        &host,
        "/",
        body,
        chrono::Utc::now(),
    );
    tamper(&mut headers);
    let mut req = ureq::post(&format!("{}/", agent.endpoint)).timeout(Duration::from_secs(10));
    for (k, v) in &headers {
        if k != "host" {
            req = req.set(k, v);
        }
    }
    match req.send_bytes(body) {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("transport error: {e}"),
    }
}

fn code_of(body: &str) -> String {
    let doc = roxmltree::Document::parse(body).unwrap_or_else(|e| panic!("not XML ({e}): {body}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "Response", "{body}");
    assert!(
        doc.descendants().any(|n| n.has_tag_name("RequestID")),
        "{body}"
    );
    doc.descendants()
        .find(|n| n.has_tag_name("Code"))
        .and_then(|n| n.text())
        .unwrap_or("")
        .to_string()
}

fn set(headers: &mut [(String, String)], name: &str, value: String) {
    for (k, v) in headers.iter_mut() {
        if k == name {
            *v = value.clone();
        }
    }
}

/// A snapshot of everything the agent stores.
fn snapshot(agent: &Agent) -> Vec<String> {
    [
        "DescribeInstances",
        "DescribeImages",
        "DescribeKeyPairs",
        "DescribeTags",
    ]
    .iter()
    .map(|a| {
        let xml = agent.call(a, &[]);
        // Drop the per-request id.
        let start = xml.find("</requestId>").unwrap();
        xml[start..].to_string()
    })
    .collect()
}

#[test]
fn every_error_code_and_nothing_changes() {
    let agent = Agent::start(&["--max-vcpus", "4", "--max-memory-mib", "4096"]);
    let ami = agent.register_probe();
    agent.call("CreateKeyPair", &[("KeyName", "taken")]);
    let ids = common::instance_ids(&agent.call(
        "RunInstances",
        &[
            ("ImageId", &ami),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("InstanceType", "t2.nano"),
            ("ClientToken", "tok-1"),
        ],
    ));
    let gone = agent.run_one(&ami);
    agent.wait_state(&ids[0], "running", Duration::from_secs(20));
    agent.call("TerminateInstances", &[("InstanceId.1", &gone)]);
    agent.wait_state(&gone, "terminated", Duration::from_secs(20));
    let before = snapshot(&agent);
    let run = |extra: &[(&'static str, &str)]| {
        let mut p: Vec<(&str, &str)> = vec![("MinCount", "1"), ("MaxCount", "1")];
        p.extend_from_slice(extra);
        agent.call_err("RunInstances", &p)
    };

    let cases: Vec<(&str, (String, String))> = vec![
        ("MissingParameter", run(&[])),
        (
            "MissingParameter",
            agent.call_err("RunInstances", &[("ImageId", &ami)]),
        ),
        (
            "InvalidParameterValue",
            run(&[("ImageId", &ami), ("InstanceType", "t2.huge")]),
        ),
        (
            "InvalidParameterValue",
            agent.call_err(
                "RunInstances",
                &[("ImageId", &ami), ("MinCount", "3"), ("MaxCount", "2")],
            ),
        ),
        (
            "InvalidParameterValue",
            agent.call_err(
                "RunInstances",
                &[("ImageId", &ami), ("MinCount", "x"), ("MaxCount", "1")],
            ),
        ),
        (
            "InvalidParameterValue",
            run(&[("ImageId", &ami), ("UserData", "%%%not base64")]),
        ),
        (
            "InvalidParameterValue",
            run(&[
                ("ImageId", &ami),
                ("InstanceInitiatedShutdownBehavior", "explode"),
            ]),
        ),
        (
            "InvalidParameterValue",
            run(&[
                ("ImageId", &ami),
                ("TagSpecification.1.ResourceType", "instance"),
                ("TagSpecification.1.Tag.1.Key", "aws:reserved"),
            ]),
        ),
        (
            "InvalidAMIID.NotFound",
            run(&[("ImageId", "ami-0123456789abcdef0")]),
        ),
        ("InvalidAMIID.Malformed", run(&[("ImageId", "image-1")])),
        (
            "InvalidKeyPair.NotFound",
            run(&[("ImageId", &ami), ("KeyName", "nope")]),
        ),
        (
            "InsufficientInstanceCapacity",
            run(&[("ImageId", &ami), ("InstanceType", "m5.xlarge")]),
        ),
        // The first instance was launched with this token as a t2.nano.
        (
            "IdempotentParameterMismatch",
            run(&[
                ("ImageId", &ami),
                ("InstanceType", "t2.micro"),
                ("ClientToken", "tok-1"),
            ]),
        ),
        (
            "InvalidInstanceID.NotFound",
            agent.call_err("StopInstances", &[("InstanceId.1", "i-0123456789abcdef0")]),
        ),
        // One unknown id among good ones: nothing is stopped.
        (
            "InvalidInstanceID.NotFound",
            agent.call_err(
                "StopInstances",
                &[
                    ("InstanceId.1", &ids[0]),
                    ("InstanceId.2", "i-0123456789abcdef0"),
                ],
            ),
        ),
        (
            "InvalidInstanceID.NotFound",
            agent.call_err(
                "DescribeInstances",
                &[("InstanceId.1", "i-0123456789abcdef0")],
            ),
        ),
        (
            "InvalidInstanceID.NotFound",
            agent.call_err("GetConsoleOutput", &[("InstanceId", "i-0123456789abcdef0")]),
        ),
        (
            "InvalidInstanceID.Malformed",
            agent.call_err("TerminateInstances", &[("InstanceId.1", "bogus")]),
        ),
        ("MissingParameter", agent.call_err("StartInstances", &[])),
        (
            "IncorrectInstanceState",
            agent.call_err("StartInstances", &[("InstanceId.1", &gone)]),
        ),
        (
            "IncorrectInstanceState",
            agent.call_err("StopInstances", &[("InstanceId.1", &gone)]),
        ),
        (
            "IncorrectInstanceState",
            agent.call_err("RebootInstances", &[("InstanceId.1", &gone)]),
        ),
        (
            "InvalidParameterValue",
            agent.call_err(
                "DescribeInstances",
                &[("Filter.1.Name", "flavour"), ("Filter.1.Value.1", "x")],
            ),
        ),
        (
            "InvalidParameterValue",
            agent.call_err("DescribeInstances", &[("MaxResults", "100000")]),
        ),
        (
            "InvalidParameterValue",
            agent.call_err("DescribeInstances", &[("NextToken", "garbage")]),
        ),
        (
            "InvalidParameterCombination",
            agent.call_err(
                "DescribeInstances",
                &[("InstanceId.1", &ids[0]), ("MaxResults", "5")],
            ),
        ),
        (
            "InvalidKeyPair.Duplicate",
            agent.call_err("CreateKeyPair", &[("KeyName", "taken")]),
        ),
        (
            "InvalidParameterValue",
            agent.call_err("CreateKeyPair", &[("KeyName", "k"), ("KeyType", "dsa")]),
        ),
        (
            "InvalidKey.Format",
            agent.call_err(
                "ImportKeyPair",
                &[("KeyName", "k"), ("PublicKeyMaterial", "bm90IGEga2V5")],
            ),
        ),
        (
            "InvalidParameterValue",
            agent.call_err(
                "RegisterImage",
                &[("Name", "x-image"), ("KernelPath", "/nonexistent/kernel")],
            ),
        ),
        ("InvalidAMIName.Duplicate", {
            let m = common::probe_manifest();
            let m = m.to_str().unwrap();
            agent.call(
                "RegisterImage",
                &[("Name", "dup-name"), ("ImageLocation", m)],
            );
            agent.call_err(
                "RegisterImage",
                &[("Name", "dup-name"), ("ImageLocation", m)],
            )
        }),
        (
            "InvalidAMIID.NotFound",
            agent.call_err("DeregisterImage", &[("ImageId", "ami-0123456789abcdef0")]),
        ),
        (
            "InvalidInstanceType",
            agent.call_err("DescribeInstanceTypes", &[("InstanceType.1", "z9.mega")]),
        ),
        (
            "InvalidID",
            agent.call_err(
                "CreateTags",
                &[
                    ("ResourceId.1", "vol-1"),
                    ("Tag.1.Key", "a"),
                    ("Tag.1.Value", "b"),
                ],
            ),
        ),
        ("InvalidAction", agent.call_err("LaunchRockets", &[])),
        (
            "DryRunOperation",
            agent.call_err(
                "TerminateInstances",
                &[("InstanceId.1", &ids[0]), ("DryRun", "true")],
            ),
        ),
    ];
    for (want, (code, message)) in &cases {
        assert_eq!(code, want, "message: {message}");
        assert!(!message.is_empty());
    }
    // The dup-name image is the only change a request above was meant to make.
    agent.call(
        "DeregisterImage",
        &[("ImageId", &{
            let xml = agent.call(
                "DescribeImages",
                &[("Filter.1.Name", "name"), ("Filter.1.Value.1", "dup-name")],
            );
            common::child_text(
                roxmltree::Document::parse(&xml)
                    .unwrap()
                    .descendants()
                    .find(|n| n.has_tag_name("item"))
                    .unwrap(),
                "imageId",
            )
        })],
    );

    // Malformed bodies, unknown actions, huge bodies, bad signatures: over raw HTTP.
    let (status, body) = raw(
        &agent,
        b"Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=%zz",
        |_| {},
    );
    assert_eq!(
        (status, code_of(&body).as_str()),
        (400, "MalformedQueryString")
    );
    let (status, body) = raw(
        &agent,
        b"Action=DescribeInstances&Action=RunInstances",
        |_| {},
    );
    assert_eq!(
        (status, code_of(&body).as_str()),
        (400, "MalformedQueryString")
    );
    let (status, body) = raw(&agent, &[0xff, 0xfe, b'=', 0x80], |_| {});
    assert_eq!(
        (status, code_of(&body).as_str()),
        (400, "MalformedQueryString")
    );
    let (status, body) = raw(&agent, b"Version=2016-11-15", |_| {});
    assert_eq!((status, code_of(&body).as_str()), (400, "MissingParameter"));
    let (status, body) = raw(&agent, b"Action=Nope&Version=2016-11-15", |_| {});
    assert_eq!((status, code_of(&body).as_str()), (400, "InvalidAction"));
    let huge = vec![b'a'; 2 << 20];
    let (status, body) = raw(&agent, &huge, |_| {});
    assert_eq!(
        (status, code_of(&body).as_str()),
        (413, "RequestEntityTooLarge")
    );

    let good = b"Action=TerminateInstances&Version=2016-11-15&InstanceId.1=".to_vec();
    let mut body_t = good.clone();
    body_t.extend_from_slice(ids[0].as_bytes());
    // Unsigned.
    let (status, body) = raw(&agent, &body_t, |h| h.retain(|(k, _)| k != "authorization"));
    assert_eq!(
        (status, code_of(&body).as_str()),
        (401, "MissingAuthenticationToken")
    );
    // Wrong signature (one hex digit changed).
    let (status, body) = raw(&agent, &body_t, |h| {
        for (k, v) in h.iter_mut() {
            if k == "authorization" {
                let last = v.pop().unwrap();
                v.push(if last == '0' { '1' } else { '0' });
            }
        }
    });
    assert_eq!(
        (status, code_of(&body).as_str()),
        (403, "SignatureDoesNotMatch")
    );
    // A signature over a different body.
    let creds = agent.credentials();
    let host = agent.endpoint.trim_start_matches("http://").to_string();
    let other = sigv4::sign_post(
        &creds.access_key,
        &creds.secret_key,
        "local-1",
        &host,
        "/",
        b"Action=DescribeInstances",
        chrono::Utc::now(),
    );
    let (status, body) = raw(&agent, &body_t, |h| *h = other);
    assert_eq!(
        (status, code_of(&body).as_str()),
        (403, "SignatureDoesNotMatch")
    );
    // Unknown access key.
    let (status, body) = raw(&agent, &body_t, |h| {
        for (k, v) in h.iter_mut() {
            if k == "authorization" {
                *v = v.replace(&creds.access_key, "AKIAAAAAAAAAAAAAAAAA");
            }
        }
    });
    assert_eq!((status, code_of(&body).as_str()), (401, "AuthFailure"));
    // Garbage Authorization header.
    let (status, body) = raw(&agent, &body_t, |h| {
        set(h, "authorization", "Bearer x".into())
    });
    assert_eq!((status, code_of(&body).as_str()), (401, "AuthFailure"));
    // Signed an hour ago.
    let old = sigv4::sign_post(
        &creds.access_key,
        &creds.secret_key,
        "local-1",
        &host,
        "/",
        &body_t,
        chrono::Utc::now() - chrono::Duration::hours(1),
    );
    let (status, body) = raw(&agent, &body_t, |h| *h = old);
    assert_eq!((status, code_of(&body).as_str()), (400, "RequestExpired"));
    // Credentials scoped to another service.
    let (status, body) = raw(&agent, &body_t, |h| {
        for (k, v) in h.iter_mut() {
            if k == "authorization" {
                *v = v.replace("/ec2/aws4_request", "/s3/aws4_request");
            }
        }
    });
    assert_eq!(
        (status, code_of(&body).as_str()),
        (403, "UnauthorizedOperation")
    );

    // Nothing above changed anything, and the instance still runs.
    assert_eq!(snapshot(&agent), before);
    assert_eq!(agent.instance(&ids[0]).state, "running");

    // The CLI prints the EC2 code and message and exits non-zero.
    let out = agent.ec2(&["stop-instances", "--instance-ids", "i-0123456789abcdef0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("InvalidInstanceID.NotFound") && err.contains("does not exist"),
        "{err}"
    );
}

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
) -> Result<String, agent::cli::client::CallError> {
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
