//! AWS Signature Version 4: verifying the `Authorization` header and presigned query
//! strings, and signing (for clients and tests).

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::query::form::pairs;
use crate::request::HttpRequest;

type HmacSha256 = Hmac<Sha256>;

/// How far a request's time may be from the server's clock.
pub const MAX_SKEW_SECS: i64 = 15 * 60;
/// The longest validity of a presigned request (seven days).
pub const MAX_EXPIRES_SECS: i64 = 7 * 24 * 3600;
/// The payload hash of a request that does not sign its body.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Where the secret keys are.
pub trait CredentialStore {
    /// The secret key of `access_key`, if it is known.
    fn secret(&self, access_key: &str) -> Option<String>;
}

/// A credential scope: `date/region/service/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `YYYYMMDD`.
    pub date: String,
    /// `us-east-1`.
    pub region: String,
    /// `ec2`, `monitoring`.
    pub service: String,
}

impl Scope {
    fn parse(s: &str) -> Option<Self> {
        let mut it = s.split('/');
        let (date, region, service, term) = (it.next()?, it.next()?, it.next()?, it.next()?);
        if it.next().is_some()
            || term != "aws4_request"
            || date.len() != 8
            || region.is_empty()
            || service.is_empty()
        {
            return None;
        }
        Some(Self {
            date: date.into(),
            region: region.into(),
            service: service.into(),
        })
    }

    /// `date/region/service/aws4_request`.
    pub fn to_text(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// A request whose signature checks out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The access key that signed it.
    pub access_key: String,
    /// Its credential scope.
    pub scope: Scope,
    /// Whether it was presigned (signature in the query string).
    pub presigned: bool,
}

/// Why a request's signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// Neither an `Authorization` header nor a presigned query.
    #[error("the request is not signed with AWS Signature Version 4")]
    Missing,
    /// A malformed authorization.
    #[error("the signature is malformed: {0}")]
    Malformed(&'static str),
    /// An access key the store does not know.
    #[error("the access key is not known")]
    UnknownKey,
    /// A time too far from the server's.
    #[error("the request time {0} is more than 15 minutes from the server's time")]
    Skewed(String),
    /// A presigned request past its expiry.
    #[error("the presigned request expired")]
    Expired,
    /// `x-amz-content-sha256` does not match the body.
    #[error("the x-amz-content-sha256 header does not match the body")]
    ContentMismatch,
    /// A signed header that the request does not carry.
    #[error("the signed header {0} is missing")]
    MissingHeader(String),
    /// The signature is wrong.
    #[error("the request signature does not match")]
    Mismatch,
}

impl SigV4Error {
    /// AWS's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "MissingAuthenticationToken",
            Self::Malformed(_) | Self::MissingHeader(_) => "IncompleteSignature",
            Self::UnknownKey => "InvalidClientTokenId",
            Self::Skewed(_) | Self::Expired => "RequestExpired",
            Self::ContentMismatch => "XAmzContentSHA256Mismatch",
            Self::Mismatch => "SignatureDoesNotMatch",
        }
    }

    /// The HTTP status AWS answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Missing | Self::UnknownKey => 403,
            Self::Mismatch => 403,
            _ => 400,
        }
    }
}

/// Hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any size");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// Percent-encodes per SigV4: everything but `A-Za-z0-9-_.~` (and `/` when `keep_slash`).
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
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
    /// The path as sent.
    pub path: &'a str,
    /// Decoded query pairs (without `X-Amz-Signature`).
    pub query: Vec<(String, String)>,
    /// Lower-case names of the signed headers and their values.
    pub headers: Vec<(String, String)>,
    /// Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`.
    pub payload_hash: String,
}

/// Removes `.` and `..` segments, as botocore does before signing.
fn normalize_path(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if joined.is_empty() || !joined.starts_with('/') {
        format!("/{}", joined.trim_start_matches('/'))
    } else {
        joined
    }
}

/// The canonical request.
pub fn canonical_request(p: &SignedParts<'_>) -> String {
    let mut q: Vec<(String, String)> = p
        .query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
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
    let path = uri_encode(
        &normalize_path(if p.path.is_empty() { "/" } else { p.path }),
        true,
    );
    format!(
        "{}\n{path}\n{query}\n{canonical_headers}\n{signed}\n{}",
        p.method, p.payload_hash
    )
}

fn signing_key(secret: &str, scope: &Scope) -> Vec<u8> {
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in [&scope.date, &scope.region, &scope.service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    key
}

fn string_to_sign(amz_date: &str, scope: &Scope, canonical: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        scope.to_text(),
        sha256_hex(canonical.as_bytes())
    )
}

/// The hex signature of a canonical request.
pub fn signature(secret: &str, amz_date: &str, scope: &Scope, canonical: &str) -> String {
    hex::encode(hmac(
        &signing_key(secret, scope),
        string_to_sign(amz_date, scope, canonical).as_bytes(),
    ))
}

/// Whether `given` (hex) is the signature, compared in constant time.
fn signature_matches(
    secret: &str,
    amz_date: &str,
    scope: &Scope,
    canonical: &str,
    given: &[u8],
) -> bool {
    let mut m = HmacSha256::new_from_slice(&signing_key(secret, scope))
        .expect("HMAC takes keys of any size");
    m.update(string_to_sign(amz_date, scope, canonical).as_bytes());
    m.verify_slice(given).is_ok()
}

/// The fields of a signature, from the header or the query string.
#[derive(Debug, Clone)]
struct Claim {
    access_key: String,
    scope: Scope,
    signed_headers: Vec<String>,
    signature: Vec<u8>,
    amz_date: String,
    expires: Option<i64>,
}

fn parse_credential(c: &str) -> Result<(String, Scope), SigV4Error> {
    let (key, scope) = c
        .split_once('/')
        .ok_or(SigV4Error::Malformed("Credential has no scope"))?;
    let scope = Scope::parse(scope).ok_or(SigV4Error::Malformed(
        "Credential scope is not date/region/service/aws4_request",
    ))?;
    if key.is_empty() {
        return Err(SigV4Error::Malformed("Credential has no access key"));
    }
    Ok((key.to_string(), scope))
}

fn parse_signature(s: &str) -> Result<Vec<u8>, SigV4Error> {
    hex::decode(s)
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or(SigV4Error::Malformed("Signature is not 64 hex digits"))
}

fn signed_list(s: &str) -> Vec<String> {
    s.split(';').map(str::to_ascii_lowercase).collect()
}

fn header_claim(h: &str, req: &HttpRequest<'_>) -> Result<Claim, SigV4Error> {
    let rest = h.strip_prefix(ALGORITHM).ok_or(SigV4Error::Malformed(
        "the algorithm is not AWS4-HMAC-SHA256",
    ))?;
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or(SigV4Error::Malformed(
            "a part of Authorization is not key=value",
        ))?;
        match k {
            "Credential" => cred = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => sig = Some(v),
            _ => return Err(SigV4Error::Malformed("Authorization has an unknown part")),
        }
    }
    let (access_key, scope) =
        parse_credential(cred.ok_or(SigV4Error::Malformed("no Credential"))?)?;
    let amz_date = req
        .header("x-amz-date")
        .ok_or(SigV4Error::Malformed("no X-Amz-Date header"))?
        .to_string();
    Ok(Claim {
        access_key,
        scope,
        signed_headers: signed_list(signed.ok_or(SigV4Error::Malformed("no SignedHeaders"))?),
        signature: parse_signature(sig.ok_or(SigV4Error::Malformed("no Signature"))?)?,
        amz_date,
        expires: None,
    })
}

fn query_claim(q: &[(String, String)]) -> Result<Claim, SigV4Error> {
    let get = |name: &'static str| {
        q.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or(SigV4Error::Malformed(name))
    };
    if get("X-Amz-Algorithm")? != ALGORITHM {
        return Err(SigV4Error::Malformed(
            "the algorithm is not AWS4-HMAC-SHA256",
        ));
    }
    let (access_key, scope) = parse_credential(get("X-Amz-Credential")?)?;
    let expires = get("X-Amz-Expires")?
        .parse::<i64>()
        .ok()
        .filter(|e| (1..=MAX_EXPIRES_SECS).contains(e))
        .ok_or(SigV4Error::Malformed(
            "X-Amz-Expires is not 1 to 604800 seconds",
        ))?;
    Ok(Claim {
        access_key,
        scope,
        signed_headers: signed_list(get("X-Amz-SignedHeaders")?),
        signature: parse_signature(get("X-Amz-Signature")?)?,
        amz_date: get("X-Amz-Date")?.to_string(),
        expires: Some(expires),
    })
}

fn check_time(c: &Claim, now: DateTime<Utc>) -> Result<(), SigV4Error> {
    let when = NaiveDateTime::parse_from_str(&c.amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| SigV4Error::Malformed("X-Amz-Date is not YYYYMMDDTHHMMSSZ"))?
        .and_utc();
    if !c.amz_date.starts_with(&c.scope.date) {
        return Err(SigV4Error::Malformed(
            "the credential scope's date is not X-Amz-Date's",
        ));
    }
    let age = (now - when).num_seconds();
    match c.expires {
        Some(e) if age > e => Err(SigV4Error::Expired),
        Some(_) if age < -MAX_SKEW_SECS => Err(SigV4Error::Skewed(c.amz_date.clone())),
        None if age.abs() > MAX_SKEW_SECS => Err(SigV4Error::Skewed(c.amz_date.clone())),
        _ => Ok(()),
    }
}

fn signed_headers(c: &Claim, req: &HttpRequest<'_>) -> Result<Vec<(String, String)>, SigV4Error> {
    if !c.signed_headers.iter().any(|h| h == "host") {
        return Err(SigV4Error::Malformed("the host header is not signed"));
    }
    let mut out = Vec::with_capacity(c.signed_headers.len());
    for name in &c.signed_headers {
        let values: Vec<&str> = req
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect();
        if values.is_empty() {
            return Err(SigV4Error::MissingHeader(name.chars().take(100).collect()));
        }
        out.push((name.clone(), values.join(",")));
    }
    Ok(out)
}

/// Verifies `req`'s signature against `store` at time `now`.
pub fn verify(
    req: &HttpRequest<'_>,
    store: &dyn CredentialStore,
    now: DateTime<Utc>,
) -> Result<Verified, SigV4Error> {
    let mut query = pairs(req.query.as_bytes());
    let presigned = query.iter().any(|(k, _)| k == "X-Amz-Signature");
    let claim = match req.header("authorization") {
        Some(h) if !presigned => header_claim(h, req)?,
        Some(_) => {
            return Err(SigV4Error::Malformed(
                "both an Authorization header and a presigned query",
            ));
        }
        None if presigned => query_claim(&query)?,
        None => return Err(SigV4Error::Missing),
    };
    check_time(&claim, now)?;
    let secret = store
        .secret(&claim.access_key)
        .ok_or(SigV4Error::UnknownKey)?;
    let body_hash = sha256_hex(req.body);
    let hashes: Vec<String> = match req.header("x-amz-content-sha256") {
        Some(h) if h == UNSIGNED_PAYLOAD => vec![h.to_string()],
        Some(h) if h.eq_ignore_ascii_case(&body_hash) => vec![h.to_string()],
        Some(_) => return Err(SigV4Error::ContentMismatch),
        None if presigned => vec![body_hash, UNSIGNED_PAYLOAD.to_string()],
        None => vec![body_hash],
    };
    query.retain(|(k, _)| k != "X-Amz-Signature");
    let mut parts = SignedParts {
        method: req.method,
        path: req.path,
        query,
        headers: signed_headers(&claim, req)?,
        payload_hash: String::new(),
    };
    for h in hashes {
        parts.payload_hash = h;
        let canonical = canonical_request(&parts);
        if signature_matches(
            &secret,
            &claim.amz_date,
            &claim.scope,
            &canonical,
            &claim.signature,
        ) {
            return Ok(Verified {
                access_key: claim.access_key,
                scope: claim.scope,
                presigned,
            });
        }
    }
    Err(SigV4Error::Mismatch)
}

/// Signs a request with the `Authorization` header: returns the headers to add
/// (`x-amz-date`, `authorization`); `headers` must hold `host` and every header to sign.
/// The payload hash is `x-amz-content-sha256` when given (as botocore does).
pub fn sign(
    req: &HttpRequest<'_>,
    access_key: &str,
    secret: &str,
    region: &str,
    service: &str,
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let scope = Scope {
        date: now.format("%Y%m%d").to_string(),
        region: region.into(),
        service: service.into(),
    };
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    headers.push(("x-amz-date".into(), amz_date.clone()));
    let parts = SignedParts {
        method: req.method,
        path: req.path,
        query: pairs(req.query.as_bytes()),
        headers: headers.clone(),
        payload_hash: req
            .header("x-amz-content-sha256")
            .map_or_else(|| sha256_hex(req.body), str::to_string),
    };
    let sig = signature(secret, &amz_date, &scope, &canonical_request(&parts));
    let mut names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    vec![
        ("x-amz-date".into(), amz_date),
        (
            "authorization".into(),
            format!(
                "{ALGORITHM} Credential={access_key}/{}, SignedHeaders={}, Signature={sig}",
                scope.to_text(),
                names.join(";")
            ),
        ),
    ]
}
