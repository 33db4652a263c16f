//! The checks SNS makes of what a caller names: topic names, topic and subscription ARNs,
//! protocols and their endpoints, tags.

use host::placement::REGION;

/// The protocols subscriptions are delivered over.
pub const PROTOCOLS: &[&str] = &["http", "https", "email", "email-json"];

/// The longest topic name.
pub const MAX_NAME: usize = 256;
/// The most tags a topic has.
pub const MAX_TAGS: usize = 50;

/// Whether `name` is 1 to 256 letters, digits, `-` and `_` (a FIFO topic's `.fifo`
/// suffix is refused apart: this SNS has standard topics only).
pub fn well_formed_topic_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A topic's ARN in this region and `account`.
pub fn topic_arn(account: &str, name: &str) -> String {
    format!("arn:aws:sns:{REGION}:{account}:{name}")
}

/// Why an ARN names nothing this endpoint has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArnError {
    /// Not an SNS ARN of the right form.
    #[error("Invalid parameter: {field} Reason: {reason}")]
    Malformed {
        /// The parameter.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An ARN of another account.
    #[error("User: arn:aws:iam::{caller}:root is not authorized to access {arn}")]
    OtherAccount {
        /// The caller's account.
        caller: String,
        /// The ARN named.
        arn: String,
    },
}

impl ArnError {
    /// SNS's code: `InvalidParameter`, or `AuthorizationError` for another account's.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "InvalidParameter",
            Self::OtherAccount { .. } => "AuthorizationError",
        }
    }
}

/// The parts of an SNS ARN: `arn:aws:sns:REGION:ACCOUNT:TOPIC[:SUBSCRIPTION]`.
struct Parts<'a> {
    account: &'a str,
    topic: &'a str,
    subscription: Option<&'a str>,
}

fn parts<'a>(field: &'static str, arn: &'a str) -> Result<Parts<'a>, ArnError> {
    let bad = |reason: &str| ArnError::Malformed {
        field,
        reason: reason.to_string(),
    };
    if arn.eq_ignore_ascii_case("pending confirmation") || arn == "PendingConfirmation" {
        return Err(bad(
            "the subscription is pending confirmation and has no ARN yet",
        ));
    }
    let mut it = arn.splitn(7, ':');
    let (Some("arn"), Some("aws"), Some("sns")) = (it.next(), it.next(), it.next()) else {
        return Err(bad(
            "An ARN must have the form arn:aws:sns:REGION:ACCOUNT:NAME",
        ));
    };
    let (Some(region), Some(account), Some(topic)) = (it.next(), it.next(), it.next()) else {
        return Err(bad(
            "An ARN must have the form arn:aws:sns:REGION:ACCOUNT:NAME",
        ));
    };
    if region != REGION {
        return Err(bad(&format!("An ARN's region must be {REGION}")));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("An ARN's account is 12 digits"));
    }
    if !well_formed_topic_name(topic) {
        return Err(bad("A topic name is 1 to 256 letters, digits, - and _"));
    }
    Ok(Parts {
        account,
        topic,
        subscription: it.next(),
    })
}

/// Checks that `arn` names a topic of `account` (not whether it exists).
pub fn check_topic_arn(field: &'static str, arn: &str, account: &str) -> Result<(), ArnError> {
    let p = parts(field, arn)?;
    if p.subscription.is_some() {
        return Err(ArnError::Malformed {
            field,
            reason: "a topic ARN has no part after the topic's name".into(),
        });
    }
    if p.account != account {
        return Err(ArnError::OtherAccount {
            caller: account.into(),
            arn: arn.into(),
        });
    }
    Ok(())
}

/// Checks that `arn` names a subscription of `account`; gives its topic's ARN.
pub fn check_subscription_arn(
    field: &'static str,
    arn: &str,
    account: &str,
) -> Result<String, ArnError> {
    let p = parts(field, arn)?;
    let Some(id) = p.subscription else {
        return Err(ArnError::Malformed {
            field,
            reason: "a subscription ARN is its topic's ARN, a colon and the subscription's id"
                .into(),
        });
    };
    if !(1..=64).contains(&id.len()) || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(ArnError::Malformed {
            field,
            reason: "a subscription's id is a UUID".into(),
        });
    }
    if p.account != account {
        return Err(ArnError::OtherAccount {
            caller: account.into(),
            arn: arn.into(),
        });
    }
    Ok(topic_arn(account, p.topic))
}

/// Why an endpoint does not fit its protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// A protocol this SNS does not deliver over.
    #[error(
        "Invalid parameter: Protocol Reason: {0} is not a protocol this endpoint delivers over (http, https, email, email-json)"
    )]
    Protocol(String),
    /// The endpoint is missing.
    #[error("Invalid parameter: Endpoint Reason: a {0} subscription needs an endpoint")]
    Missing(String),
    /// Not a URL of the protocol's scheme.
    #[error(
        "Invalid parameter: Endpoint Reason: {protocol} endpoint must be a URL starting with {protocol}://, with a host"
    )]
    Url {
        /// `http` or `https`.
        protocol: String,
    },
    /// Not an e-mail address.
    #[error("Invalid parameter: Email address")]
    Email,
}

/// The longest endpoint kept.
pub const MAX_ENDPOINT: usize = 2048;

/// Checks an endpoint against its protocol.
pub fn check_endpoint(protocol: &str, endpoint: Option<&str>) -> Result<String, EndpointError> {
    if !PROTOCOLS.contains(&protocol) {
        return Err(EndpointError::Protocol(protocol.chars().take(64).collect()));
    }
    let endpoint = endpoint
        .filter(|e| !e.is_empty())
        .ok_or_else(|| EndpointError::Missing(protocol.into()))?;
    match protocol {
        "http" | "https" => {
            let rest = endpoint
                .get(..protocol.len() + 3)
                .filter(|p| p.eq_ignore_ascii_case(&format!("{protocol}://")))
                .map(|p| &endpoint[p.len()..]);
            let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
            let fine = endpoint.len() <= MAX_ENDPOINT
                && host.is_some_and(|h| !h.is_empty() && !h.contains(['@', ' ']))
                && !endpoint.chars().any(|c| c.is_control() || c == ' ');
            if !fine {
                return Err(EndpointError::Url {
                    protocol: protocol.into(),
                });
            }
        }
        _ => {
            if !well_formed_email(endpoint) {
                return Err(EndpointError::Email);
            }
        }
    }
    Ok(endpoint.to_string())
}

/// Whether `s` looks like `local@domain.tld`: one `@`, no spaces or controls, a dot in the
/// domain, at most 254 characters.
pub fn well_formed_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && s.chars().all(|c| {
            c.is_ascii_graphic() && !matches!(c, '<' | '>' | '(' | ')' | ',' | ';' | '"' | '\\')
        })
}

/// Why tags are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// A key of the wrong length or reserved.
    #[error(
        "Invalid parameter: Tags Reason: tag keys are 1 to 128 characters and do not start with aws:, not {0:?}"
    )]
    Key(String),
    /// A value too long.
    #[error("Invalid parameter: Tags Reason: tag values are at most 256 characters")]
    Value,
    /// Too many on the resource.
    #[error("Could not complete request: tag quota of per resource exceeded ({MAX_TAGS} tags)")]
    TooMany,
}

impl TagError {
    /// SNS's code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooMany => "TagLimitExceeded",
            _ => "InvalidParameter",
        }
    }
}

/// Checks one tag.
pub fn check_tag(key: &str, value: &str) -> Result<(), TagError> {
    let chars = key.chars().count();
    if chars == 0 || chars > 128 || key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
        return Err(TagError::Key(key.chars().take(130).collect()));
    }
    if value.chars().count() > 256 {
        return Err(TagError::Value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "123456789012";

    #[test]
    fn topic_arns_of_this_region_and_account_pass_others_are_refused_with_sns_codes() {
        let arn = topic_arn(ACCOUNT, "alerts");
        assert_eq!(arn, "arn:aws:sns:local-1:123456789012:alerts");
        check_topic_arn("TopicArn", &arn, ACCOUNT).unwrap();
        for bad in [
            "",
            "alerts",
            "arn:aws:sqs:local-1:123456789012:alerts",
            "arn:aws:sns:us-east-1:123456789012:alerts",
            "arn:aws:sns:local-1:12345:alerts",
            "arn:aws:sns:local-1:123456789012:",
            "arn:aws:sns:local-1:123456789012:bad name",
            "arn:aws:sns:local-1:123456789012:alerts:0b9e",
        ] {
            let e = check_topic_arn("TopicArn", bad, ACCOUNT).unwrap_err();
            assert_eq!(e.code(), "InvalidParameter", "{bad}");
        }
        let other = "arn:aws:sns:local-1:210987654321:alerts";
        let e = check_topic_arn("TopicArn", other, ACCOUNT).unwrap_err();
        assert_eq!(e.code(), "AuthorizationError");
    }

    #[test]
    fn subscription_arns_give_their_topic_and_pending_ones_are_invalid() {
        let sub = format!(
            "{}:6f1c6b2a-0f4e-4a7e-9d0c-3b1a2c3d4e5f",
            topic_arn(ACCOUNT, "t")
        );
        assert_eq!(
            check_subscription_arn("SubscriptionArn", &sub, ACCOUNT).unwrap(),
            topic_arn(ACCOUNT, "t")
        );
        for bad in [
            "PendingConfirmation",
            "pending confirmation",
            "arn:aws:sns:local-1:123456789012:t",
            "arn:aws:sns:local-1:123456789012:t:not a uuid",
        ] {
            let e = check_subscription_arn("SubscriptionArn", bad, ACCOUNT).unwrap_err();
            assert_eq!(e.code(), "InvalidParameter", "{bad}");
        }
    }

    #[test]
    fn endpoints_must_fit_their_protocol() {
        assert!(check_endpoint("http", Some("http://127.0.0.1:9/hook")).is_ok());
        assert!(check_endpoint("https", Some("https://example.com")).is_ok());
        assert!(check_endpoint("email", Some("ops@example.com")).is_ok());
        assert!(check_endpoint("email-json", Some("ops@example.com")).is_ok());
        for (p, e) in [
            ("sqs", Some("arn:aws:sqs:local-1:123456789012:q")),
            ("HTTP", Some("http://x")),
            ("http", None),
            ("http", Some("https://example.com")),
            ("https", Some("http://example.com")),
            ("http", Some("http://")),
            ("http", Some("http://a b/")),
            ("email", Some("not-an-address")),
            ("email", Some("a@b")),
            ("email", Some("a@@b.c")),
        ] {
            assert!(check_endpoint(p, e).is_err(), "{p} {e:?}");
        }
    }

    #[test]
    fn tags_have_sns_bounds() {
        check_tag("team", "ops").unwrap();
        assert_eq!(check_tag("", "x").unwrap_err().code(), "InvalidParameter");
        assert_eq!(
            check_tag("aws:x", "x").unwrap_err().code(),
            "InvalidParameter"
        );
        assert_eq!(
            check_tag("k", &"v".repeat(257)).unwrap_err().code(),
            "InvalidParameter"
        );
    }
}
