//! Requests built by botocore's own serializers and signers (for EC2, STS, SNS, Auto
//! Scaling, ELBv2 and CloudWatch in each of its three protocols, plus a presigned URL)
//! must verify, route to the right operation and decode to exactly the input botocore
//! was given.

mod common;

use base64::Engine;
use chrono::NaiveDateTime;
use serde_json::Value;
use wire::sigv4::{self, CredentialStore};
use wire::{HttpRequest, Limits, Protocol};

struct Store;

impl CredentialStore for Store {
    fn secret(&self, key: &str) -> Option<String> {
        (key == "AKIDWIRETEST").then(|| "wire/secret+key".to_string())
    }
}

fn signing_time(headers: &[(String, String)], query: &str) -> chrono::DateTime<chrono::Utc> {
    let from_header = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-date"))
        .map(|(_, v)| v.clone());
    let from_query = wire::query::form::pairs(query.as_bytes())
        .into_iter()
        .find(|(k, _)| k == "X-Amz-Date")
        .map(|(_, v)| v);
    let text = from_header.or(from_query).expect("a signing time");
    NaiveDateTime::parse_from_str(&text, "%Y%m%dT%H%M%SZ")
        .unwrap()
        .and_utc()
}

#[test]
fn botocore_requests_decode_to_their_input() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let registry = common::registry(&python);
    let lines = common::run(&python, &["requests"], "");
    assert!(lines.len() >= 14, "too few cases: {}", lines.len());
    for line in lines {
        let case: Value = serde_json::from_str(&line).unwrap();
        let name = format!(
            "{} {} {}",
            case["service"], case["protocol"], case["operation"]
        );
        let headers: Vec<(String, String)> = case["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_string(),
                    h[1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let body = base64::engine::general_purpose::STANDARD
            .decode(case["body"].as_str().unwrap())
            .unwrap();
        let query = case["query"].as_str().unwrap();
        let req = HttpRequest {
            method: case["method"].as_str().unwrap(),
            path: case["path"].as_str().unwrap(),
            query,
            headers: &headers,
            body: &body,
        };
        let now = signing_time(&headers, query) + chrono::Duration::seconds(5);
        let verified =
            sigv4::verify(&req, &Store, now).unwrap_or_else(|e| panic!("{name}: signature: {e}"));
        assert_eq!(
            verified.presigned,
            case.get("presigned").is_some(),
            "{name}"
        );
        let limits = Limits::default();
        let routed = registry
            .route(&req, Some(&verified.scope.service), &limits)
            .unwrap_or_else(|e| panic!("{name}: route: {}", wire::error_chain(&e)));
        assert_eq!(
            Some(routed.protocol),
            Protocol::from_name(case["protocol"].as_str().unwrap()),
            "{name}"
        );
        assert_eq!(
            routed.operation,
            case["operation"].as_str().unwrap(),
            "{name}"
        );
        let expected_service = registry
            .services()
            .iter()
            .find(|m| {
                m.metadata.endpoint_prefix == endpoint_prefix(case["service"].as_str().unwrap())
            })
            .unwrap();
        assert_eq!(
            routed.service.metadata.service_id, expected_service.metadata.service_id,
            "{name}"
        );
        let input = routed
            .decode(&req, &limits)
            .unwrap_or_else(|e| panic!("{name}: decode: {}", wire::error_chain(&e)));
        assert!(
            common::same(&input, &case["input"]),
            "{name}:\n got {input}\nwant {}",
            case["input"]
        );
    }
}

fn endpoint_prefix(service: &str) -> &str {
    match service {
        "elbv2" => "elasticloadbalancing",
        "cloudwatch" => "monitoring",
        s => s,
    }
}

#[test]
fn a_tampered_botocore_request_is_refused() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let line = common::run(&python, &["requests"], "").remove(0);
    let case: Value = serde_json::from_str(&line).unwrap();
    let headers: Vec<(String, String)> = case["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_string(),
                h[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut body = base64::engine::general_purpose::STANDARD
        .decode(case["body"].as_str().unwrap())
        .unwrap();
    body.extend_from_slice(b"&DryRun=true");
    let req = HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: &body,
    };
    let now = signing_time(&headers, "");
    assert_eq!(
        sigv4::verify(&req, &Store, now),
        Err(sigv4::SigV4Error::Mismatch)
    );
    let late = now + chrono::Duration::minutes(16);
    assert!(matches!(
        sigv4::verify(&req, &Store, late),
        Err(sigv4::SigV4Error::Skewed(_))
    ));
}

/// Requests as real boto3 clients send them: their own protocol choice (botocore picks
/// awsJson for CloudWatch), gzip request compression (forced for every size here), the
/// SDK's extra headers, signing over the compressed body.
#[test]
fn real_client_requests_verify_decompress_and_decode() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let registry = common::registry(&python);
    let lines = common::run(&python, &["client-requests"], "");
    assert_eq!(lines.len(), 5);
    let mut gzipped = 0;
    for line in lines {
        let case: Value = serde_json::from_str(&line).unwrap();
        let name = format!("{} {}", case["service"], case["operation"]);
        let headers: Vec<(String, String)> = case["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_string(),
                    h[1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let body = base64::engine::general_purpose::STANDARD
            .decode(case["body"].as_str().unwrap())
            .unwrap();
        let query = case["query"].as_str().unwrap();
        let sent = HttpRequest {
            method: case["method"].as_str().unwrap(),
            path: case["path"].as_str().unwrap(),
            query,
            headers: &headers,
            body: &body,
        };
        let now = signing_time(&headers, query);
        let verified =
            sigv4::verify(&sent, &Store, now).unwrap_or_else(|e| panic!("{name}: signature: {e}"));
        let limits = Limits::default();
        let plain = wire::request::decoded_body(&sent, &limits)
            .unwrap_or_else(|e| panic!("{name}: body: {e}"));
        if plain.len() != body.len() {
            gzipped += 1;
        }
        let req = HttpRequest {
            body: &plain,
            ..sent
        };
        let routed = registry
            .route(&req, Some(&verified.scope.service), &limits)
            .unwrap_or_else(|e| panic!("{name}: route: {}", wire::error_chain(&e)));
        assert_eq!(
            routed.operation,
            case["operation"].as_str().unwrap(),
            "{name}"
        );
        let input = routed
            .decode(&req, &limits)
            .unwrap_or_else(|e| panic!("{name}: decode: {}", wire::error_chain(&e)));
        assert!(
            common::same(&input, &case["input"]),
            "{name}:\n got {input}\nwant {}",
            case["input"]
        );
    }
    assert_eq!(gzipped, 1, "PutMetricData alone is compressed");
}

/// On the real models, each service's validation failures get its own error code.
#[test]
fn real_models_map_validation_failures_to_each_services_codes() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let registry = common::registry(&python);
    let limits = Limits::default();
    let form = |scope: &str, body: &str| -> String {
        let req = HttpRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &[],
            body: body.as_bytes(),
        };
        let routed = registry.route(&req, Some(scope), &limits).unwrap();
        let e = routed.decode(&req, &limits).unwrap_err();
        routed.decode_error(&e).code
    };
    let cases = [
        ("ec2", "Action=RunInstances&MaxCount=1", "MissingParameter"),
        (
            "ec2",
            "Action=RunInstances&MinCount=1&MaxCount=1&InstanceType=t2.bogus",
            "InvalidParameterValue",
        ),
        (
            "ec2",
            "Action=DescribeInstances&InstanceIds.1=i-1",
            "UnknownParameter",
        ),
        ("sns", "Action=Publish&TopicArn=arn", "InvalidParameter"),
        (
            "sts",
            "Action=AssumeRole&RoleArn=arn:aws:iam::0:role/r",
            "ValidationError",
        ),
        (
            "autoscaling",
            "Action=DescribeTags&MaxRecords=x",
            "ValidationError",
        ),
        (
            "elasticloadbalancing",
            "Action=DescribeTags",
            "ValidationError",
        ),
        (
            "monitoring",
            "Action=PutMetricData&MetricData.member.1.MetricName=m",
            "MissingParameter",
        ),
        (
            "monitoring",
            "Action=PutMetricData&Namespace=n&MetricData.member.1.MetricName=m&MetricData.member.1.Unit=Parsecs",
            "ValidationError",
        ),
    ];
    for (scope, body, code) in cases {
        assert_eq!(form(scope, body), code, "{scope} {body}");
    }
    let headers = vec![(
        "X-Amz-Target".to_string(),
        "GraniteServiceVersion20100801.PutMetricData".to_string(),
    )];
    let req = HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: br#"{"Namespace": 1}"#,
    };
    let routed = registry.route(&req, Some("monitoring"), &limits).unwrap();
    let e = routed.decode(&req, &limits).unwrap_err();
    let s = routed.decode_error(&e);
    assert_eq!(s.code, "InvalidParameterValue");
    let resp = routed.error(&s, "rid");
    assert_eq!(
        resp.header("x-amzn-query-error"),
        Some("InvalidParameterValue;Sender")
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&resp.body).unwrap()["__type"],
        "InvalidParameterValueException"
    );
}
