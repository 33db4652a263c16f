//! One metadata request and its answer, as EC2 gives it: IMDSv2 tokens (required or
//! optional), the hop limit on the token's reply, the version list at `/`, and the metadata
//! tree under `/latest/` and every dated version (`/2021-03-23/` ...). The token endpoint is
//! `/latest/api/token` alone, as on EC2.

use std::time::Instant;

use super::metadata::InstanceMetadata;
use super::tokens::{TokenStore, parse_ttl};
use super::versions::{self, Route};

/// Header carrying a session token.
pub const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
/// Header carrying the TTL a token is asked for (and granted).
pub const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";

/// An instance's metadata settings (`ModifyInstanceMetadataOptions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataOptions {
    /// `HttpTokens=required`: GETs need a token (IMDSv2 only).
    pub tokens_required: bool,
    /// `HttpEndpoint=enabled`.
    pub endpoint_enabled: bool,
    /// `HttpPutResponseHopLimit`: the IP TTL of a token's reply (1 to 64).
    pub put_hop_limit: u8,
}

impl Default for MetadataOptions {
    fn default() -> Self {
        MetadataOptions {
            tokens_required: false,
            endpoint_enabled: true,
            put_hop_limit: 1,
        }
    }
}

/// A request, already tied to the instance whose ENI it came from.
#[derive(Debug, Clone)]
pub struct ImdsRequest<'a> {
    /// `GET`, `PUT`, ...
    pub method: &'a str,
    /// The path, query removed.
    pub path: &'a str,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
}

impl ImdsRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImdsResponse {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The IP TTL to send the reply with (a token's reply: the hop limit).
    pub ip_ttl: Option<u8>,
}

fn status(code: u16, text: &str) -> ImdsResponse {
    ImdsResponse {
        status: code,
        body: text.as_bytes().to_vec(),
        headers: Vec::new(),
        ip_ttl: None,
    }
}

/// Answers `request` for the instance `metadata` describes.
pub fn handle(
    request: &ImdsRequest<'_>,
    metadata: &InstanceMetadata,
    options: &MetadataOptions,
    tokens: &mut TokenStore,
    now: Instant,
) -> ImdsResponse {
    if !options.endpoint_enabled {
        return status(403, "Forbidden: the instance metadata endpoint is disabled");
    }
    let instance = metadata.instance_id.as_str();
    if request.path == "/latest/api/token" {
        if request.method != "PUT" {
            return status(405, "Method Not Allowed");
        }
        if request.header("x-forwarded-for").is_some() {
            return status(403, "Forbidden");
        }
        let ttl = match parse_ttl(request.header(TTL_HEADER)) {
            Ok(ttl) => ttl,
            Err(err) => return status(400, &err.to_string()),
        };
        let token = tokens.issue(instance, ttl, now);
        return ImdsResponse {
            status: 200,
            body: token.into_bytes(),
            headers: vec![(TTL_HEADER.to_owned(), ttl.as_secs().to_string())],
            ip_ttl: Some(options.put_hop_limit),
        };
    }
    if request.method != "GET" && request.method != "HEAD" {
        return status(405, "Method Not Allowed");
    }
    let authorized = match request.header(TOKEN_HEADER) {
        Some(token) => tokens.check(token, instance, now).is_ok(),
        None => !options.tokens_required,
    };
    if !authorized {
        return status(401, "Unauthorized");
    }
    match versions::route(request.path) {
        Route::Versions => ok(versions::listing().into_bytes()),
        Route::Versioned(_, "") => ok(metadata.tree().names().into_bytes()),
        Route::Versioned(_, rest) => match metadata.tree().find(rest) {
            Some(node) => ok(node.body()),
            None => status(404, "Not Found"),
        },
        Route::Unknown => status(404, "Not Found"),
    }
}

fn ok(body: Vec<u8>) -> ImdsResponse {
    ImdsResponse {
        status: 200,
        body,
        headers: Vec::new(),
        ip_ttl: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imds::metadata::tests::sample;

    fn req<'a>(method: &'a str, path: &'a str, headers: &[(&str, &str)]) -> ImdsRequest<'a> {
        ImdsRequest {
            method,
            path,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn token(store: &mut TokenStore, options: &MetadataOptions) -> String {
        let r = handle(
            &req("PUT", "/latest/api/token", &[(TTL_HEADER, "21600")]),
            &sample(),
            options,
            store,
            Instant::now(),
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.headers, vec![(TTL_HEADER.to_owned(), "21600".to_owned())]);
        assert_eq!(r.ip_ttl, Some(options.put_hop_limit));
        String::from_utf8(r.body).unwrap()
    }

    #[test]
    fn v2_token_then_get() {
        let mut store = TokenStore::default();
        let options = MetadataOptions {
            tokens_required: true,
            ..Default::default()
        };
        let t = token(&mut store, &options);
        let r = handle(
            &req(
                "GET",
                "/latest/meta-data/instance-id",
                &[(TOKEN_HEADER, &t)],
            ),
            &sample(),
            &options,
            &mut store,
            Instant::now(),
        );
        assert_eq!((r.status, r.body), (200, b"i-0123456789abcdef0".to_vec()));
    }

    #[test]
    fn v1_works_only_when_tokens_are_optional() {
        let mut store = TokenStore::default();
        let get = req("GET", "/latest/meta-data/local-ipv4", &[]);
        let optional = MetadataOptions::default();
        let r = handle(&get, &sample(), &optional, &mut store, Instant::now());
        assert_eq!((r.status, r.body), (200, b"172.31.0.5".to_vec()));
        let required = MetadataOptions {
            tokens_required: true,
            ..Default::default()
        };
        assert_eq!(
            handle(&get, &sample(), &required, &mut store, Instant::now()).status,
            401
        );
    }

    #[test]
    fn bad_expired_or_foreign_tokens_get_401() {
        let mut store = TokenStore::default();
        let options = MetadataOptions::default();
        let foreign = store.issue(
            "i-other",
            std::time::Duration::from_secs(60),
            Instant::now(),
        );
        for t in ["garbage", foreign.as_str()] {
            let r = handle(
                &req("GET", "/latest/meta-data/", &[(TOKEN_HEADER, t)]),
                &sample(),
                &options,
                &mut store,
                Instant::now(),
            );
            assert_eq!(r.status, 401, "token {t}");
        }
        let t = store.issue(
            "i-0123456789abcdef0",
            std::time::Duration::from_secs(1),
            Instant::now(),
        );
        let later = Instant::now() + std::time::Duration::from_secs(2);
        let r = handle(
            &req("GET", "/latest/meta-data/", &[(TOKEN_HEADER, &t)]),
            &sample(),
            &options,
            &mut store,
            later,
        );
        assert_eq!(r.status, 401, "expired");
    }

    #[test]
    fn token_requests_are_checked() {
        let mut store = TokenStore::default();
        let options = MetadataOptions::default();
        let put = |headers: &[(&str, &str)], store: &mut TokenStore| {
            handle(
                &req("PUT", "/latest/api/token", headers),
                &sample(),
                &options,
                store,
                Instant::now(),
            )
            .status
        };
        assert_eq!(put(&[], &mut store), 400, "no TTL");
        assert_eq!(put(&[(TTL_HEADER, "0")], &mut store), 400);
        assert_eq!(put(&[(TTL_HEADER, "21601")], &mut store), 400);
        assert_eq!(
            put(
                &[(TTL_HEADER, "60"), ("x-forwarded-for", "10.0.0.9")],
                &mut store
            ),
            403
        );
        let get_token = handle(
            &req("GET", "/latest/api/token", &[]),
            &sample(),
            &options,
            &mut store,
            Instant::now(),
        );
        assert_eq!(get_token.status, 405);
    }

    #[test]
    fn user_data_missing_is_404_and_disabled_endpoint_is_403() {
        let mut store = TokenStore::default();
        let mut meta = sample();
        meta.user_data = None;
        let r = handle(
            &req("GET", "/latest/user-data", &[]),
            &meta,
            &MetadataOptions::default(),
            &mut store,
            Instant::now(),
        );
        assert_eq!(r.status, 404);
        let off = MetadataOptions {
            endpoint_enabled: false,
            ..Default::default()
        };
        let r = handle(
            &req("GET", "/latest/meta-data/", &[]),
            &sample(),
            &off,
            &mut store,
            Instant::now(),
        );
        assert_eq!(r.status, 403);
    }

    fn get(path: &str, options: &MetadataOptions, store: &mut TokenStore) -> (u16, String) {
        let r = handle(
            &req("GET", path, &[]),
            &sample(),
            options,
            store,
            Instant::now(),
        );
        (r.status, String::from_utf8(r.body).unwrap())
    }

    #[test]
    fn the_root_lists_every_version_and_each_serves_the_tree() {
        let mut store = TokenStore::default();
        let options = MetadataOptions::default();
        let (code, list) = get("/", &options, &mut store);
        assert_eq!(code, 200);
        assert!(list.starts_with("1.0\n2007-01-19\n2007-03-01\n"));
        assert!(list.ends_with("\n2021-03-23\n2021-07-15\n2022-07-09\n2022-09-24\nlatest"));
        for version in list.lines() {
            assert_eq!(
                get(
                    &format!("/{version}/meta-data/instance-id"),
                    &options,
                    &mut store
                ),
                (200, "i-0123456789abcdef0".to_owned()),
                "{version}"
            );
            assert_eq!(
                get(&format!("/{version}/"), &options, &mut store),
                (200, "dynamic\nmeta-data\nuser-data".to_owned()),
                "{version}"
            );
        }
        assert_eq!(
            get("/2016-09-02/user-data", &options, &mut store),
            (200, "#!/bin/sh\necho hi\n".to_owned())
        );
        assert_eq!(
            get(
                "/2021-03-23/dynamic/instance-identity/document",
                &options,
                &mut store
            )
            .1,
            "{\"instanceId\":\"i-0123456789abcdef0\"}"
        );
        assert_eq!(get("/latest", &options, &mut store).0, 200);
    }

    #[test]
    fn unknown_versions_are_404_and_tokens_come_from_latest_only() {
        let mut store = TokenStore::default();
        let options = MetadataOptions::default();
        for path in [
            "/2021-03-24/meta-data/instance-id",
            "/2009-04-04x/meta-data/",
            "/meta-data/instance-id",
            "/LATEST/meta-data/",
            "//latest/meta-data/",
            "/2021-03-23/meta-data/nope",
        ] {
            assert_eq!(get(path, &options, &mut store).0, 404, "{path}");
        }
        let dated = handle(
            &req("PUT", "/2021-03-23/api/token", &[(TTL_HEADER, "60")]),
            &sample(),
            &options,
            &mut store,
            Instant::now(),
        );
        assert_ne!(dated.status, 200);
        assert_eq!(store.held("i-0123456789abcdef0"), 0, "no token issued");
    }

    #[test]
    fn dated_versions_keep_the_token_rules() {
        let mut store = TokenStore::default();
        let required = MetadataOptions {
            tokens_required: true,
            ..Default::default()
        };
        for path in ["/", "/2021-03-23/meta-data/instance-id", "/2099-01-01/"] {
            assert_eq!(get(path, &required, &mut store).0, 401, "{path}");
        }
        let t = token(&mut store, &required);
        let r = handle(
            &req(
                "GET",
                "/2018-09-24/meta-data/local-ipv4",
                &[(TOKEN_HEADER, &t)],
            ),
            &sample(),
            &required,
            &mut store,
            Instant::now(),
        );
        assert_eq!((r.status, r.body), (200, b"172.31.0.5".to_vec()));
    }

    #[test]
    fn hop_limit_is_applied_to_the_token_reply() {
        let mut store = TokenStore::default();
        let options = MetadataOptions {
            put_hop_limit: 2,
            ..Default::default()
        };
        token(&mut store, &options);
    }
}
