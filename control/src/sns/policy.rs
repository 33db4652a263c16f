//! Delivery policies: the JSON a topic's or a subscription's `DeliveryPolicy` attribute
//! holds, checked as SNS checks it, and the retry schedule it gives (SNS's HTTP retry
//! policy: retries without delay, then at the minimum delay, then backing off to the
//! maximum, then at the maximum).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most retries a policy may ask for.
pub const MAX_RETRIES: i64 = 100;
/// The longest delay a policy may ask for, in seconds.
pub const MAX_DELAY: i64 = 3600;

/// How often and when a failed delivery is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub num_retries: i64,
    /// Retries made at once.
    pub num_no_delay_retries: i64,
    /// Retries made at `min_delay_target`.
    pub num_min_delay_retries: i64,
    /// Retries made at `max_delay_target` (the last ones).
    pub num_max_delay_retries: i64,
    /// The shortest delay, seconds.
    pub min_delay_target: i64,
    /// The longest delay, seconds.
    pub max_delay_target: i64,
    /// How the delays grow from the minimum to the maximum.
    pub backoff_function: Backoff,
}

/// How the delays of the backoff phase grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    /// Evenly.
    Linear,
    /// In equal differences (taken as linear).
    Arithmetic,
    /// By a constant ratio.
    Geometric,
    /// By a constant ratio (taken as geometric).
    Exponential,
}

impl Default for RetryPolicy {
    /// SNS's default for HTTP(S): three retries twenty seconds apart.
    fn default() -> Self {
        Self {
            num_retries: 3,
            num_no_delay_retries: 0,
            num_min_delay_retries: 0,
            num_max_delay_retries: 0,
            min_delay_target: 20,
            max_delay_target: 20,
            backoff_function: Backoff::Linear,
        }
    }
}

impl RetryPolicy {
    /// The delay in seconds before retry `n` (1 for the first retry).
    pub fn delay_before(&self, n: i64) -> i64 {
        let no_delay = self.num_no_delay_retries;
        let min_phase = no_delay + self.num_min_delay_retries;
        let backoff_steps = self.num_retries - min_phase - self.num_max_delay_retries;
        let (min, max) = (self.min_delay_target, self.max_delay_target);
        if n <= no_delay {
            return 0;
        }
        if n <= min_phase {
            return min;
        }
        let k = n - min_phase;
        if backoff_steps <= 0 || k >= backoff_steps {
            return max;
        }
        let share = k as f64 / backoff_steps as f64;
        let delay = match self.backoff_function {
            Backoff::Linear | Backoff::Arithmetic => min as f64 + (max - min) as f64 * share,
            Backoff::Geometric | Backoff::Exponential => {
                (min.max(1) as f64) * ((max.max(1) as f64) / (min.max(1) as f64)).powf(share)
            }
        };
        (delay.round() as i64).clamp(min, max)
    }
}

/// Why a delivery policy is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not JSON.
    #[error("Invalid parameter: DeliveryPolicy: Unable to parse the policy as JSON")]
    Json,
    /// A member of the wrong kind or out of range.
    #[error("Invalid parameter: DeliveryPolicy: {0}")]
    Member(String),
}

/// Reads the retry policy of a topic's `DeliveryPolicy` (`{"http":
/// {"defaultHealthyRetryPolicy": {...}, "disableSubscriptionOverrides": bool}}`); gives the
/// policy and whether subscriptions may override it.
pub fn topic_policy(text: &str) -> Result<(Option<RetryPolicy>, bool), PolicyError> {
    let v: Value = serde_json::from_str(text).map_err(|_| PolicyError::Json)?;
    let root = object(&v, "the policy")?;
    let Some(http) = root.get("http") else {
        return Ok((None, false));
    };
    let http = object(http, "http")?;
    let disable = match http.get("disableSubscriptionOverrides") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(PolicyError::Member(
                "http.disableSubscriptionOverrides must be true or false".into(),
            ));
        }
    };
    let policy = http
        .get("defaultHealthyRetryPolicy")
        .map(retry_policy)
        .transpose()?;
    Ok((policy, disable))
}

/// Reads the retry policy of a subscription's `DeliveryPolicy` (`{"healthyRetryPolicy":
/// {...}}`).
pub fn subscription_policy(text: &str) -> Result<Option<RetryPolicy>, PolicyError> {
    let v: Value = serde_json::from_str(text).map_err(|_| PolicyError::Json)?;
    let root = object(&v, "the policy")?;
    root.get("healthyRetryPolicy").map(retry_policy).transpose()
}

/// The policy a delivery over `protocol` follows: the subscription's, else the topic's,
/// else SNS's default (email has SNS's default).
pub fn effective(
    protocol: &str,
    topic_policy_text: Option<&str>,
    subscription_policy_text: Option<&str>,
) -> RetryPolicy {
    if !protocol.starts_with("http") {
        return RetryPolicy::default();
    }
    let (topic, disabled) = topic_policy_text
        .and_then(|t| topic_policy(t).ok())
        .unwrap_or((None, false));
    let own = if disabled {
        None
    } else {
        subscription_policy_text.and_then(|t| subscription_policy(t).ok().flatten())
    };
    own.or(topic).unwrap_or_default()
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a serde_json::Map<String, Value>, PolicyError> {
    v.as_object()
        .ok_or_else(|| PolicyError::Member(format!("{what} must be a JSON object")))
}

fn retry_policy(v: &Value) -> Result<RetryPolicy, PolicyError> {
    let o = object(v, "the retry policy")?;
    let d = RetryPolicy::default();
    let int = |name: &str, default: i64, max: i64| -> Result<i64, PolicyError> {
        match o.get(name) {
            None => Ok(default),
            Some(n) => n.as_i64().filter(|n| (0..=max).contains(n)).ok_or_else(|| {
                PolicyError::Member(format!("{name} must be an integer from 0 to {max}"))
            }),
        }
    };
    let p = RetryPolicy {
        num_retries: int("numRetries", d.num_retries, MAX_RETRIES)?,
        num_no_delay_retries: int("numNoDelayRetries", 0, MAX_RETRIES)?,
        num_min_delay_retries: int("numMinDelayRetries", 0, MAX_RETRIES)?,
        num_max_delay_retries: int("numMaxDelayRetries", 0, MAX_RETRIES)?,
        min_delay_target: int("minDelayTarget", d.min_delay_target, MAX_DELAY)?,
        max_delay_target: int("maxDelayTarget", d.max_delay_target, MAX_DELAY)?,
        backoff_function: match o.get("backoffFunction") {
            None => Backoff::Linear,
            Some(f) => serde_json::from_value(f.clone()).map_err(|_| {
                PolicyError::Member(
                    "backoffFunction must be one of arithmetic, exponential, geometric, linear"
                        .into(),
                )
            })?,
        },
    };
    if p.min_delay_target < 1 || p.min_delay_target > p.max_delay_target {
        return Err(PolicyError::Member(
            "minDelayTarget must be at least 1 and at most maxDelayTarget".into(),
        ));
    }
    if p.num_no_delay_retries + p.num_min_delay_retries + p.num_max_delay_retries > p.num_retries {
        return Err(PolicyError::Member(
            "numNoDelayRetries, numMinDelayRetries and numMaxDelayRetries add up to more than numRetries"
                .into(),
        ));
    }
    Ok(p)
}

/// SNS's `EffectiveDeliveryPolicy` attribute for a policy.
pub fn effective_text(p: &RetryPolicy) -> String {
    serde_json::json!({
        "http": {
            "defaultHealthyRetryPolicy": p,
            "disableSubscriptionOverrides": false,
            "defaultRequestPolicy": {"headerContentType": "text/plain; charset=UTF-8"},
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_three_retries_twenty_seconds_apart() {
        let p = RetryPolicy::default();
        assert_eq!(
            (1..=3).map(|n| p.delay_before(n)).collect::<Vec<_>>(),
            [20, 20, 20]
        );
    }

    #[test]
    fn phases_go_no_delay_then_minimum_then_backoff_then_maximum() {
        let p = RetryPolicy {
            num_retries: 8,
            num_no_delay_retries: 1,
            num_min_delay_retries: 1,
            num_max_delay_retries: 2,
            min_delay_target: 1,
            max_delay_target: 16,
            backoff_function: Backoff::Exponential,
        };
        let delays: Vec<i64> = (1..=8).map(|n| p.delay_before(n)).collect();
        assert_eq!(delays, [0, 1, 2, 4, 8, 16, 16, 16]);
    }

    #[test]
    fn topic_and_subscription_policies_are_read_and_checked() {
        let t = r#"{"http":{"defaultHealthyRetryPolicy":{"numRetries":2,"minDelayTarget":1,"maxDelayTarget":1}}}"#;
        let (p, disabled) = topic_policy(t).unwrap();
        assert_eq!(p.unwrap().num_retries, 2);
        assert!(!disabled);
        assert_eq!(effective("http", Some(t), None).num_retries, 2);
        assert_eq!(effective("email", Some(t), None), RetryPolicy::default());
        let s = r#"{"healthyRetryPolicy":{"numRetries":5,"minDelayTarget":2,"maxDelayTarget":9}}"#;
        assert_eq!(effective("https", Some(t), Some(s)).num_retries, 5);
        for bad in [
            "not json",
            "[]",
            r#"{"http":{"defaultHealthyRetryPolicy":{"numRetries":101}}}"#,
            r#"{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":30,"maxDelayTarget":5}}}"#,
            r#"{"http":{"defaultHealthyRetryPolicy":{"backoffFunction":"cubic"}}}"#,
            r#"{"http":{"disableSubscriptionOverrides":"yes"}}"#,
        ] {
            assert!(topic_policy(bad).is_err(), "{bad}");
        }
        assert!(subscription_policy(r#"{"healthyRetryPolicy":{"numRetries":-1}}"#).is_err());
    }
}
