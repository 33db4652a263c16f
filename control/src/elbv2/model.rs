//! The parts of ELB's resources stored as JSON (health checks, actions, conditions,
//! attributes), their defaults and checks, and the ARNs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::ElbError;

/// The one region.
pub const REGION: &str = "local-1";

/// A random 16-hex-digit id, as ELB's ARNs end with.
pub fn new_id() -> String {
    use rand::Rng;
    format!("{:016x}", rand::thread_rng().r#gen::<u64>())
}

/// `app` or `net`, as ARNs spell a load balancer's type.
pub fn kind_prefix(kind: &str) -> &'static str {
    if kind == "network" { "net" } else { "app" }
}

/// A load balancer's ARN.
pub fn lb_arn(account: &str, kind: &str, name: &str, id: &str) -> String {
    format!(
        "arn:aws:elasticloadbalancing:{REGION}:{account}:loadbalancer/{}/{name}/{id}",
        kind_prefix(kind)
    )
}

/// A target group's ARN.
pub fn tg_arn(account: &str, name: &str, id: &str) -> String {
    format!("arn:aws:elasticloadbalancing:{REGION}:{account}:targetgroup/{name}/{id}")
}

/// A load balancer's `KIND/NAME/ID` (the `LoadBalancer` metric dimension), from its ARN.
pub fn lb_dimension(arn: &str) -> &str {
    arn.split_once(":loadbalancer/").map_or(arn, |(_, r)| r)
}

/// A target group's `targetgroup/NAME/ID` (the `TargetGroup` metric dimension).
pub fn tg_dimension(arn: &str) -> &str {
    arn.rfind(":targetgroup/").map_or(arn, |i| &arn[i + 1..])
}

/// A target group's backend name in HAProxy's configuration.
pub fn backend_name(tg_arn: &str) -> String {
    format!("tg-{}", arn_id(tg_arn))
}

/// The last part of an ARN (a resource's id).
pub fn arn_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// A listener's ARN under its load balancer's.
pub fn listener_arn(lb_arn: &str, id: &str) -> String {
    format!(
        "{}/{id}",
        lb_arn.replacen(":loadbalancer/", ":listener/", 1)
    )
}

/// A rule's ARN under its listener's.
pub fn rule_arn(listener_arn: &str, id: &str) -> String {
    format!(
        "{}/{id}",
        listener_arn.replacen(":listener/", ":listener-rule/", 1)
    )
}

/// Whether `name` is a load balancer's or target group's name: 1 to 32 alphanumerics or
/// hyphens, not starting or ending with a hyphen (nor, for a load balancer, with
/// `internal-`).
pub fn well_formed_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A target group's health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// Whether targets are checked.
    pub enabled: bool,
    /// `HTTP`, `HTTPS` or `TCP`.
    pub protocol: String,
    /// `traffic-port` or a port.
    pub port: String,
    /// The path of an HTTP check.
    pub path: Option<String>,
    /// Seconds between checks (5 to 300).
    pub interval: i32,
    /// Seconds a check may take (2 to 120).
    pub timeout: i32,
    /// Passes that make a target healthy (2 to 10).
    pub healthy: i32,
    /// Failures that make it unhealthy (2 to 10).
    pub unhealthy: i32,
    /// The HTTP codes that pass (`200`, `200,202`, `200-299`).
    pub matcher: Option<String>,
}

impl HealthCheck {
    /// ELB's defaults for a target group of `protocol`.
    pub fn default_for(protocol: &str) -> Self {
        let http = protocol != "TCP";
        HealthCheck {
            enabled: true,
            protocol: if http { protocol.into() } else { "TCP".into() },
            port: "traffic-port".into(),
            path: http.then(|| "/".into()),
            interval: 30,
            timeout: if http { 5 } else { 10 },
            healthy: 5,
            unhealthy: 2,
            matcher: http.then(|| "200".into()),
        }
    }

    /// Checks the settings' ranges and forms.
    pub fn check(&self) -> Result<(), ElbError> {
        let bad = |m: String| Err(ElbError::Validation(m));
        if !matches!(self.protocol.as_str(), "HTTP" | "HTTPS" | "TCP") {
            return bad(format!(
                "Health check protocol '{}' is not supported",
                self.protocol
            ));
        }
        if self.port != "traffic-port" && !self.port.parse::<u16>().is_ok_and(|p| p >= 1) {
            return bad("Health check port must be 'traffic-port' or between 1 and 65535".into());
        }
        if !(5..=300).contains(&self.interval) {
            return bad("Health check interval must be between 5 and 300 seconds".into());
        }
        if !(2..=120).contains(&self.timeout) {
            return bad("Health check timeout must be between 2 and 120 seconds".into());
        }
        if self.timeout >= self.interval {
            return Err(ElbError::InvalidConfiguration(
                "Health check timeout must be smaller than the interval".into(),
            ));
        }
        if !(2..=10).contains(&self.healthy) || !(2..=10).contains(&self.unhealthy) {
            return bad("Health check thresholds must be between 2 and 10".into());
        }
        if let Some(p) = &self.path
            && (!p.starts_with('/') || p.len() > 1024)
        {
            return bad(
                "Health check path must start with '/' and be at most 1024 characters".into(),
            );
        }
        if let Some(m) = &self.matcher {
            matcher_codes(m)?;
        }
        Ok(())
    }
}

/// The codes of a matcher: `200`, `200,202` or `200-299`, each 200 to 499.
pub fn matcher_codes(matcher: &str) -> Result<Vec<u16>, ElbError> {
    let bad = || {
        ElbError::Validation(format!(
            "Health check matcher '{matcher}' must be HTTP codes from 200 to 499, as '200', '200,202' or '200-299'"
        ))
    };
    let code = |s: &str| {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|c| (200..=499).contains(c))
            .ok_or_else(bad)
    };
    let mut out = Vec::new();
    if let Some((a, b)) = matcher.split_once('-') {
        let (a, b) = (code(a)?, code(b)?);
        if a > b {
            return Err(bad());
        }
        out.extend(a..=b);
    } else {
        for part in matcher.split(',') {
            out.push(code(part)?);
        }
    }
    Ok(out)
}

/// What a listener or rule does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Action {
    /// Forward to target groups by weight.
    Forward {
        /// `(target group ARN, weight 0 to 999)`.
        target_groups: Vec<(String, i32)>,
        /// Target group stickiness: whether, and for how many seconds.
        stickiness: Option<(bool, i32)>,
    },
    /// A fixed response.
    FixedResponse {
        /// `2XX`, `4XX` or `5XX` digits.
        status_code: String,
        /// Its content type.
        content_type: Option<String>,
        /// Its body (at most 1024 characters).
        message_body: Option<String>,
    },
    /// A redirect.
    Redirect {
        /// `HTTP`, `HTTPS` or `#{protocol}`.
        protocol: Option<String>,
        /// A port or `#{port}`.
        port: Option<String>,
        /// A host or `#{host}`.
        host: Option<String>,
        /// A path or `/#{path}`.
        path: Option<String>,
        /// A query or `#{query}`.
        query: Option<String>,
        /// `HTTP_301` or `HTTP_302`.
        status_code: String,
    },
}

impl Action {
    /// The target groups it forwards to.
    pub fn target_groups(&self) -> Vec<String> {
        match self {
            Action::Forward { target_groups, .. } => {
                target_groups.iter().map(|(a, _)| a.clone()).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// A rule's conditions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    /// `path-pattern` values.
    pub paths: Vec<String>,
    /// `host-header` values.
    pub hosts: Vec<String>,
}

/// Reads a JSON column this module wrote (a default for anything else).
pub fn from_json<T: serde::de::DeserializeOwned + Default>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_default()
}

/// Writes a JSON column.
pub fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// Attributes as stored.
pub type Attributes = BTreeMap<String, String>;

/// A target group's attributes with ELB's defaults.
pub fn tg_attribute_defaults() -> Attributes {
    [
        ("deregistration_delay.timeout_seconds", "300"),
        ("stickiness.enabled", "false"),
        ("stickiness.type", "lb_cookie"),
        ("stickiness.lb_cookie.duration_seconds", "86400"),
        ("load_balancing.algorithm.type", "round_robin"),
        ("slow_start.duration_seconds", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A load balancer's attributes with ELB's defaults.
pub fn lb_attribute_defaults() -> Attributes {
    [
        ("idle_timeout.timeout_seconds", "60"),
        ("deletion_protection.enabled", "false"),
        ("routing.http2.enabled", "true"),
        ("access_logs.s3.enabled", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn int_in(key: &str, value: &str, range: std::ops::RangeInclusive<i64>) -> Result<(), ElbError> {
    match value.parse::<i64>() {
        Ok(n) if range.contains(&n) => Ok(()),
        _ => Err(ElbError::Validation(format!(
            "The value of '{key}' must be an integer from {} to {}",
            range.start(),
            range.end()
        ))),
    }
}

fn boolean(key: &str, value: &str) -> Result<(), ElbError> {
    if value == "true" || value == "false" {
        Ok(())
    } else {
        Err(ElbError::Validation(format!(
            "The value of '{key}' must be 'true' or 'false'"
        )))
    }
}

/// Checks one target group attribute.
pub fn check_tg_attribute(key: &str, value: &str) -> Result<(), ElbError> {
    match key {
        "deregistration_delay.timeout_seconds" => int_in(key, value, 0..=3600),
        "stickiness.enabled" => boolean(key, value),
        "stickiness.type" if value == "lb_cookie" => Ok(()),
        "stickiness.type" => Err(ElbError::Validation(
            "The value of 'stickiness.type' must be 'lb_cookie' here".into(),
        )),
        "stickiness.lb_cookie.duration_seconds" => int_in(key, value, 1..=604_800),
        "load_balancing.algorithm.type" if value == "round_robin" => Ok(()),
        "slow_start.duration_seconds" if value == "0" => Ok(()),
        _ => Err(ElbError::Validation(format!(
            "Target group attribute key '{key}' is not recognized or its value '{value}' is not supported"
        ))),
    }
}

/// Checks one load balancer attribute.
pub fn check_lb_attribute(key: &str, value: &str) -> Result<(), ElbError> {
    match key {
        "idle_timeout.timeout_seconds" => int_in(key, value, 1..=4000),
        "deletion_protection.enabled" | "routing.http2.enabled" => boolean(key, value),
        "access_logs.s3.enabled" if value == "false" => Ok(()),
        _ => Err(ElbError::Validation(format!(
            "Load balancer attribute key '{key}' is not recognized or its value '{value}' is not supported"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_and_dimensions() {
        let lb = lb_arn("123456789012", "application", "web", "abc");
        assert_eq!(
            lb,
            "arn:aws:elasticloadbalancing:local-1:123456789012:loadbalancer/app/web/abc"
        );
        assert_eq!(lb_dimension(&lb), "app/web/abc");
        let l = listener_arn(&lb, "def");
        assert!(l.ends_with(":listener/app/web/abc/def"), "{l}");
        assert!(rule_arn(&l, "123").ends_with(":listener-rule/app/web/abc/def/123"));
        let tg = tg_arn("123456789012", "tg1", "f00");
        assert_eq!(tg_dimension(&tg), "targetgroup/tg1/f00");
        assert_eq!(arn_id(&tg), "f00");
    }

    #[test]
    fn names_and_matchers() {
        assert!(well_formed_name("my-lb-1"));
        assert!(!well_formed_name("-x") && !well_formed_name("x-") && !well_formed_name("a_b"));
        assert!(!well_formed_name(&"a".repeat(33)));
        assert_eq!(matcher_codes("200").unwrap(), [200]);
        assert_eq!(matcher_codes("200,202").unwrap(), [200, 202]);
        assert_eq!(matcher_codes("200-204").unwrap().len(), 5);
        for bad in ["", "abc", "199", "500", "300-200", "200-"] {
            assert!(matcher_codes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn health_check_ranges() {
        let mut h = HealthCheck::default_for("HTTP");
        assert!(h.check().is_ok());
        h.timeout = 30;
        assert!(matches!(h.check(), Err(ElbError::InvalidConfiguration(_))));
        h.timeout = 5;
        h.interval = 4;
        assert!(matches!(h.check(), Err(ElbError::Validation(_))));
        assert!(HealthCheck::default_for("TCP").path.is_none());
    }

    #[test]
    fn attributes_are_checked() {
        assert!(check_tg_attribute("deregistration_delay.timeout_seconds", "0").is_ok());
        assert!(check_tg_attribute("deregistration_delay.timeout_seconds", "3601").is_err());
        assert!(check_tg_attribute("stickiness.enabled", "yes").is_err());
        assert!(check_tg_attribute("nope", "1").is_err());
        assert!(check_lb_attribute("idle_timeout.timeout_seconds", "4000").is_ok());
        assert!(check_lb_attribute("access_logs.s3.enabled", "true").is_err());
    }
}
