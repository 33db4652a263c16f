//! AWS Signature Version 4: signing (for the `ec2` CLI) and verifying (for the agent).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// How far a request's `X-Amz-Date` may be from the agent's clock.
pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// Hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any size");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// Percent-encodes per SigV4: everything but `A-Za-z0-9-_.~`.
pub fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The parts of a request that are signed.
#[derive(Debug, Clone)]
pub struct SignedParts<'a> {
    /// `POST`, `GET`.
    pub method: &'a str,
    /// The path, as sent (already encoded).
    pub path: &'a str,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// Lower-case names of the signed headers and their values.
    pub headers: Vec<(String, String)>,
    /// Hex SHA-256 of the body (or the `x-amz-content-sha256` value).
    pub payload_hash: String,
}

/// The canonical request.
pub fn canonical_request(p: &SignedParts<'_>) -> String {
    let mut q: Vec<(String, String)> = p
        .query
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    q.sort();
    let query = q
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers: Vec<(String, String)> = p
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let path = if p.path.is_empty() { "/" } else { p.path };
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        p.method, path, query, canonical_headers, signed, p.payload_hash
    )
}

/// The hex signature of a canonical request with `secret`, `amz_date` and `scope`
/// (`YYYYMMDD/region/service/aws4_request`).
pub fn signature(secret: &str, amz_date: &str, scope: &str, canonical: &str) -> String {
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in scope.split('/') {
        key = hmac(&key, part.as_bytes());
    }
    hex::encode(hmac(&key, string_to_sign.as_bytes()))
}

/// Signs a form POST to `host` + `path`: returns the headers to send
/// (`host`, `x-amz-date`, `content-type`, `authorization`).
pub fn sign_post(
    access_key: &str,
    secret: &str,
    region: &str,
    host: &str,
    path: &str,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<(String, String)> {
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let scope = format!("{}/{region}/ec2/aws4_request", now.format("%Y%m%d"));
    let headers = vec![
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded; charset=utf-8".to_string(),
        ),
        ("host".to_string(), host.to_string()),
        ("x-amz-date".to_string(), amz_date.clone()),
    ];
    let parts = SignedParts {
        method: "POST",
        path,
        query: Vec::new(),
        headers: headers.clone(),
        payload_hash: sha256_hex(body),
    };
    let sig = signature(secret, &amz_date, &scope, &canonical_request(&parts));
    let mut out = headers;
    out.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={access_key}/{scope}, \
             SignedHeaders=content-type;host;x-amz-date, Signature={sig}"
        ),
    ));
    out
}

/// A parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    /// The access key id.
    pub access_key: String,
    /// `date/region/service/aws4_request`.
    pub scope: String,
    /// Lower-case signed header names.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

/// Parses `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
pub fn parse_auth_header(h: &str) -> Option<AuthHeader> {
    let rest = h.strip_prefix("AWS4-HMAC-SHA256")?.trim();
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => cred = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => sig = Some(v),
            _ => return None,
        }
    }
    let (access_key, scope) = cred?.split_once('/')?;
    if scope.split('/').count() != 4 || !scope.ends_with("/aws4_request") {
        return None;
    }
    Some(AuthHeader {
        access_key: access_key.to_string(),
        scope: scope.to_string(),
        signed_headers: signed?.split(';').map(str::to_ascii_lowercase).collect(),
        signature: sig?.to_ascii_lowercase(),
    })
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published example (the IAM ListUsers GET request from the SigV4 documentation).
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
            payload_hash: sha256_hex(b""),
        };
        let canonical = canonical_request(&parts);
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let sig = signature(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830T123600Z",
            "20150830/us-east-1/iam/aws4_request",
            &canonical,
        );
        assert_eq!(
            sig,
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn parses_authorization() {
        let h = parse_auth_header(
            "AWS4-HMAC-SHA256 Credential=AKID/20260101/local-1/ec2/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=ABC",
        )
        .unwrap();
        assert_eq!(h.access_key, "AKID");
        assert_eq!(h.signed_headers, vec!["host", "x-amz-date"]);
        assert_eq!(h.signature, "abc");
        assert!(parse_auth_header("Basic x").is_none());
    }
}
