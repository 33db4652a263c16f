//! What one load balancer's HAProxy is made from: a plain description the control plane
//! builds from the state, which `config.rs` renders.

use std::net::Ipv4Addr;

/// One load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbSpec {
    /// Its id (the last part of its ARN), which names its directory.
    pub id: String,
    /// The address its listeners bind.
    pub address: Ipv4Addr,
    /// HTTP (application) or TCP (network) frontends.
    pub http: bool,
    /// Seconds an idle client or server connection is kept.
    pub idle_timeout_s: u32,
    /// HTTPS listeners offer HTTP/2 (ALPN `h2`) as well as HTTP/1.1.
    pub http2: bool,
    /// Seconds an old process may keep finishing connections after a change.
    pub drain_s: u32,
    /// Its listeners.
    pub listeners: Vec<ListenerSpec>,
    /// Its target groups.
    pub backends: Vec<BackendSpec>,
}

/// One listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Its port.
    pub port: u16,
    /// A PEM file (certificate and key) for HTTPS.
    pub tls_pem: Option<String>,
    /// Its rules, by priority.
    pub rules: Vec<RuleSpec>,
    /// Its default action.
    pub default: ActionSpec,
}

/// One rule: every listed condition must match (a condition with several values matches
/// any of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    /// Path patterns (`*` and `?` wildcards, case-sensitive).
    pub paths: Vec<String>,
    /// Host patterns (`*` and `?` wildcards, any case).
    pub hosts: Vec<String>,
    /// What a matching request gets.
    pub action: ActionSpec,
}

/// What a request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionSpec {
    /// Sent to target groups by weight: `(backend name, weight)`.
    Forward(Vec<(String, u32)>),
    /// A fixed answer.
    Fixed {
        /// Its status.
        status: u16,
        /// Its content type.
        content_type: String,
        /// Its body.
        body: String,
    },
    /// A redirect.
    Redirect {
        /// 301 or 302.
        status: u16,
        /// `#{protocol}`, `HTTP` or `HTTPS`.
        protocol: String,
        /// `#{host}` or a host.
        host: String,
        /// `#{port}` or a port.
        port: String,
        /// A path, with `#{path}` for the request's (without its leading slash).
        path: String,
        /// A query, with `#{query}` for the request's.
        query: String,
    },
}

/// One target group as seen by this load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    /// `tg-<id>`.
    pub name: String,
    /// The address connections to targets come from (the load balancer's interface).
    pub source: Option<Ipv4Addr>,
    /// Its health check.
    pub check: CheckSpec,
    /// lb_cookie stickiness for so many seconds.
    pub sticky_s: Option<u32>,
    /// Its targets in service (draining ones are left out).
    pub servers: Vec<ServerSpec>,
}

/// A health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// Whether targets are checked at all.
    pub enabled: bool,
    /// An HTTP check: path and the status codes that pass.
    pub http: Option<(String, Vec<u16>)>,
    /// A port other than the traffic port.
    pub port: Option<u16>,
    /// Seconds between checks.
    pub interval_s: u32,
    /// Seconds a check may take.
    pub timeout_s: u32,
    /// Passes in a row that make a target healthy.
    pub rise: u32,
    /// Failures in a row that make it unhealthy.
    pub fall: u32,
}

/// A target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// `<target id>_<port>` (what stats report).
    pub name: String,
    /// Its address.
    pub address: Ipv4Addr,
    /// Its port.
    pub port: u16,
}

/// The server name of a target.
pub fn server_name(target_id: &str, port: i32) -> String {
    format!("{target_id}_{port}")
}
