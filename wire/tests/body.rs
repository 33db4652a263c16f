//! Request bodies: gzip within the limit, refusing bombs, corrupt streams and unknown
//! encodings.

use std::io::Write;

use wire::request::{BodyError, decoded_body};
use wire::{HttpRequest, Limits, Protocol};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn with_encoding<'a>(headers: &'a [(String, String)], body: &'a [u8]) -> HttpRequest<'a> {
    HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers,
        body,
    }
}

#[test]
fn gzip_bodies_are_inflated_within_the_limit() {
    let gz = vec![("Content-Encoding".to_string(), "gzip".to_string())];
    let limits = Limits::default();
    let body = gzip(b"Action=DescribeInstances");
    assert_eq!(
        &*decoded_body(&with_encoding(&gz, &body), &limits).unwrap(),
        b"Action=DescribeInstances"
    );
    let plain = decoded_body(&with_encoding(&[], b"x"), &limits).unwrap();
    assert!(matches!(plain, std::borrow::Cow::Borrowed(b"x")));

    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 1 << 20);
    let started = std::time::Instant::now();
    let e = decoded_body(&with_encoding(&gz, &bomb), &limits).unwrap_err();
    assert!(matches!(e, BodyError::TooLarge(_)));
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(wire::errors::body(Protocol::Json, &e).status, 413);

    let e = decoded_body(&with_encoding(&gz, b"not gzip"), &limits).unwrap_err();
    assert_eq!(
        wire::errors::body(Protocol::Ec2, &e).code,
        "MalformedQueryString"
    );
    let br = vec![("content-encoding".to_string(), "br".to_string())];
    let e = decoded_body(&with_encoding(&br, b""), &limits).unwrap_err();
    assert_eq!(wire::errors::body(Protocol::Query, &e).status, 415);
}
