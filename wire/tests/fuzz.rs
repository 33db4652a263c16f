//! Property tests feeding every decoder what a caller can send: random and hostile forms,
//! JSON, CBOR, headers and signatures, and random outputs to the encoders. Nothing may
//! panic, and each call must finish quickly. `PROPTEST_CASES` sets the cases (64 unless
//! told).

mod common;

use std::time::{Duration, Instant};

use proptest::prelude::*;
use wire::sigv4::{self, CredentialStore};
use wire::{HttpRequest, Limits, Protocol, Registry, encode_error, encode_output};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.add(common::toy_ec2()).unwrap();
    r.add(common::toy_query()).unwrap();
    r
}

const BUDGET: Duration = Duration::from_millis(500);

/// Routes and decodes; returns how long it took. Errors are fine, panics are not.
fn run(reg: &Registry, req: &HttpRequest<'_>, scope: Option<&str>) -> Duration {
    let started = Instant::now();
    let limits = Limits::default();
    match reg.route(req, scope, &limits) {
        Ok(r) => match r.decode(req, &limits) {
            Ok(v) => {
                // What a decoder accepts is a contract Value the validator accepts too.
                let op = r.service.operation(&r.operation).unwrap();
                if let Some(input) = &op.input {
                    let checked = wire::validate::value(
                        r.service,
                        r.service.resolve(input),
                        &v,
                        "",
                        limits.max_depth,
                    );
                    assert_eq!(checked, Ok(()), "decoded {v}");
                }
                let _ = r.output(&v, "rid");
            }
            Err(e) => {
                let _ = r.error(&r.decode_error(&e), "rid");
            }
        },
        Err(e) => {
            let _ = e.response("rid");
        }
    }
    started.elapsed()
}

fn form_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "Action|Version|ImageId|Count|Kind|DryRun|When|Data|Ratio|OddName|Name|Namespace|Big",
        "InstanceId\\.[0-9]{1,12}",
        "Filter\\.[0-9]{1,3}\\.(Name|Value\\.[0-9]{1,3})",
        "Node(\\.Child){0,40}\\.Label",
        "Items(\\.member)?\\.[0-9]{1,3}\\.(Name|Value|Level)",
        "(Attributes\\.entry|FlatMap)\\.[0-9]{1,2}\\.(key|value|K|V)",
        "Entry\\.[0-9]{1,3}",
        "[ -~]{1,30}",
    ]
}

fn form_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "RunThings|PutThings|2016-11-15|true|false|1|0|-1|small|High",
        "\\PC{0,20}",
        "[0-9.eE+-]{1,12}"
    ]
}

fn form(pairs: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

struct Store;

impl CredentialStore for Store {
    fn secret(&self, key: &str) -> Option<String> {
        (key == "AKID").then(|| "secret".to_string())
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_forms(pairs in proptest::collection::vec((form_key(), form_value()), 0..40), ec2 in any::<bool>()) {
        let reg = registry();
        let body = form(&pairs);
        let req = HttpRequest { method: "POST", path: "/", query: "", headers: &[], body: body.as_bytes() };
        let scope = if ec2 { "ec2" } else { "monitoring" };
        prop_assert!(run(&reg, &req, Some(scope)) < BUDGET);
    }

    #[test]
    fn fuzz_raw_form_text(body in "\\PC{0,400}", query in "[ -~]{0,100}") {
        let reg = registry();
        let req = HttpRequest { method: "POST", path: "/", query: &query, headers: &[], body: body.as_bytes() };
        prop_assert!(run(&reg, &req, Some("ec2")) < BUDGET);
    }

    #[test]
    fn fuzz_json_bytes(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let reg = registry();
        let headers = vec![("X-Amz-Target".to_string(), "ToyService20100801.PutThings".to_string())];
        let req = HttpRequest { method: "POST", path: "/", query: "", headers: &headers, body: &body };
        prop_assert!(run(&reg, &req, None) < BUDGET);
    }

    #[test]
    fn fuzz_json_values(v in json_value()) {
        let reg = registry();
        let body = serde_json::to_vec(&serde_json::json!({"Namespace": "n", "Items": [v.clone()], "Attributes": v})).unwrap();
        let headers = vec![("X-Amz-Target".to_string(), "ToyService20100801.PutThings".to_string())];
        let req = HttpRequest { method: "POST", path: "/", query: "", headers: &headers, body: &body };
        prop_assert!(run(&reg, &req, None) < BUDGET);
    }

    #[test]
    fn fuzz_cbor_bytes(body in proptest::collection::vec(any::<u8>(), 0..400), prefix in 0usize..4) {
        let reg = registry();
        // Start some bodies like a real input map so the fuzzer gets past the first byte.
        let mut full = match prefix {
            0 => vec![],
            1 => vec![0xa1, 0x69],
            2 => b"\xa1\x69Namespace".to_vec(),
            _ => b"\xa2\x69Namespace\x61n\x65Items".to_vec(),
        };
        full.extend(body);
        let headers = vec![("smithy-protocol".to_string(), "rpc-v2-cbor".to_string())];
        let req = HttpRequest { method: "POST", path: "/service/ToyService20100801/operation/PutThings", query: "", headers: &headers, body: &full };
        prop_assert!(run(&reg, &req, None) < BUDGET);
    }

    #[test]
    fn fuzz_headers_and_signatures(
        auth in "AWS4-HMAC-SHA256 (Credential=[ -~]{0,60}|[ -~]{0,40})(, SignedHeaders=[a-z;-]{0,30})?(, Signature=[0-9a-f]{0,64})?",
        date in "[0-9TZ]{0,20}",
        query in "(X-Amz-[A-Za-z]{0,12}=[ -~]{0,20}&){0,6}",
    ) {
        let headers = vec![
            ("authorization".to_string(), auth),
            ("x-amz-date".to_string(), date),
            ("host".to_string(), "h".to_string()),
        ];
        let started = Instant::now();
        let req = HttpRequest { method: "POST", path: "/", query: &query, headers: &headers, body: b"x" };
        let _ = sigv4::verify(&req, &Store, chrono::Utc::now());
        let presigned = HttpRequest { headers: &headers[2..], ..req };
        let _ = sigv4::verify(&presigned, &Store, chrono::Utc::now());
        prop_assert!(started.elapsed() < BUDGET);
    }

    #[test]
    fn fuzz_outputs(v in json_value(), p in 0usize..4) {
        let q = common::toy_query();
        let e = common::toy_ec2();
        let protocol = [Protocol::RpcV2Cbor, Protocol::Json, Protocol::Query, Protocol::Ec2][p];
        let (model, op) = if protocol == Protocol::Ec2 { (&e, "RunThings") } else { (&q, "PutThings") };
        let _ = encode_output(model, protocol, op, &v, "rid");
        let _ = encode_output(model, protocol, op, &serde_json::json!({"Items": [v.clone()], "Things": [v.clone()], "Attributes": v}), "rid");
        let _ = encode_error(Some(model), protocol, &wire::ServiceError::new("X", "y"), "rid");
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        "(Name|Value|Level|High|Low|\\PC{0,8})".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(
                "(Name|Value|Level|ThingId|Count|Tags|Key|[a-z]{1,4})",
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body, its headers, path and signing scope.
type Hostile<'a> = (Vec<u8>, &'a [(String, String)], &'a str, Option<&'a str>);

/// Hostile bodies built by hand: deep nesting, huge declared lengths, huge indices and
/// many parameters, each answered quickly and without a panic.
#[test]
fn hostile_bodies_are_cheap() {
    let reg = registry();
    let cbor_headers = vec![("smithy-protocol".to_string(), "rpc-v2-cbor".to_string())];
    let json_headers = vec![(
        "X-Amz-Target".to_string(),
        "ToyService20100801.PutThings".to_string(),
    )];
    let path = "/service/ToyService20100801/operation/PutThings";
    let mut cases: Vec<Hostile<'_>> = Vec::new();
    cases.push((vec![0x81; 500_000], &cbor_headers, path, None));
    cases.push((
        vec![
            0xa1, 0x61, b'a', 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
        &cbor_headers,
        path,
        None,
    ));
    cases.push((
        vec![0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &cbor_headers,
        path,
        None,
    ));
    cases.push((
        vec![0xbb, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff],
        &cbor_headers,
        path,
        None,
    ));
    cases.push((vec![0x9f; 200_000], &cbor_headers, path, None));
    cases.push((vec![0xc1; 200_000], &cbor_headers, path, None));
    cases.push(("[".repeat(500_000).into_bytes(), &json_headers, "/", None));
    cases.push((
        format!(
            "{{\"Namespace\":\"n\",\"Items\":[{}]}}",
            "{\"Name\":\"a\"},".repeat(50_000) + "{}"
        )
        .into_bytes(),
        &json_headers,
        "/",
        None,
    ));
    let many: String = (1..=25_000).map(|i| format!("InstanceId.{i}=x&")).collect();
    cases.push((
        format!("Action=RunThings&ImageId=a&Count=1&{many}").into_bytes(),
        &[],
        "/",
        Some("ec2"),
    ));
    let wide: String = (1..=19_000)
        .map(|i| format!("Filter.1.Value.{}=x&", 4_000_000_000u32 - i))
        .collect();
    cases.push((
        format!("Action=RunThings&ImageId=a&Count=1&{wide}").into_bytes(),
        &[],
        "/",
        Some("ec2"),
    ));
    let deep = format!(
        "Action=RunThings&ImageId=a&Count=1&Node.{}Label=x",
        "Child.".repeat(100)
    );
    cases.push((deep.into_bytes(), &[], "/", Some("ec2")));
    cases.push((vec![b'a'; 2 << 20], &[], "/", Some("ec2")));
    for (body, headers, path, scope) in &cases {
        let req = HttpRequest {
            method: "POST",
            path,
            query: "",
            headers,
            body,
        };
        let took = run(&reg, &req, *scope);
        assert!(
            took < Duration::from_secs(2),
            "{} bytes at {path} took {took:?}",
            body.len()
        );
    }
}
