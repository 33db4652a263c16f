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
/// The user-data item.
pub const USER_DATA_PATH: &[u8] = b"/latest/user-data";
/// The items fetched, in order: the name printed and the path.
pub const ITEMS: [(&str, &[u8]); 4] = [
    ("instance-id", INSTANCE_ID_PATH),
    ("local-ipv4", b"/latest/meta-data/local-ipv4"),
    (
        "public-keys/0/openssh-key",
        b"/latest/meta-data/public-keys/0/openssh-key",
    ),
    ("user-data", USER_DATA_PATH),
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
    /// The user-data (the body of a `200`, as is).
    pub user_data: Option<Vec<u8>>,
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
    let mut user_data = None;
    for (name, path) in ITEMS {
        let answer = Answer::from(client.request("GET", path, &headers));
        client.env.say(format_args!("imds {name}={answer}"));
        match (path, answer) {
            (INSTANCE_ID_PATH, Answer::Value(value)) => {
                let id = value.trim_ascii();
                if !id.is_empty() {
                    instance_id = Some(id.to_vec());
                }
            }
            (USER_DATA_PATH, Answer::Value(value)) => user_data = Some(value),
            _ => {}
        }
    }
    client.env.say(format_args!("imds done"));
    Metadata {
        token,
        instance_id,
        user_data,
    }
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
mod tests;
