//! Property tests feeding the metadata service what a hostile guest can send it: random
//! bytes, heads with lying lengths and odd headers, and any method, path and headers to the
//! request handler. `PROPTEST_CASES` sets how many cases each runs (64 by default; the fuzz
//! step of `scripts/test.sh` runs many more).

use std::time::Instant;

use proptest::prelude::*;

use super::handler::{self, ImdsRequest, MetadataOptions, TOKEN_HEADER, TTL_HEADER};
use super::http::{self, HeadError, MAX_REQUEST};
use super::metadata::tests::sample;
use super::tokens::TokenStore;
use super::versions::VERSIONS;

/// Reads every head from `input` as a connection would, parsing each; returns how many
/// were read.
fn read_all(input: &[u8]) -> Result<usize, TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut r = input;
    let mut heads = 0;
    loop {
        match rt.block_on(http::read_head(&mut r)) {
            Ok(Some(head)) => {
                prop_assert!(head.len() <= MAX_REQUEST);
                heads += 1;
                if let Some(parsed) = http::parse_head(&head) {
                    prop_assert!(parsed.path.starts_with('/'));
                    if let Ok(n) = parsed.body_length() {
                        prop_assert!(n <= MAX_REQUEST);
                        r = &r[n.min(r.len())..];
                    }
                }
            }
            Ok(None) | Err(HeadError::TooLarge) => return Ok(heads),
            Err(HeadError::Io(e)) => return Err(TestCaseError::fail(e.to_string())),
        }
    }
}

fn header_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z-]{1,20}: [ -~]{0,40}",
        "(?i)content-length: [0-9+-]{0,25}",
        "(?i)transfer-encoding: chunked",
        "(?i)connection: (close|keep-alive|x)",
        "(?i)x-aws-ec2-metadata-token(-ttl-seconds)?: [ -~]{0,50}",
        "[ -~]{0,60}",
    ]
}

proptest! {
    #![proptest_config(crate::fuzz_config())]

    #[test]
    fn fuzz_imds_random_bytes(input in proptest::collection::vec(any::<u8>(), 0..4096)) {
        read_all(&input)?;
    }

    #[test]
    fn fuzz_imds_hostile_heads(
        method in "GET|PUT|HEAD|POST|[A-Z]{0,8}",
        path in "/[ -~]{0,80}|[ -~]{0,20}",
        version in "HTTP/1\\.[01]|HTTP/2|[ -~]{0,10}",
        headers in proptest::collection::vec(header_line(), 0..12),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        newline in "\r\n|\n",
    ) {
        let mut input = format!("{method} {path} {version}{newline}");
        for h in &headers {
            input.push_str(h);
            input.push_str(&newline);
        }
        input.push_str(&newline);
        let mut bytes = input.into_bytes();
        bytes.extend_from_slice(&body);
        prop_assert!(read_all(&bytes)? >= 1);
    }

    #[test]
    fn fuzz_imds_handler_any_request(
        method in "GET|PUT|HEAD|[A-Z]{0,6}",
        path in "/(latest|2021-03-23|2009-04-04|1\\.0|[0-9.-]{0,12})(/api/token|/meta-data(/[a-z-]{0,20}){0,4}|/user-data|/dynamic(/[a-z-]{0,20}){0,2}|/[ -~]{0,30})?|/[ -~]{0,40}",
        ttl in proptest::option::of("[0-9]{0,8}|[ -~]{0,20}"),
        token in proptest::option::of("[A-Za-z0-9_-]{0,60}"),
        tokens_required in any::<bool>(),
        hop_limit in 1u8..=64,
    ) {
        let mut headers = Vec::new();
        if let Some(t) = ttl {
            headers.push((TTL_HEADER.to_owned(), t));
        }
        if let Some(t) = token {
            headers.push((TOKEN_HEADER.to_owned(), t));
        }
        let request = ImdsRequest { method: &method, path: &path, headers };
        let options = MetadataOptions {
            tokens_required,
            endpoint_enabled: true,
            put_hop_limit: hop_limit,
        };
        let mut store = TokenStore::default();
        let r = handler::handle(&request, &sample(), &options, &mut store, Instant::now());
        prop_assert!(matches!(r.status, 200 | 400 | 401 | 403 | 404 | 405));
        // A token is only ever made by a PUT to the token path, with the hop limit.
        if store.held("i-0123456789abcdef0") > 0 {
            prop_assert_eq!(method.as_str(), "PUT");
            prop_assert_eq!(path.as_str(), "/latest/api/token");
            prop_assert_eq!(r.ip_ttl, Some(hop_limit));
        }
        // With tokens required, no metadata leaves without a valid token.
        if tokens_required && path != "/latest/api/token" {
            prop_assert_ne!(r.status, 200);
        }
    }

    #[test]
    fn fuzz_imds_every_version_answers_as_latest(
        version in proptest::sample::select(VERSIONS.to_vec()),
        rest in "(meta-data|dynamic|user-data|api)?(/[a-z0-9:=.-]{0,20}){0,5}/?|[ -~]{0,40}",
        method in "GET|HEAD|PUT",
        tokens_required in any::<bool>(),
    ) {
        let options = MetadataOptions { tokens_required, ..Default::default() };
        let answer = |path: &str| {
            let request = ImdsRequest {
                method: &method,
                path,
                headers: vec![(TTL_HEADER.to_owned(), "60".to_owned())],
            };
            handler::handle(&request, &sample(), &options, &mut TokenStore::default(), Instant::now())
        };
        let dated = answer(&format!("/{version}/{rest}"));
        let latest = answer(&format!("/latest/{rest}"));
        if rest == "api/token" {
            // The token endpoint is /latest/'s alone.
            prop_assert_eq!(latest.status, if method == "PUT" { 200 } else { 405 });
            if version != "latest" {
                prop_assert_ne!(dated.status, 200);
            }
        } else {
            prop_assert_eq!(dated, latest);
        }
    }
}
