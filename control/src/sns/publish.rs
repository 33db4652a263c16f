//! Publish: the message checked (size, subject, `MessageStructure=json`, attributes), then
//! one delivery per confirmed subscription whose filter policy the attributes pass put in
//! the outbox in the same transaction, each
//! with its protocol's message, its raw flag and its retry policy. The delivery loop
//! (`delivery.rs`) takes them from there.

use rusqlite::Connection;
use state::sns::outbox::{self, DeliveryRow};
use state::sns::{self as db};

use super::filter_policy;
use super::message::{self, AttributeError, MessageAttribute, StructureError};
use super::policy;
use super::topics::{TopicError, topic};
use super::{iso_ms, new_uuid};
use crate::Refusal;

/// The largest message, attributes included (256 KiB).
pub const MAX_MESSAGE: usize = 262_144;
/// The longest subject.
pub const MAX_SUBJECT: usize = 100;

/// A message to publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishRequest {
    /// The topic.
    pub topic_arn: Option<String>,
    /// The topic, under its other name (a topic's ARN is the only target here).
    pub target_arn: Option<String>,
    /// An SMS number (refused: no SMS here).
    pub phone_number: Option<String>,
    /// The subject (mails' subject, `Subject` in the JSON).
    pub subject: Option<String>,
    /// The message, or with `MessageStructure=json` a JSON object of one per protocol.
    pub message: String,
    /// `json`, or none.
    pub message_structure: Option<String>,
    /// Message attributes.
    pub attributes: Vec<MessageAttribute>,
    /// A FIFO topic's group (refused: standard topics only).
    pub message_group_id: Option<String>,
    /// A FIFO topic's deduplication id (refused: standard topics only).
    pub message_deduplication_id: Option<String>,
}

/// Why Publish is refused.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No topic named, or two.
    #[error("Invalid parameter: TopicArn or TargetArn Reason: exactly one of them must be given")]
    Target,
    /// An SMS was asked for.
    #[error("Invalid parameter: PhoneNumber Reason: this endpoint does not send SMS")]
    Sms,
    /// The topic.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// The message is empty.
    #[error("Invalid parameter: Empty message")]
    Empty,
    /// The message is too long.
    #[error("Invalid parameter: Message too long")]
    TooLong,
    /// The subject has other characters or lengths.
    #[error("Invalid parameter: Subject")]
    Subject,
    /// `MessageStructure` other than `json`.
    #[error("Invalid parameter: MessageStructure Reason: the only structure is json")]
    StructureName,
    /// The JSON of a structured message.
    #[error(transparent)]
    Structure(#[from] StructureError),
    /// The message attributes.
    #[error(transparent)]
    Attributes(#[from] AttributeError),
    /// FIFO parameters on a standard topic.
    #[error(
        "Invalid parameter: The request includes MessageGroupId or MessageDeduplicationId parameter that is not valid for this topic type"
    )]
    Fifo,
    /// The database failed.
    #[error("cannot store the message's deliveries")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for PublishError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::Topic(e) => return e.code(),
            Self::Attributes(_) => "ParameterValueInvalid",
            Self::Db(_) => return None,
            _ => "InvalidParameter",
        })
    }
}

/// Whether `s` is a subject SNS takes: 1 to 100 printable ASCII characters, no line breaks,
/// starting with a letter, digit or punctuation.
pub fn well_formed_subject(s: &str) -> bool {
    (1..=MAX_SUBJECT).contains(&s.len())
        && s.bytes().all(|b| (0x20..0x7f).contains(&b))
        && s.bytes().next().is_some_and(|b| b.is_ascii_graphic())
}

/// Checks `req` and puts one delivery per confirmed subscription of its topic in the outbox;
/// gives the message's id and how many deliveries it made.
pub fn publish_message(
    conn: &Connection,
    account: &str,
    req: &PublishRequest,
    now_ms: i64,
) -> Result<(String, usize), PublishError> {
    if req.phone_number.is_some() {
        return Err(PublishError::Sms);
    }
    let arn = match (&req.topic_arn, &req.target_arn) {
        (Some(a), None) | (None, Some(a)) => a,
        _ => return Err(PublishError::Target),
    };
    let t = topic(conn, account, arn)?;
    if req.message_group_id.is_some() || req.message_deduplication_id.is_some() {
        return Err(PublishError::Fifo);
    }
    if req.message.is_empty() {
        return Err(PublishError::Empty);
    }
    let attributes = message::attributes_json(&req.attributes)?;
    let attributes_size: usize = req
        .attributes
        .iter()
        .map(|a| {
            a.name.len()
                + a.data_type.len()
                + a.string_value.as_ref().map_or(0, String::len)
                + a.binary_base64.as_ref().map_or(0, |b| b.len() * 3 / 4)
        })
        .sum();
    if req.message.len() + attributes_size > MAX_MESSAGE {
        return Err(PublishError::TooLong);
    }
    if let Some(s) = &req.subject
        && !well_formed_subject(s)
    {
        return Err(PublishError::Subject);
    }
    let per_protocol = match req.message_structure.as_deref() {
        None => None,
        Some("json") => Some(message::structured(&req.message)?),
        Some(_) => return Err(PublishError::StructureName),
    };
    let message_id = new_uuid();
    let timestamp = iso_ms(now_ms);
    let topic_policy = t.attributes.get("DeliveryPolicy").map(String::as_str);
    let subscriptions = db::confirmed_subscriptions(conn, arn)?;
    let mut made = 0;
    for s in &subscriptions {
        // Kept policies were checked when set; one that no longer reads lets all through.
        let filtered_out = s
            .attributes
            .get("FilterPolicy")
            .and_then(|p| filter_policy::parse(p).ok())
            .is_some_and(|p| !p.matches(&req.attributes));
        if filtered_out {
            continue;
        }
        made += 1;
        let text = match &per_protocol {
            None => req.message.clone(),
            Some(m) => m
                .get(&s.protocol)
                .or_else(|| m.get("default"))
                .cloned()
                .unwrap_or_default(),
        };
        let retry = policy::effective(
            &s.protocol,
            topic_policy,
            s.attributes.get("DeliveryPolicy").map(String::as_str),
        );
        outbox::insert(
            conn,
            &DeliveryRow {
                seq: 0,
                kind: "Notification".into(),
                message_id: message_id.clone(),
                topic_arn: arn.clone(),
                subscription_arn: s.arn.clone(),
                protocol: s.protocol.clone(),
                endpoint: s.endpoint.clone(),
                origin: super::delivery::origin(&s.protocol, &s.endpoint),
                subject: req.subject.clone(),
                message: text,
                token: None,
                raw: s
                    .attributes
                    .get("RawMessageDelivery")
                    .is_some_and(|v| v == "true"),
                message_attributes: attributes.clone(),
                timestamp: timestamp.clone(),
                retry_policy: serde_json::to_string(&retry).unwrap_or_default(),
                attempts: 0,
                next_attempt_ms: now_ms,
            },
        )?;
    }
    Ok((message_id, made))
}
