//! SigV4 verification: AWS's published example, presigned queries, expiry, skew, the
//! payload hash header and tampering.

use chrono::{DateTime, TimeZone, Utc};
use wire::HttpRequest;
use wire::sigv4::{self, CredentialStore, Scope, SigV4Error, SignedParts};

struct Store;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

impl CredentialStore for Store {
    fn secret(&self, key: &str) -> Option<String> {
        (key == "AKIDEXAMPLE").then(|| SECRET.to_string())
    }
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2015, 8, 30, 12, 36, 0).unwrap()
}

/// AWS's published example (the IAM ListUsers GET request in the SigV4 documentation).
#[test]
fn matches_aws_documentation_example() {
    let parts = SignedParts {
        method: "GET",
        path: "/",
        query: vec![
            ("Action".into(), "ListUsers".into()),
            ("Version".into(), "2010-05-08".into()),
        ],
        headers: vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            ),
            ("host".into(), "iam.amazonaws.com".into()),
            ("x-amz-date".into(), "20150830T123600Z".into()),
        ],
        payload_hash: sigv4::sha256_hex(b""),
    };
    let canonical = sigv4::canonical_request(&parts);
    assert_eq!(
        sigv4::sha256_hex(canonical.as_bytes()),
        "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
    );
    let scope = Scope {
        date: "20150830".into(),
        region: "us-east-1".into(),
        service: "iam".into(),
    };
    assert_eq!(
        sigv4::signature(SECRET, "20150830T123600Z", &scope, &canonical),
        "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    );
    let headers = vec![
        (
            "Content-Type".to_string(),
            "application/x-www-form-urlencoded; charset=utf-8".to_string(),
        ),
        ("Host".to_string(), "iam.amazonaws.com".to_string()),
        ("X-Amz-Date".to_string(), "20150830T123600Z".to_string()),
        (
            "Authorization".to_string(),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
                .to_string(),
        ),
    ];
    let req = HttpRequest {
        method: "GET",
        path: "/",
        query: "Action=ListUsers&Version=2010-05-08",
        headers: &headers,
        body: b"",
    };
    let v = sigv4::verify(&req, &Store, at()).unwrap();
    assert_eq!(v.access_key, "AKIDEXAMPLE");
    assert_eq!(v.scope, scope);
    assert!(!v.presigned);
    let later = at() + chrono::Duration::minutes(16);
    assert!(matches!(
        sigv4::verify(&req, &Store, later),
        Err(SigV4Error::Skewed(_))
    ));
    let tampered = HttpRequest {
        query: "Action=ListUsers&Version=2010-05-09",
        ..req
    };
    assert_eq!(
        sigv4::verify(&tampered, &Store, at()),
        Err(SigV4Error::Mismatch)
    );
}

fn signed(body: &[u8], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut headers = vec![("host".to_string(), "localhost".to_string())];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let req = HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body,
    };
    let added = sigv4::sign(&req, "AKIDEXAMPLE", SECRET, "local-1", "ec2", at());
    headers.extend(added);
    headers
}

#[test]
fn signed_requests_verify_and_payload_hash_is_checked() {
    let body = b"Action=DescribeInstances";
    let headers = signed(body, &[]);
    let req = HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body,
    };
    assert_eq!(
        sigv4::verify(&req, &Store, at()).unwrap().scope.service,
        "ec2"
    );
    let other = HttpRequest {
        body: b"Action=RunInstances",
        ..req
    };
    assert_eq!(
        sigv4::verify(&other, &Store, at()),
        Err(SigV4Error::Mismatch)
    );

    let unsigned = signed(body, &[("x-amz-content-sha256", "UNSIGNED-PAYLOAD")]);
    let req = HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &unsigned,
        body,
    };
    assert!(sigv4::verify(&req, &Store, at()).is_ok());
    let wrong = signed(
        body,
        &[("x-amz-content-sha256", &sigv4::sha256_hex(b"other"))],
    );
    let req = HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &wrong,
        body,
    };
    assert_eq!(
        sigv4::verify(&req, &Store, at()),
        Err(SigV4Error::ContentMismatch)
    );
}

#[test]
fn refusals_name_aws_codes() {
    let none: Vec<(String, String)> = vec![];
    let req = HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &none,
        body: b"",
    };
    let e = sigv4::verify(&req, &Store, at()).unwrap_err();
    assert_eq!((e.code(), e.status()), ("MissingAuthenticationToken", 403));
    for auth in [
        "Basic x",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=zz",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, Foo=1",
    ] {
        let h = vec![
            ("authorization".to_string(), auth.to_string()),
            ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
            ("host".to_string(), "h".to_string()),
        ];
        let req = HttpRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &h,
            body: b"",
        };
        assert_eq!(
            sigv4::verify(&req, &Store, at()).unwrap_err().code(),
            "IncompleteSignature",
            "{auth}"
        );
    }
    let sig = "0".repeat(64);
    let h = vec![
        (
            "authorization".to_string(),
            format!(
                "AWS4-HMAC-SHA256 Credential=OTHER/20150830/us-east-1/iam/aws4_request, SignedHeaders=host, Signature={sig}"
            ),
        ),
        ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
        ("host".to_string(), "h".to_string()),
    ];
    let req = HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &h,
        body: b"",
    };
    assert_eq!(
        sigv4::verify(&req, &Store, at()),
        Err(SigV4Error::UnknownKey)
    );
    let h = vec![
        (
            "authorization".to_string(),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=host;x-extra, Signature={sig}"
            ),
        ),
        ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
        ("host".to_string(), "h".to_string()),
    ];
    let req = HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &h,
        body: b"",
    };
    assert_eq!(
        sigv4::verify(&req, &Store, at()),
        Err(SigV4Error::MissingHeader("x-extra".into()))
    );
}

fn presign(expires: i64) -> String {
    let q = format!(
        "Action=DescribeInstances&Version=2016-11-15&X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Flocal-1%2Fec2%2Faws4_request\
         &X-Amz-Date=20150830T123600Z&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host"
    );
    let parts = SignedParts {
        method: "GET",
        path: "/",
        query: wire::query::form::pairs(q.as_bytes()),
        headers: vec![("host".into(), "localhost".into())],
        payload_hash: sigv4::UNSIGNED_PAYLOAD.into(),
    };
    let scope = Scope {
        date: "20150830".into(),
        region: "local-1".into(),
        service: "ec2".into(),
    };
    let sig = sigv4::signature(
        SECRET,
        "20150830T123600Z",
        &scope,
        &sigv4::canonical_request(&parts),
    );
    format!("{q}&X-Amz-Signature={sig}")
}

#[test]
fn presigned_queries_verify_until_they_expire() {
    let h = vec![("host".to_string(), "localhost".to_string())];
    let q = presign(300);
    let req = HttpRequest {
        method: "GET",
        path: "/",
        query: &q,
        headers: &h,
        body: b"",
    };
    let v = sigv4::verify(&req, &Store, at() + chrono::Duration::seconds(299)).unwrap();
    assert!(v.presigned);
    assert_eq!(
        sigv4::verify(&req, &Store, at() + chrono::Duration::seconds(301)),
        Err(SigV4Error::Expired)
    );
    assert!(matches!(
        sigv4::verify(&req, &Store, at() - chrono::Duration::hours(1)),
        Err(SigV4Error::Skewed(_))
    ));
    let q = presign(700_000);
    let req = HttpRequest {
        method: "GET",
        path: "/",
        query: &q,
        headers: &h,
        body: b"",
    };
    assert_eq!(
        sigv4::verify(&req, &Store, at()).unwrap_err().code(),
        "IncompleteSignature"
    );
    let q = presign(300).replace("DescribeInstances", "RunInstances");
    let req = HttpRequest {
        method: "GET",
        path: "/",
        query: &q,
        headers: &h,
        body: b"",
    };
    assert_eq!(sigv4::verify(&req, &Store, at()), Err(SigV4Error::Mismatch));
}
