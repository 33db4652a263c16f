//! Subscriptions: Subscribe (a confirmation sent to the endpoint; the same subscription
//! given again for the same endpoint), ConfirmSubscription (by the token sent), Unsubscribe
//! (idempotent), ListSubscriptions and ListSubscriptionsByTopic (pages of 100, a pending
//! one's ARN shown as `PendingConfirmation`), GetSubscriptionAttributes and
//! SetSubscriptionAttributes.

use std::collections::BTreeMap;

use rusqlite::Connection;
use state::sns::outbox::{self, DeliveryRow};
use state::sns::{self as db, SubscriptionRow};

use super::checks::{self, ArnError, EndpointError};
use super::filter_policy::{self, FilterPolicyError};
use super::message::confirmation_text;
use super::policy::{self, PolicyError};
use super::topics::{TopicError, topic};
use super::{iso_ms, new_uuid, page_after, page_token};
use crate::Refusal;

/// The most subscriptions one topic has.
pub const MAX_PER_TOPIC: usize = 10_000;
/// Subscriptions per page.
pub const PAGE: usize = 100;
/// What Subscribe answers for a subscription still to be confirmed.
pub const PENDING: &str = "pending confirmation";
/// The ARN a listing shows for a subscription still to be confirmed.
pub const PENDING_LISTED: &str = "PendingConfirmation";

/// Why a subscription attribute is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    /// Not one this endpoint takes.
    #[error(
        "Invalid parameter: AttributeName Reason: {0:?} is not an attribute this endpoint sets on a subscription (RawMessageDelivery, DeliveryPolicy, FilterPolicy, FilterPolicyScope); redrive policies are not supported"
    )]
    Name(String),
    /// A filter policy refused.
    #[error(transparent)]
    FilterPolicy(#[from] FilterPolicyError),
    /// A scope other than message attributes.
    #[error(
        "Invalid parameter: Attributes Reason: FilterPolicyScope: this endpoint filters on MessageAttributes only, not {0:?}"
    )]
    FilterPolicyScope(String),
    /// `RawMessageDelivery` other than true or false.
    #[error(
        "Invalid parameter: Attributes Reason: RawMessageDelivery: Invalid value [{0}]. Must be true or false."
    )]
    Raw(String),
    /// Raw delivery asked of a protocol without it.
    #[error(
        "Invalid parameter: Attributes Reason: Delivery protocol [{0}] does not support raw message delivery."
    )]
    RawProtocol(String),
    /// A delivery policy refused.
    #[error(transparent)]
    DeliveryPolicy(#[from] PolicyError),
}

/// Checks one attribute of a subscription over `protocol`: raw delivery is for HTTP(S).
fn check_attribute_for(protocol: &str, name: &str, value: &str) -> Result<(), AttributeError> {
    check_attribute(name, value)?;
    if name == "RawMessageDelivery"
        && value.eq_ignore_ascii_case("true")
        && !protocol.starts_with("http")
    {
        return Err(AttributeError::RawProtocol(protocol.to_string()));
    }
    Ok(())
}

/// Checks one subscription attribute.
pub fn check_attribute(name: &str, value: &str) -> Result<(), AttributeError> {
    match name {
        "RawMessageDelivery"
            if value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false") =>
        {
            Ok(())
        }
        "RawMessageDelivery" => Err(AttributeError::Raw(value.chars().take(64).collect())),
        "DeliveryPolicy" => policy::subscription_policy(value)
            .map(|_| ())
            .map_err(Into::into),
        "FilterPolicy" => filter_policy::parse(value).map(|_| ()).map_err(Into::into),
        "FilterPolicyScope" if value == "MessageAttributes" => Ok(()),
        "FilterPolicyScope" => Err(AttributeError::FilterPolicyScope(
            value.chars().take(64).collect(),
        )),
        other => Err(AttributeError::Name(other.chars().take(64).collect())),
    }
}

/// Normalizes a checked attribute's value (`RawMessageDelivery` in lower case).
fn normal(name: &str, value: &str) -> String {
    if name == "RawMessageDelivery" {
        value.to_ascii_lowercase()
    } else {
        value.to_string()
    }
}

/// Why Subscribe is refused.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// The topic.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// The protocol or endpoint.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// An attribute.
    #[error(transparent)]
    Attribute(#[from] AttributeError),
    /// The subscription exists with other attributes.
    #[error(
        "Invalid parameter: Attributes Reason: Subscription already exists with different attributes"
    )]
    Exists,
    /// The topic has as many subscriptions as it may.
    #[error("Subscription limit exceeded: a topic has at most {MAX_PER_TOPIC} subscriptions here")]
    Limit,
    /// The database failed.
    #[error("cannot store the subscription")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for SubscribeError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::Topic(e) => return e.code(),
            Self::Endpoint(_) | Self::Attribute(_) | Self::Exists => "InvalidParameter",
            Self::Limit => "SubscriptionLimitExceeded",
            Self::Db(_) => return None,
        })
    }
}

/// What Subscribe made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribed {
    /// The subscription's ARN.
    pub arn: String,
    /// Whether it is confirmed already.
    pub confirmed: bool,
}

/// A confirmation for `s`, in the outbox.
fn send_confirmation(conn: &Connection, s: &SubscriptionRow, now_ms: i64) -> rusqlite::Result<()> {
    outbox::insert(
        conn,
        &DeliveryRow {
            seq: 0,
            kind: "SubscriptionConfirmation".into(),
            message_id: new_uuid(),
            topic_arn: s.topic_arn.clone(),
            subscription_arn: s.arn.clone(),
            protocol: s.protocol.clone(),
            endpoint: s.endpoint.clone(),
            origin: super::delivery::origin(&s.protocol, &s.endpoint),
            subject: None,
            message: confirmation_text(&s.topic_arn),
            token: Some(s.token.clone()),
            raw: false,
            message_attributes: "{}".into(),
            timestamp: iso_ms(now_ms),
            retry_policy: serde_json::to_string(&policy::RetryPolicy::default())
                .unwrap_or_default(),
            attempts: 0,
            next_attempt_ms: now_ms,
        },
    )?;
    Ok(())
}

/// Subscribes `endpoint` to a topic over `protocol`; the endpoint is sent a confirmation
/// (again, when it is subscribed and not yet confirmed).
pub fn subscribe(
    conn: &Connection,
    account: &str,
    topic_arn: &str,
    protocol: &str,
    endpoint: Option<&str>,
    attributes: &BTreeMap<String, String>,
    now_ms: i64,
) -> Result<Subscribed, SubscribeError> {
    topic(conn, account, topic_arn)?;
    let endpoint = checks::check_endpoint(protocol, endpoint)?;
    let mut kept = BTreeMap::new();
    for (k, v) in attributes {
        check_attribute_for(protocol, k, v)?;
        kept.insert(k.clone(), normal(k, v));
    }
    if let Some(existing) = db::subscription_to(conn, topic_arn, protocol, &endpoint)? {
        if kept
            .iter()
            .any(|(k, v)| existing.attributes.get(k) != Some(v))
        {
            return Err(SubscribeError::Exists);
        }
        if !existing.confirmed {
            send_confirmation(conn, &existing, now_ms)?;
        }
        return Ok(Subscribed {
            arn: existing.arn,
            confirmed: existing.confirmed,
        });
    }
    let (confirmed, pending) = db::subscription_counts(conn, topic_arn)?;
    if (confirmed + pending) as usize >= MAX_PER_TOPIC {
        return Err(SubscribeError::Limit);
    }
    let token = {
        use rand::Rng;
        let mut bytes = [0u8; 64];
        rand::thread_rng().fill(&mut bytes[..]);
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let row = db::insert_subscription(
        conn,
        &SubscriptionRow {
            seq: 0,
            arn: format!("{topic_arn}:{}", new_uuid()),
            topic_arn: topic_arn.into(),
            protocol: protocol.into(),
            endpoint,
            token,
            confirmed: false,
            attributes: kept,
            created_ms: now_ms,
        },
    )?;
    send_confirmation(conn, &row, now_ms)?;
    Ok(Subscribed {
        arn: row.arn,
        confirmed: false,
    })
}

/// Why ConfirmSubscription is refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmSubscriptionError {
    /// The topic.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// No subscription of the topic was sent this token.
    #[error("Invalid parameter: Token")]
    Token,
    /// The database failed.
    #[error("cannot confirm the subscription")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for ConfirmSubscriptionError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Topic(e) => e.code(),
            Self::Token => Some("InvalidParameter"),
            Self::Db(_) => None,
        }
    }
}

/// Confirms the subscription of a topic that was sent `token`; gives its ARN (confirming
/// twice gives it again).
pub fn confirm_subscription(
    conn: &Connection,
    account: &str,
    topic_arn: &str,
    token: &str,
) -> Result<String, ConfirmSubscriptionError> {
    topic(conn, account, topic_arn)?;
    let s = db::subscription_by_token(conn, topic_arn, token)?
        .ok_or(ConfirmSubscriptionError::Token)?;
    db::confirm_subscription(conn, &s.arn)?;
    Ok(s.arn)
}

/// Why a command naming a subscription is refused.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// The ARN is not a subscription's of this account.
    #[error(transparent)]
    Arn(#[from] ArnError),
    /// No such subscription.
    #[error("Subscription does not exist")]
    NotFound,
    /// The database failed.
    #[error("cannot read the subscription")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for SubscriptionError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Arn(e) => Some(e.code()),
            Self::NotFound => Some("NotFound"),
            Self::Db(_) => None,
        }
    }
}

/// The subscription `arn` names.
pub fn subscription(
    conn: &Connection,
    account: &str,
    arn: &str,
) -> Result<SubscriptionRow, SubscriptionError> {
    checks::check_subscription_arn("SubscriptionArn", arn, account)?;
    db::subscription_by_arn(conn, arn)?.ok_or(SubscriptionError::NotFound)
}

/// Why Unsubscribe is refused.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct UnsubscribeError(#[from] pub SubscriptionError);

impl From<rusqlite::Error> for UnsubscribeError {
    fn from(e: rusqlite::Error) -> Self {
        Self(e.into())
    }
}

impl Refusal for UnsubscribeError {
    fn code(&self) -> Option<&'static str> {
        self.0.code()
    }
}

/// Ends a subscription and drops its pending deliveries; one that does not exist is no
/// error.
pub fn unsubscribe(conn: &Connection, account: &str, arn: &str) -> Result<(), UnsubscribeError> {
    checks::check_subscription_arn("SubscriptionArn", arn, account)
        .map_err(SubscriptionError::from)?;
    db::delete_subscription(conn, arn).map_err(SubscriptionError::from)?;
    Ok(())
}

/// Why ListSubscriptions or ListSubscriptionsByTopic is refused.
#[derive(Debug, thiserror::Error)]
pub enum ListSubscriptionsError {
    /// The topic (ListSubscriptionsByTopic).
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// The token did not come from a page.
    #[error("Invalid parameter: NextToken")]
    Token,
    /// The database failed.
    #[error("cannot list the subscriptions")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for ListSubscriptionsError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Topic(e) => e.code(),
            Self::Token => Some("InvalidParameter"),
            Self::Db(_) => None,
        }
    }
}

/// A page of subscriptions, of one topic or of all.
pub fn list_subscriptions(
    conn: &Connection,
    account: &str,
    topic_arn: Option<&str>,
    next_token: Option<&str>,
) -> Result<(Vec<SubscriptionRow>, Option<String>), ListSubscriptionsError> {
    if let Some(t) = topic_arn {
        topic(conn, account, t)?;
    }
    let after = page_after(next_token).ok_or(ListSubscriptionsError::Token)?;
    let mut rows = db::subscriptions_page(conn, topic_arn, after, PAGE + 1)?;
    let next = (rows.len() > PAGE).then(|| page_token(rows[PAGE - 1].seq));
    rows.truncate(PAGE);
    Ok((rows, next))
}

/// A subscription's ARN as a listing shows it.
pub fn listed_arn(s: &SubscriptionRow) -> &str {
    if s.confirmed { &s.arn } else { PENDING_LISTED }
}

/// Why GetSubscriptionAttributes is refused.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct GetSubscriptionAttributesError(#[from] pub SubscriptionError);

impl Refusal for GetSubscriptionAttributesError {
    fn code(&self) -> Option<&'static str> {
        self.0.code()
    }
}

/// A subscription's attributes as GetSubscriptionAttributes shows them.
pub fn get_subscription_attributes(
    conn: &Connection,
    account: &str,
    arn: &str,
) -> Result<BTreeMap<String, String>, GetSubscriptionAttributesError> {
    let s = subscription(conn, account, arn)?;
    let topic_policy = db::topic_by_arn(conn, &s.topic_arn)
        .map_err(SubscriptionError::from)?
        .and_then(|t| t.attributes.get("DeliveryPolicy").cloned());
    let mut a = BTreeMap::from([
        ("SubscriptionArn".to_string(), s.arn.clone()),
        ("TopicArn".to_string(), s.topic_arn.clone()),
        ("Owner".to_string(), account.to_string()),
        ("Protocol".to_string(), s.protocol.clone()),
        ("Endpoint".to_string(), s.endpoint.clone()),
        (
            "PendingConfirmation".to_string(),
            (!s.confirmed).to_string(),
        ),
        ("RawMessageDelivery".to_string(), "false".to_string()),
        (
            "SubscriptionPrincipal".to_string(),
            format!("arn:aws:iam::{account}:root"),
        ),
    ]);
    if s.protocol.starts_with("http") {
        let retry = policy::effective(
            &s.protocol,
            topic_policy.as_deref(),
            s.attributes.get("DeliveryPolicy").map(String::as_str),
        );
        a.insert(
            "EffectiveDeliveryPolicy".into(),
            policy::effective_text(&retry),
        );
    }
    if s.attributes.contains_key("FilterPolicy") {
        a.insert("FilterPolicyScope".into(), "MessageAttributes".into());
    }
    a.extend(s.attributes);
    Ok(a)
}

/// Why SetSubscriptionAttributes is refused.
#[derive(Debug, thiserror::Error)]
pub enum SetSubscriptionAttributesError {
    /// The subscription.
    #[error(transparent)]
    Subscription(#[from] SubscriptionError),
    /// The attribute.
    #[error(transparent)]
    Attribute(#[from] AttributeError),
    /// The database failed.
    #[error("cannot store the attribute")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for SetSubscriptionAttributesError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Subscription(e) => e.code(),
            Self::Attribute(_) => Some("InvalidParameter"),
            Self::Db(_) => None,
        }
    }
}

/// Sets (or, with no value, clears) one attribute of a subscription.
pub fn set_subscription_attribute(
    conn: &Connection,
    account: &str,
    arn: &str,
    name: &str,
    value: Option<&str>,
) -> Result<(), SetSubscriptionAttributesError> {
    let s = subscription(conn, account, arn)?;
    let mut attributes = s.attributes;
    match value.filter(|v| !v.is_empty()) {
        Some(v) => {
            check_attribute_for(&s.protocol, name, v)?;
            attributes.insert(name.to_string(), normal(name, v));
        }
        None => {
            check_attribute(name, "false").or_else(|e| match e {
                AttributeError::Name(_) => Err(e),
                _ => Ok(()),
            })?;
            attributes.remove(name);
        }
    }
    db::set_subscription_attributes(conn, arn, &attributes)?;
    Ok(())
}
