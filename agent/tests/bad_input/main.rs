//! Bad input: every error code from a request that should produce it, malformed bodies, bad
//! signatures, huge bodies, unknown actions, hostile filters and EC2's limits (`limits.rs`);
//! and none of it changes anything.

#[path = "../common/mod.rs"]
mod common;
mod limits;

use std::time::Duration;

use cli::client::sign_post;
use common::Agent;

/// Sends a raw POST signed with `creds` (optionally tampered with); returns (status, body).
pub(crate) fn raw(
    agent: &Agent,
    body: &[u8],
    tamper: impl FnOnce(&mut Vec<(String, String)>),
) -> (u16, String) {
    let creds = agent.credentials();
    let host = agent.endpoint.trim_start_matches("http://").to_string();
    let mut headers = sign_post(
        &creds.access_key,
        &creds.secret_key,
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

pub(crate) fn code_of(body: &str) -> String {
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
pub(crate) fn snapshot(agent: &Agent) -> Vec<String> {
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
    let other = sign_post(
        &creds.access_key,
        &creds.secret_key,
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
    let old = sign_post(
        &creds.access_key,
        &creds.secret_key,
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
