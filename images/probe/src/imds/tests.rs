//! The metadata client: value escaping, tokens, percentiles, and the fetch and bench against
//! a scripted service on a virtual clock.

use super::*;
use std::string::ToString;
use std::vec;

#[test]
fn escapes_values_onto_one_line() {
    let shown = |v: &[u8]| Escaped(v).to_string();
    assert_eq!(shown(b"i-0123456789abcdef0"), "i-0123456789abcdef0");
    assert_eq!(shown(b"a\nb\r\n"), "a\\nb\\r\\n");
    assert_eq!(shown(b"C:\\x"), "C:\\\\x");
    assert_eq!(shown(b"tab\there\0"), "tab\\x09here\\x00");
    assert_eq!(shown("h\u{e9}".as_bytes()), "h\\xc3\\xa9");
    assert_eq!(shown(b"\x7f\xff ~"), "\\x7f\\xff ~");
    assert_eq!(shown(b""), "");
    // Cut after MAX_VALUE_BYTES bytes of the value, not of the escaped text.
    let long = vec![b'a'; MAX_VALUE_BYTES + 1];
    assert_eq!(shown(&long), format!("{}...", "a".repeat(MAX_VALUE_BYTES)));
    assert_eq!(shown(&long[..MAX_VALUE_BYTES]), "a".repeat(MAX_VALUE_BYTES));
    let newlines = vec![b'\n'; MAX_VALUE_BYTES * 2];
    assert_eq!(
        shown(&newlines),
        format!("{}...", "\\n".repeat(MAX_VALUE_BYTES))
    );
}

#[test]
fn answers_print_as_value_status_or_error() {
    let ok = |status, body: &[u8]| {
        Answer::from(Ok(Response {
            status,
            headers: Vec::new(),
            body: body.to_vec(),
        }))
    };
    assert_eq!(ok(200, b"10.0.0.2").to_string(), "10.0.0.2");
    assert_eq!(ok(404, b"Not Found").to_string(), "HTTP 404");
    assert_eq!(ok(401, b"").to_string(), "HTTP 401");
    assert_eq!(
        Answer::from(Err(HttpError::Connection)).to_string(),
        "error connection refused or reset"
    );
    assert_eq!(
        Answer::from(Err(HttpError::Timeout)).to_string(),
        "error timed out"
    );
}

#[test]
fn tokens_must_fit_a_header() {
    assert_eq!(
        token_from_body(b"AQAEAx-token_1==\n").as_deref(),
        Some("AQAEAx-token_1==")
    );
    assert_eq!(token_from_body(b""), None);
    assert_eq!(token_from_body(b" \r\n"), None);
    assert_eq!(token_from_body(b"two words"), None);
    assert_eq!(token_from_body(b"a\r\nX-Evil: 1"), None);
    assert_eq!(token_from_body("t\u{e9}".as_bytes()), None);
    assert_eq!(token_from_body(&vec![b'a'; MAX_TOKEN_BYTES + 1]), None);
    assert!(token_from_body(&vec![b'a'; MAX_TOKEN_BYTES]).is_some());
}

#[test]
fn percentiles_by_nearest_rank() {
    assert_eq!(percentile(&[], 50), 0);
    assert_eq!(percentile(&[7], 99), 7);
    let data: Vec<u64> = (1..=100).collect();
    assert_eq!(percentile(&data, 50), 50);
    assert_eq!(percentile(&data, 99), 99);
    assert_eq!(percentile(&data, 100), 100);
    assert_eq!(percentile(&[1, 2, 3], 50), 2);
    assert_eq!(percentile(&[1, 2, 3, 4], 50), 2);
    assert_eq!(percentile(&[1, 2, 3, 4], 99), 4);
}

/// A request the fake saw: method, path, headers.
type Seen = (String, Vec<u8>, Vec<(String, String)>);

/// A scripted metadata service on a virtual clock: each request costs 100 µs, a failed
/// connection 1 ms; `down_until` is when the service starts answering.
struct Fake {
    now: u64,
    down_until: u64,
    tokens_required: bool,
    token_status: u16,
    user_data: Option<&'static [u8]>,
    requests: Vec<Seen>,
    lines: Vec<String>,
}

impl Fake {
    fn new() -> Self {
        Self {
            now: 1_000_000,
            down_until: 0,
            tokens_required: true,
            token_status: 200,
            user_data: None,
            requests: Vec::new(),
            lines: Vec::new(),
        }
    }

    fn lines(&self) -> Vec<&str> {
        self.lines.iter().map(String::as_str).collect()
    }
}

fn response(status: u16, body: &[u8]) -> Response {
    Response {
        status,
        headers: Vec::new(),
        body: body.to_vec(),
    }
}

impl Environment for Fake {
    fn request(
        &mut self,
        method: &str,
        path: &[u8],
        headers: &[(&str, &str)],
        timeout_ms: u64,
    ) -> Result<Response, HttpError> {
        assert_eq!(timeout_ms, ATTEMPT_TIMEOUT_MS);
        self.requests.push((
            method.to_string(),
            path.to_vec(),
            headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        ));
        if self.now < self.down_until {
            self.now += 1000;
            return Err(HttpError::Connection);
        }
        self.now += 100;
        let token = headers
            .iter()
            .find(|(n, _)| *n == TOKEN_HEADER)
            .map(|(_, v)| *v);
        Ok(match (method, path) {
            ("PUT", TOKEN_PATH) if self.token_status != 200 => response(self.token_status, b""),
            ("PUT", TOKEN_PATH) => response(200, b"tok-1"),
            ("GET", _) if self.tokens_required && token != Some("tok-1") => response(401, b""),
            ("GET", INSTANCE_ID_PATH) => response(200, b"i-0abc\n"),
            ("GET", b"/latest/meta-data/local-ipv4") => response(200, b"10.0.0.2"),
            ("GET", b"/latest/meta-data/public-keys/0/openssh-key") => {
                response(200, b"ssh-ed25519 AAAA k1\n")
            }
            ("GET", b"/latest/user-data") => match self.user_data {
                Some(data) => response(200, data),
                None => response(404, b"Not Found"),
            },
            _ => response(404, b""),
        })
    }

    fn pause(&mut self, millis: u64) {
        self.now += millis * 1000;
    }

    fn micros(&self) -> u64 {
        self.now
    }

    fn say(&mut self, line: fmt::Arguments<'_>) {
        self.lines.push(line.to_string());
    }
}

#[test]
fn v2_puts_for_a_token_and_sends_it_with_every_get() {
    let mut fake = Fake::new();
    let metadata = fetch(&mut fake, ImdsVersion::V2);
    assert_eq!(
        fake.lines(),
        [
            "imds instance-id=i-0abc\\n",
            "imds local-ipv4=10.0.0.2",
            "imds public-keys/0/openssh-key=ssh-ed25519 AAAA k1\\n",
            "imds user-data=HTTP 404",
            "imds done",
        ]
    );
    assert_eq!(metadata.token.as_deref(), Some("tok-1"));
    assert_eq!(metadata.instance_id.as_deref(), Some(&b"i-0abc"[..]));
    let (method, path, headers) = &fake.requests[0];
    assert_eq!((method.as_str(), path.as_slice()), ("PUT", TOKEN_PATH));
    assert_eq!(
        headers,
        &[(TOKEN_TTL_HEADER.to_string(), "21600".to_string())]
    );
    assert_eq!(fake.requests.len(), 5);
    for (method, _, headers) in &fake.requests[1..] {
        assert_eq!(method, "GET");
        assert_eq!(headers, &[(TOKEN_HEADER.to_string(), "tok-1".to_string())]);
    }

    let result = bench(&mut fake, metadata.token.as_deref(), 20);
    assert_eq!((result.n, result.ok), (20, 20));
    assert_eq!((result.p50_us, result.p99_us), (100, 100));
    assert_eq!(result.rps, 10_000);
    assert_eq!(
        fake.lines.last().unwrap(),
        "imds bench n=20 ok=20 rps=10000 p50_us=100 p99_us=100"
    );
    assert!(
        fake.requests[5..]
            .iter()
            .all(|(m, p, h)| m == "GET" && p == INSTANCE_ID_PATH && h[0].1 == "tok-1")
    );
}

#[test]
fn v1_gets_without_a_token() {
    let mut fake = Fake::new();
    let metadata = fetch(&mut fake, ImdsVersion::V1);
    assert_eq!(fake.lines()[0], "imds instance-id=HTTP 401");
    assert_eq!(fake.lines()[3], "imds user-data=HTTP 401");
    assert_eq!(metadata, Metadata::default());
    assert!(
        fake.requests
            .iter()
            .all(|(m, _, h)| m == "GET" && h.is_empty())
    );

    let mut fake = Fake::new();
    fake.tokens_required = false;
    fake.user_data = Some(b"#!/bin/sh\necho h\xe9\n");
    let metadata = fetch(&mut fake, ImdsVersion::V1);
    assert_eq!(fake.lines()[3], "imds user-data=#!/bin/sh\\necho h\\xe9\\n");
    // The user-data is kept as is, for the user-data options.
    assert_eq!(
        metadata.user_data.as_deref(),
        Some(&b"#!/bin/sh\necho h\xe9\n"[..])
    );
    let result = bench(&mut fake, None, 3);
    assert_eq!(result.ok, 3);
}

#[test]
fn a_failed_put_is_reported_and_the_gets_go_without_a_token() {
    let mut fake = Fake::new();
    fake.token_status = 403;
    fake.tokens_required = false;
    let metadata = fetch(&mut fake, ImdsVersion::V2);
    assert_eq!(fake.lines()[0], "imds token=HTTP 403");
    assert_eq!(fake.lines()[1], "imds instance-id=i-0abc\\n");
    assert_eq!(metadata.token, None);
    assert!(fake.requests[1..].iter().all(|(_, _, h)| h.is_empty()));
}

#[test]
fn failed_connections_are_retried_within_the_budget() {
    // Up 2 s after the start: the PUT is retried until it succeeds.
    let mut fake = Fake::new();
    fake.down_until = fake.now + 2_000_000;
    let metadata = fetch(&mut fake, ImdsVersion::V2);
    assert_eq!(metadata.token.as_deref(), Some("tok-1"));
    assert_eq!(fake.lines()[0], "imds instance-id=i-0abc\\n");
    let puts = fake.requests.iter().filter(|r| r.0 == "PUT").count();
    assert!((2..=10).contains(&puts), "{puts} PUTs");

    // Never up: about 5 s of tries, then one try per item.
    let mut fake = Fake::new();
    let start = fake.now;
    fake.down_until = u64::MAX;
    let metadata = fetch(&mut fake, ImdsVersion::V2);
    assert_eq!(
        fake.lines(),
        [
            "imds token=error connection refused or reset",
            "imds instance-id=error connection refused or reset",
            "imds local-ipv4=error connection refused or reset",
            "imds public-keys/0/openssh-key=error connection refused or reset",
            "imds user-data=error connection refused or reset",
            "imds done",
        ]
    );
    assert_eq!(metadata, Metadata::default());
    let spent = fake.now - start;
    assert!(
        (RETRY_BUDGET_MICROS..RETRY_BUDGET_MICROS + 1_000_000).contains(&spent),
        "{spent} us"
    );
    assert_eq!(fake.requests.len(), 21 + 4);

    // An unanswered bench counts nothing.
    let result = bench(&mut fake, None, 4);
    assert_eq!((result.ok, result.rps, result.p99_us), (0, 0, 0));
}

#[test]
fn a_bad_token_is_not_sent() {
    struct BadToken(Fake);
    impl Environment for BadToken {
        fn request(
            &mut self,
            method: &str,
            path: &[u8],
            headers: &[(&str, &str)],
            timeout_ms: u64,
        ) -> Result<Response, HttpError> {
            if method == "PUT" {
                return Ok(response(200, b"tok\r\nX-Injected: 1"));
            }
            self.0.request(method, path, headers, timeout_ms)
        }
        fn pause(&mut self, millis: u64) {
            self.0.pause(millis);
        }
        fn micros(&self) -> u64 {
            self.0.micros()
        }
        fn say(&mut self, line: fmt::Arguments<'_>) {
            self.0.say(line);
        }
    }
    let mut env = BadToken(Fake::new());
    let metadata = fetch(&mut env, ImdsVersion::V2);
    assert_eq!(metadata.token, None);
    assert_eq!(env.0.lines()[0], "imds token=error bad token");
    assert_eq!(env.0.lines()[1], "imds instance-id=HTTP 401");
}
