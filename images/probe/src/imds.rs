//! The instance metadata client of `probe.imds=`: an IMDSv2 session token (or none, for v1),
//! four metadata items printed as `probe: imds <item>=<value>`, and the timed GETs of
//! `probe.imds_bench=`. The requests go through an [`Environment`]: the network stack in the
//! image, a scripted fake in the unit tests.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::cmdline::ImdsVersion;
use crate::http::Response;
use crate::netstack::{HttpError, Stack};
use crate::time;

/// The metadata service's address and port.
pub const IMDS_IP: [u8; 4] = [169, 254, 169, 254];
/// The metadata service's port.
pub const IMDS_PORT: u16 = 80;
/// Where an IMDSv2 session token is asked for (`PUT`).
pub const TOKEN_PATH: &[u8] = b"/latest/api/token";
/// The header of the token request that sets the token's lifetime.
pub const TOKEN_TTL_HEADER: &str = "X-aws-ec2-metadata-token-ttl-seconds";
/// The lifetime the probe asks for: 6 hours, the most IMDS allows.
pub const TOKEN_TTL_SECONDS: &str = "21600";
/// The header that carries the token on every GET.
pub const TOKEN_HEADER: &str = "X-aws-ec2-metadata-token";
/// The instance-id item (also what `probe.imds_bench=` fetches).
pub const INSTANCE_ID_PATH: &[u8] = b"/latest/meta-data/instance-id";
/// The items fetched, in order: the name printed and the path.
pub const ITEMS: [(&str, &[u8]); 4] = [
    ("instance-id", INSTANCE_ID_PATH),
    ("local-ipv4", b"/latest/meta-data/local-ipv4"),
    (
        "public-keys/0/openssh-key",
        b"/latest/meta-data/public-keys/0/openssh-key",
    ),
    ("user-data", b"/latest/user-data"),
];
/// Bytes of a value printed; longer values are cut and end with `...`.
pub const MAX_VALUE_BYTES: usize = 512;
/// Longest token the probe sends back (AWS tokens are about 56 bytes).
pub const MAX_TOKEN_BYTES: usize = 1024;
/// For how long after the fetch starts a failed connection is tried again: the service may
/// come up a moment after the address.
pub const RETRY_BUDGET_MICROS: u64 = 5_000_000;
/// Pause between two tries.
pub const RETRY_PAUSE_MS: u64 = 250;
/// How long one request may take.
pub const ATTEMPT_TIMEOUT_MS: u64 = 2_000;

/// What the client needs from its surroundings: requests to the metadata service, a clock,
/// a pause that keeps the network running, and the console.
pub trait Environment {
    /// One HTTP request to the metadata service, with an empty body.
    fn request(
        &mut self,
        method: &str,
        path: &[u8],
        headers: &[(&str, &str)],
        timeout_ms: u64,
    ) -> Result<Response, HttpError>;
    /// Waits `millis` milliseconds.
    fn pause(&mut self, millis: u64);
    /// Microseconds on a monotonic clock.
    fn micros(&self) -> u64;
    /// Prints one console line (`probe: ` and the arguments).
    fn say(&mut self, line: fmt::Arguments<'_>);
}

impl Environment for Stack {
    fn request(
        &mut self,
        method: &str,
        path: &[u8],
        headers: &[(&str, &str)],
        timeout_ms: u64,
    ) -> Result<Response, HttpError> {
        self.http_request(method, IMDS_IP, IMDS_PORT, path, headers, b"", timeout_ms)
    }

    fn pause(&mut self, millis: u64) {
        Stack::pause(self, millis);
    }

    fn micros(&self) -> u64 {
        self.clock().micros_ceil(time::now())
    }

    fn say(&mut self, line: fmt::Arguments<'_>) {
        crate::console::print_line(line);
    }
}

/// A metadata value for a console line: printable ASCII as is, `\n`, `\r` and `\\` escaped
/// as in C, every other byte as `\xNN`; cut after [`MAX_VALUE_BYTES`] bytes with `...`.
pub struct Escaped<'a>(pub &'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = &self.0[..self.0.len().min(MAX_VALUE_BYTES)];
        for &byte in shown {
            match byte {
                b'\n' => f.write_str("\\n")?,
                b'\r' => f.write_str("\\r")?,
                b'\\' => f.write_str("\\\\")?,
                b' '..=b'~' => fmt::Write::write_char(f, char::from(byte))?,
                _ => write!(f, "\\x{byte:02x}")?,
            }
        }
        if shown.len() < self.0.len() {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// What one metadata request came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `200`: the body.
    Value(Vec<u8>),
    /// Any other status.
    Status(u16),
    /// No response: printed `error <why>`.
    Failed(HttpError),
}

impl From<Result<Response, HttpError>> for Answer {
    fn from(result: Result<Response, HttpError>) -> Self {
        match result {
            Ok(r) if r.status == 200 => Self::Value(r.body),
            Ok(r) => Self::Status(r.status),
            Err(e) => Self::Failed(e),
        }
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(v) => Escaped(v).fmt(f),
            Self::Status(status) => write!(f, "HTTP {status}"),
            Self::Failed(e) => write!(f, "error {e}"),
        }
    }
}

/// What the fetch learnt, for the responder and the bench.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The IMDSv2 session token (none under v1, or if the `PUT` failed).
    pub token: Option<String>,
    /// The instance-id (a `200` with a non-blank body, trimmed).
    pub instance_id: Option<Vec<u8>>,
}

/// The session token in a `PUT` answer's body: visible ASCII, surrounding whitespace
/// trimmed, at most [`MAX_TOKEN_BYTES`]; `None` for anything that could not be sent back in
/// a header.
pub fn token_from_body(body: &[u8]) -> Option<String> {
    let token = body.trim_ascii();
    let usable = !token.is_empty()
        && token.len() <= MAX_TOKEN_BYTES
        && token.iter().all(|b| b.is_ascii_graphic());
    usable.then(|| token.iter().map(|&b| char::from(b)).collect())
}

/// Requests to the metadata service, trying failed connections again until the retry
/// budget (counted from the start of the fetch) is spent.
struct Client<'e, E: Environment> {
    env: &'e mut E,
    retry_until: u64,
}

impl<E: Environment> Client<'_, E> {
    fn request(
        &mut self,
        method: &str,
        path: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<Response, HttpError> {
        loop {
            match self.env.request(method, path, headers, ATTEMPT_TIMEOUT_MS) {
                Err(e) if e != HttpError::Malformed && self.env.micros() < self.retry_until => {
                    self.env.pause(RETRY_PAUSE_MS);
                }
                other => return other,
            }
        }
    }

    /// `PUT /latest/api/token`; on failure prints `probe: imds token=<why>` and returns none.
    fn token(&mut self) -> Option<String> {
        let answer =
            Answer::from(self.request("PUT", TOKEN_PATH, &[(TOKEN_TTL_HEADER, TOKEN_TTL_SECONDS)]));
        match answer {
            Answer::Value(body) => {
                let token = token_from_body(&body);
                if token.is_none() {
                    self.env.say(format_args!("imds token=error bad token"));
                }
                token
            }
            other => {
                self.env.say(format_args!("imds token={other}"));
                None
            }
        }
    }
}

/// The headers of a GET: the token's, if there is one.
fn token_headers(token: Option<&str>) -> Vec<(&'static str, &str)> {
    token.map(|t| (TOKEN_HEADER, t)).into_iter().collect()
}

/// The `probe.imds=` fetch: the token (v2), then each of [`ITEMS`] printed as
/// `probe: imds <item>=<answer>`, then `probe: imds done`.
pub fn fetch<E: Environment>(env: &mut E, version: ImdsVersion) -> Metadata {
    let retry_until = env.micros().saturating_add(RETRY_BUDGET_MICROS);
    let mut client = Client { env, retry_until };
    let token = match version {
        ImdsVersion::V1 => None,
        ImdsVersion::V2 => client.token(),
    };
    let headers = token_headers(token.as_deref());
    let mut instance_id = None;
    for (name, path) in ITEMS {
        let answer = Answer::from(client.request("GET", path, &headers));
        client.env.say(format_args!("imds {name}={answer}"));
        if let (INSTANCE_ID_PATH, Answer::Value(value)) = (path, &answer) {
            let id = value.trim_ascii();
            if !id.is_empty() {
                instance_id = Some(id.to_vec());
            }
        }
    }
    client.env.say(format_args!("imds done"));
    Metadata { token, instance_id }
}

/// What `probe.imds_bench=` measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchResult {
    /// GETs made.
    pub n: u32,
    /// GETs answered `200`.
    pub ok: u32,
    /// Answered GETs per second over the whole run.
    pub rps: u64,
    /// Median latency of the answered GETs, in microseconds (0 if none).
    pub p50_us: u64,
    /// 99th percentile latency of the answered GETs (0 if none).
    pub p99_us: u64,
}

impl fmt::Display for BenchResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n={} ok={} rps={} p50_us={} p99_us={}",
            self.n, self.ok, self.rps, self.p50_us, self.p99_us
        )
    }
}

/// The nearest-rank `pct` percentile of `sorted` (ascending); 0 if it is empty.
pub fn percentile(sorted: &[u64], pct: u64) -> u64 {
    let rank = (sorted.len() as u64 * pct).div_ceil(100).max(1);
    usize::try_from(rank - 1)
        .ok()
        .and_then(|i| sorted.get(i))
        .copied()
        .unwrap_or(0)
}

/// `n` sequential GETs of the instance-id, each on a new connection, with the token if there
/// is one (no retries); prints `probe: imds bench n=N ok=K rps=R p50_us=X p99_us=Y`.
pub fn bench<E: Environment>(env: &mut E, token: Option<&str>, n: u32) -> BenchResult {
    let headers = token_headers(token);
    let mut latencies = Vec::with_capacity(n as usize);
    let start = env.micros();
    for _ in 0..n {
        let before = env.micros();
        let answered = env
            .request("GET", INSTANCE_ID_PATH, &headers, ATTEMPT_TIMEOUT_MS)
            .is_ok_and(|r| r.status == 200);
        if answered {
            latencies.push(env.micros().saturating_sub(before));
        }
    }
    let elapsed = env.micros().saturating_sub(start).max(1);
    latencies.sort_unstable();
    let ok = latencies.len() as u32;
    let result = BenchResult {
        n,
        ok,
        rps: u64::from(ok) * 1_000_000 / elapsed,
        p50_us: percentile(&latencies, 50),
        p99_us: percentile(&latencies, 99),
    };
    env.say(format_args!("imds bench {result}"));
    result
}

#[cfg(test)]
mod tests {
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
        fetch(&mut fake, ImdsVersion::V1);
        assert_eq!(fake.lines()[3], "imds user-data=#!/bin/sh\\necho h\\xe9\\n");
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
}
