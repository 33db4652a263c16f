//! awsJson and RPC v2 CBOR decoding, and routing, on the trimmed fixture model.

mod common;

use ciborium::Value as Cbor;
use serde_json::json;
use wire::{DecodeError, Limits, Protocol, Registry, errors};

fn json_input(body: &str) -> Result<serde_json::Value, DecodeError> {
    let m = common::toy_query();
    let req = common::request("POST", "/", &[], body.as_bytes());
    wire::decode_input(&m, Protocol::Json, "PutThings", &req, &Limits::default())
}

fn cbor_bytes(v: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).unwrap();
    out
}

fn text(s: &str) -> Cbor {
    Cbor::Text(s.into())
}

#[test]
fn json_decodes_times_blobs_and_nulls() {
    let v = json_input(
        r#"{"Namespace":"ns","Items":[{"Name":"a","Value":2}],"Flat":["x"],
            "Attributes":{"k":"v"},"When":1796605323.25,"Data":"AAE=","Big":null}"#,
    )
    .unwrap();
    assert_eq!(
        v,
        json!({"Namespace": "ns", "Items": [{"Name": "a", "Value": 2.0}], "Flat": ["x"],
               "Attributes": {"k": "v"}, "When": "2026-12-07T01:02:03.250Z", "Data": "AAE="})
    );
    assert_eq!(
        json_input("").unwrap_err().to_string(),
        "the input is invalid"
    );
}

#[test]
fn json_refusals() {
    let m = common::toy_query();
    for (body, code, needle) in [
        (
            r#"{"Namespace":"ns","Bogus":1}"#,
            "InvalidParameterValue",
            "Bogus",
        ),
        (r#"{"Namespace":5}"#, "InvalidParameterValue", "Namespace"),
        (r#"{}"#, "MissingParameter", "Namespace"),
        (
            r#"{"Namespace":"ns","Items":[{"Name":"a","Level":"Mid"}]}"#,
            "ValidationError",
            "Items[0].Level",
        ),
        (
            r#"{"Namespace":"ns","Data":"!!"}"#,
            "InvalidParameterValue",
            "Data",
        ),
        (
            r#"{"Namespace":"ns","Big":1.5}"#,
            "InvalidParameterValue",
            "Big",
        ),
        (r#"{"Namespace":"ns""#, "SerializationException", "JSON"),
        (r#"[1,2]"#, "InvalidParameterValue", ""),
    ] {
        let e = json_input(body).unwrap_err();
        // The toy model's serviceId is CloudWatch's, so CloudWatch's codes apply.
        let s = errors::decode(&m, Protocol::Json, &e);
        assert_eq!(s.code, code, "{body}: {}", s.message);
        assert!(s.message.contains(needle), "{body}: {}", s.message);
    }
}

#[test]
fn json_nesting_is_bounded() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let e = json_input(&deep).unwrap_err();
    assert!(matches!(e, DecodeError::Doc(_)), "{e:?}");
}

#[test]
fn cbor_decodes_tags_and_bytes() {
    let m = common::toy_query();
    let body = cbor_bytes(&Cbor::Map(vec![
        (text("Namespace"), text("ns")),
        (
            text("When"),
            Cbor::Tag(1, Box::new(Cbor::Float(1796605323.5))),
        ),
        (text("Data"), Cbor::Bytes(vec![0, 1])),
        (
            text("Items"),
            Cbor::Array(vec![Cbor::Map(vec![
                (text("Name"), text("a")),
                (text("Value"), Cbor::Float(0.5)),
            ])]),
        ),
        (text("Big"), Cbor::Null),
    ]));
    let req = common::request(
        "POST",
        "/service/ToyService20100801/operation/PutThings",
        &[],
        &body,
    );
    let v = wire::decode_input(
        &m,
        Protocol::RpcV2Cbor,
        "PutThings",
        &req,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(
        v,
        json!({"Namespace": "ns", "When": "2026-12-07T01:02:03.500Z", "Data": "AAE=",
               "Items": [{"Name": "a", "Value": 0.5}]})
    );
    for bad in [
        Cbor::Map(vec![
            (text("Namespace"), text("ns")),
            (text("Data"), text("AAE=")),
        ]),
        Cbor::Map(vec![
            (text("Namespace"), text("ns")),
            (text("When"), Cbor::Tag(0, Box::new(text("x")))),
        ]),
        Cbor::Map(vec![(Cbor::Integer(1.into()), text("ns"))]),
    ] {
        let body = cbor_bytes(&bad);
        let req = common::request("POST", "/", &[], &body);
        assert!(
            wire::decode_input(
                &m,
                Protocol::RpcV2Cbor,
                "PutThings",
                &req,
                &Limits::default()
            )
            .is_err()
        );
    }
    let mut trailing = cbor_bytes(&Cbor::Map(vec![(text("Namespace"), text("ns"))]));
    trailing.push(0);
    let req = common::request("POST", "/", &[], &trailing);
    assert!(
        wire::decode_input(
            &m,
            Protocol::RpcV2Cbor,
            "PutThings",
            &req,
            &Limits::default()
        )
        .is_err()
    );
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.add(common::toy_ec2()).unwrap();
    r.add(common::toy_query()).unwrap();
    r
}

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn routing_by_header_path_and_scope() {
    let reg = registry();
    let limits = Limits::default();
    let cbor = h(&[("smithy-protocol", "rpc-v2-cbor")]);
    let req = common::request(
        "POST",
        "/service/ToyService20100801/operation/PutThings",
        &cbor,
        b"",
    );
    let r = reg.route(&req, Some("monitoring"), &limits).unwrap();
    assert_eq!(
        (r.protocol, r.operation.as_str()),
        (Protocol::RpcV2Cbor, "PutThings")
    );
    let json = h(&[("X-Amz-Target", "ToyService20100801.PutThings")]);
    let req = common::request("POST", "/", &json, b"{}");
    let r = reg.route(&req, Some("monitoring"), &limits).unwrap();
    assert_eq!(r.protocol, Protocol::Json);
    let req = common::request("POST", "/", &[], b"Action=PutThings&Namespace=n");
    let r = reg.route(&req, Some("monitoring"), &limits).unwrap();
    assert_eq!(r.protocol, Protocol::Query);
    let req = common::request("POST", "/", &[], b"Action=RunThings");
    let r = reg.route(&req, Some("ec2"), &limits).unwrap();
    assert_eq!(r.protocol, Protocol::Ec2);
    assert_eq!(r.service.metadata.service_id, "EC2");
}

/// Headers, path, body, signing scope and the error code expected.
type Misroute<'a> = (
    Vec<(String, String)>,
    &'a str,
    &'a [u8],
    Option<&'a str>,
    &'a str,
);

#[test]
fn routing_failures_answer_in_the_protocol() {
    let reg = registry();
    let limits = Limits::default();
    let cases: Vec<Misroute<'_>> = vec![
        (
            h(&[("smithy-protocol", "rpc-v2-cbor")]),
            "/service/ToyService20100801/operation/Nope",
            b"",
            Some("monitoring"),
            "UnknownOperationException",
        ),
        (
            h(&[("smithy-protocol", "rpc-v2-cbor")]),
            "/service/Other/operation/PutThings",
            b"",
            None,
            "UnknownOperationException",
        ),
        (
            h(&[("X-Amz-Target", "ToyService20100801.Nope")]),
            "/",
            b"{}",
            None,
            "UnknownOperationException",
        ),
        (
            h(&[("X-Amz-Target", "ToyService20100801.PutThings")]),
            "/",
            b"{}",
            Some("ec2"),
            "IncompleteSignature",
        ),
        (vec![], "/", b"Action=Nope", Some("ec2"), "InvalidAction"),
        (
            vec![],
            "/",
            b"Action=RunThings",
            Some("sqs"),
            "InvalidAction",
        ),
        (
            vec![],
            "/",
            b"Namespace=x",
            Some("monitoring"),
            "MissingAction",
        ),
    ];
    for (headers, path, body, scope, code) in cases {
        let req = common::request("POST", path, &headers, body);
        let e = reg.route(&req, scope, &limits).unwrap_err();
        assert_eq!(e.service_error().code, code, "{path} {scope:?}");
        let resp = e.response("rid");
        assert!(resp.status >= 400);
    }
}
