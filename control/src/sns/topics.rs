//! Topics: CreateTopic (idempotent by name), DeleteTopic (idempotent), ListTopics (pages
//! of 100), GetTopicAttributes and SetTopicAttributes.

use std::collections::BTreeMap;

use rusqlite::Connection;
use state::sns::{self as db, TopicRow};

use super::checks::{self, ArnError, TagError};
use super::policy::{self, PolicyError};
use super::{Page, page_after, page_token};
use crate::Refusal;

/// The most topics the agent keeps.
pub const MAX_TOPICS: usize = 10_000;
/// Topics per ListTopics page.
pub const PAGE: usize = 100;
/// The longest `Policy` kept.
pub const MAX_POLICY: usize = 30 * 1024;

/// The attributes a caller may set on a topic.
pub const SETTABLE: &[&str] = &[
    "DisplayName",
    "Policy",
    "DeliveryPolicy",
    "SignatureVersion",
    "TracingConfig",
];

/// Why an attribute is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    /// Not one a topic has, or not settable.
    #[error(
        "Invalid parameter: AttributeName Reason: {0:?} is not an attribute a topic has (DisplayName, Policy, DeliveryPolicy, SignatureVersion, TracingConfig)"
    )]
    Name(String),
    /// A value of the wrong form.
    #[error("Invalid parameter: {0}")]
    Value(String),
    /// A delivery policy refused.
    #[error(transparent)]
    DeliveryPolicy(#[from] PolicyError),
}

/// Checks one topic attribute.
pub fn check_attribute(name: &str, value: &str) -> Result<(), AttributeError> {
    match name {
        "DisplayName" if value.chars().count() > 100 => Err(AttributeError::Value(
            "DisplayName Reason: at most 100 characters".into(),
        )),
        "DisplayName" => Ok(()),
        "Policy" => {
            let fine = value.len() <= MAX_POLICY
                && serde_json::from_str::<serde_json::Value>(value).is_ok_and(|v| v.is_object());
            if fine {
                Ok(())
            } else {
                Err(AttributeError::Value(
                    "Policy Reason: the policy is not a JSON object of at most 30 KiB".into(),
                ))
            }
        }
        "DeliveryPolicy" => policy::topic_policy(value).map(|_| ()).map_err(Into::into),
        "SignatureVersion" if value == "2" => Ok(()),
        "SignatureVersion" => Err(AttributeError::Value(
            "SignatureVersion Reason: this endpoint signs with SignatureVersion 2 (SHA256withRSA) only"
                .into(),
        )),
        "TracingConfig" if matches!(value, "PassThrough" | "Active") => Ok(()),
        "TracingConfig" => Err(AttributeError::Value(
            "TracingConfig Reason: PassThrough or Active".into(),
        )),
        other => Err(AttributeError::Name(other.chars().take(64).collect())),
    }
}

/// Why CreateTopic is refused.
#[derive(Debug, thiserror::Error)]
pub enum CreateTopicError {
    /// The name is not one a topic can have.
    #[error("Invalid parameter: Topic Name")]
    Name,
    /// A FIFO topic was asked for.
    #[error("Invalid parameter: FifoTopic Reason: this endpoint has standard topics only")]
    Fifo,
    /// An attribute refused.
    #[error(transparent)]
    Attribute(#[from] AttributeError),
    /// A tag refused.
    #[error(transparent)]
    Tag(#[from] TagError),
    /// The topic exists with other attributes.
    #[error("Invalid parameter: Attributes Reason: Topic already exists with different attributes")]
    Exists,
    /// As many topics as the agent keeps.
    #[error("Topic limit exceeded: the agent keeps at most {MAX_TOPICS} topics")]
    Limit,
    /// The database failed.
    #[error("cannot store the topic")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for CreateTopicError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::Name | Self::Fifo | Self::Attribute(_) | Self::Exists => "InvalidParameter",
            Self::Tag(e) => e.code(),
            Self::Limit => "TopicLimitExceeded",
            Self::Db(_) => return None,
        })
    }
}

/// Creates topic `name` (or gives the one of that name with the same attributes).
pub fn create_topic(
    conn: &Connection,
    account: &str,
    name: &str,
    attributes: &BTreeMap<String, String>,
    tags: &[(String, String)],
    now_ms: i64,
) -> Result<String, CreateTopicError> {
    if name.ends_with(".fifo") || attributes.get("FifoTopic").is_some_and(|v| v == "true") {
        return Err(CreateTopicError::Fifo);
    }
    if !checks::well_formed_topic_name(name) {
        return Err(CreateTopicError::Name);
    }
    let mut kept = BTreeMap::new();
    for (k, v) in attributes {
        if k == "FifoTopic" {
            continue;
        }
        check_attribute(k, v)?;
        kept.insert(k.clone(), v.clone());
    }
    if tags.len() > checks::MAX_TAGS {
        return Err(TagError::TooMany.into());
    }
    for (k, v) in tags {
        checks::check_tag(k, v)?;
    }
    let arn = checks::topic_arn(account, name);
    if let Some(existing) = db::topic_by_arn(conn, &arn)? {
        let same = kept
            .iter()
            .all(|(k, v)| existing.attributes.get(k) == Some(v));
        return if same {
            Ok(arn)
        } else {
            Err(CreateTopicError::Exists)
        };
    }
    if db::topic_count(conn)? >= MAX_TOPICS {
        return Err(CreateTopicError::Limit);
    }
    db::insert_topic(
        conn,
        &TopicRow {
            seq: 0,
            arn: arn.clone(),
            name: name.into(),
            attributes: kept,
            created_ms: now_ms,
        },
    )?;
    db::put_tags(conn, &arn, tags)?;
    Ok(arn)
}

/// Why a command naming a topic is refused: a bad ARN, no such topic, or the database.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The ARN is not a topic's of this account.
    #[error(transparent)]
    Arn(#[from] ArnError),
    /// No such topic.
    #[error("Topic does not exist")]
    NotFound,
    /// The database failed.
    #[error("cannot read the topic")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for TopicError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Arn(e) => Some(e.code()),
            Self::NotFound => Some("NotFound"),
            Self::Db(_) => None,
        }
    }
}

/// The topic `arn` names.
pub fn topic(conn: &Connection, account: &str, arn: &str) -> Result<TopicRow, TopicError> {
    checks::check_topic_arn("TopicArn", arn, account)?;
    db::topic_by_arn(conn, arn)?.ok_or(TopicError::NotFound)
}

/// Why DeleteTopic is refused.
#[derive(Debug, thiserror::Error)]
pub enum DeleteTopicError {
    /// The ARN is not a topic's of this account.
    #[error(transparent)]
    Arn(#[from] ArnError),
    /// The database failed.
    #[error("cannot delete the topic")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for DeleteTopicError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Arn(e) => Some(e.code()),
            Self::Db(_) => None,
        }
    }
}

/// Deletes a topic, its subscriptions and their pending deliveries; a topic that does not
/// exist is no error (SNS's DeleteTopic is idempotent).
pub fn delete_topic(conn: &Connection, account: &str, arn: &str) -> Result<(), DeleteTopicError> {
    checks::check_topic_arn("TopicArn", arn, account)?;
    db::delete_topic(conn, arn)?;
    Ok(())
}

/// Why ListTopics is refused.
#[derive(Debug, thiserror::Error)]
pub enum ListTopicsError {
    /// The token did not come from a page.
    #[error("Invalid parameter: NextToken")]
    Token,
    /// The database failed.
    #[error("cannot list the topics")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for ListTopicsError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Token => Some("InvalidParameter"),
            Self::Db(_) => None,
        }
    }
}

/// A page of topic ARNs after `next_token`.
pub fn list_topics(conn: &Connection, next_token: Option<&str>) -> Result<Page, ListTopicsError> {
    let after = page_after(next_token).ok_or(ListTopicsError::Token)?;
    let rows = db::topics_page(conn, after, PAGE + 1)?;
    let next = (rows.len() > PAGE).then(|| page_token(rows[PAGE - 1].seq));
    Ok(Page {
        items: rows.into_iter().take(PAGE).map(|t| t.arn).collect(),
        next_token: next,
    })
}

/// Why GetTopicAttributes is refused.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct GetTopicAttributesError(#[from] pub TopicError);

impl Refusal for GetTopicAttributesError {
    fn code(&self) -> Option<&'static str> {
        self.0.code()
    }
}

/// The default access policy of a topic: its owner may do everything.
pub fn default_policy(account: &str, arn: &str) -> String {
    serde_json::json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": [
                "SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission",
                "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe",
                "SNS:ListSubscriptionsByTopic", "SNS:Publish"
            ],
            "Resource": arn,
            "Condition": {"StringEquals": {"AWS:SourceOwner": account}}
        }]
    })
    .to_string()
}

/// A topic's attributes as GetTopicAttributes shows them.
pub fn get_topic_attributes(
    conn: &Connection,
    account: &str,
    arn: &str,
) -> Result<BTreeMap<String, String>, GetTopicAttributesError> {
    let t = topic(conn, account, arn)?;
    let (confirmed, pending) = db::subscription_counts(conn, arn).map_err(TopicError::from)?;
    let mut a = BTreeMap::from([
        ("TopicArn".to_string(), t.arn.clone()),
        ("Owner".to_string(), account.to_string()),
        ("Policy".to_string(), default_policy(account, arn)),
        ("DisplayName".to_string(), String::new()),
        ("SubscriptionsConfirmed".to_string(), confirmed.to_string()),
        ("SubscriptionsPending".to_string(), pending.to_string()),
        ("SubscriptionsDeleted".to_string(), "0".to_string()),
        ("SignatureVersion".to_string(), "2".to_string()),
        ("TracingConfig".to_string(), "PassThrough".to_string()),
    ]);
    let retry = policy::effective(
        "http",
        t.attributes.get("DeliveryPolicy").map(String::as_str),
        None,
    );
    a.insert(
        "EffectiveDeliveryPolicy".into(),
        policy::effective_text(&retry),
    );
    a.extend(t.attributes);
    Ok(a)
}

/// Why SetTopicAttributes is refused.
#[derive(Debug, thiserror::Error)]
pub enum SetTopicAttributesError {
    /// The topic.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// The attribute.
    #[error(transparent)]
    Attribute(#[from] AttributeError),
    /// The database failed.
    #[error("cannot store the attribute")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for SetTopicAttributesError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Topic(e) => e.code(),
            Self::Attribute(_) => Some("InvalidParameter"),
            Self::Db(_) => None,
        }
    }
}

/// Sets (or, with no value, clears) one attribute of a topic.
pub fn set_topic_attribute(
    conn: &Connection,
    account: &str,
    arn: &str,
    name: &str,
    value: Option<&str>,
) -> Result<(), SetTopicAttributesError> {
    let t = topic(conn, account, arn)?;
    let mut attributes = t.attributes;
    match value.filter(|v| !v.is_empty()) {
        Some(v) => {
            check_attribute(name, v)?;
            attributes.insert(name.to_string(), v.to_string());
        }
        None => {
            if !SETTABLE.contains(&name) {
                return Err(AttributeError::Name(name.chars().take(64).collect()).into());
            }
            attributes.remove(name);
        }
    }
    db::set_topic_attributes(conn, arn, &attributes)?;
    Ok(())
}
