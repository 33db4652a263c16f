//! SNS's domain: topics, subscriptions, tags, publishing and the deliveries, over the state
//! database (`state::sns`). One file per concern:
//!
//! - `checks.rs`: topic names, topic and subscription ARNs, protocols and endpoints, tags;
//! - `topics.rs`, `subscriptions.rs`, `tags.rs`: the commands, each a plain function over a
//!   connection (the unit tests drive them with a database alone) with its error enum whose
//!   [`crate::Refusal::code`] is SNS's code (`InvalidParameter`, `NotFound`,
//!   `AuthorizationError`, `ParameterValueInvalid`, `ResourceNotFound`, `TagLimitExceeded`,
//!   `TopicLimitExceeded`, `SubscriptionLimitExceeded`);
//! - `publish.rs`: Publish, which puts one delivery per confirmed subscription in the
//!   outbox in the transaction that accepts the message;
//! - `message.rs`: what goes out (SNS's JSON, its signature text, mails, raw delivery) and
//!   the caller-facing parts of a message (`MessageStructure=json`, attributes);
//! - `policy.rs`: delivery (retry) policies;
//! - `filter_policy.rs`: subscriptions' filter policies on message attributes;
//! - `delivery.rs`: the loop that makes the deliveries.
//!
//! [`publish`] is what the rest of the agent calls to notify a topic (CloudWatch alarms'
//! SNS actions).

pub mod checks;
pub mod delivery;
pub mod filter_policy;
#[cfg(test)]
mod fuzz;
pub mod message;
pub mod policy;
pub mod publish;
pub mod subscriptions;
pub mod tags;
#[cfg(test)]
mod tests;
pub mod topics;

use crate::Plane;

pub use message::CERT_PATH;
pub use publish::{PublishError, PublishRequest};

/// Wakes the delivery loop when a delivery is put in the outbox.
#[derive(Debug, Default)]
pub struct Notifier(tokio::sync::Notify);

impl Notifier {
    /// Tells the loop there is work (kept until it next waits, if it is busy).
    pub fn wake(&self) {
        self.0.notify_one();
    }

    /// Waits to be woken.
    pub async fn notified(&self) {
        self.0.notified().await;
    }
}

/// A page of ARNs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The ARNs.
    pub items: Vec<String>,
    /// Where the next page starts, when there is one.
    pub next_token: Option<String>,
}

/// The `seq` a page token says to start after (0 without one); `None` for a token no page
/// gave.
fn page_after(token: Option<&str>) -> Option<i64> {
    match token {
        None | Some("") => Some(0),
        Some(t) => t
            .strip_prefix("sns1-")
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n >= 0),
    }
}

fn page_token(seq: i64) -> String {
    format!("sns1-{seq}")
}

/// A random UUID (version 4), as SNS's message and subscription ids are.
pub fn new_uuid() -> String {
    use rand::Rng;
    let mut b: [u8; 16] = rand::thread_rng().r#gen();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A time in milliseconds since the epoch as SNS writes it (`2026-12-07T01:02:03.456Z`).
pub fn iso_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Publishes `message` (with an optional `subject`) to the topic `topic_arn`, as SNS's
/// Publish does, and gives the message's id. Every confirmed subscription of the topic gets
/// it through the delivery loop, with retries; this returns once the deliveries are stored,
/// not made. For the agent's own notifications, such as CloudWatch alarms' SNS actions.
///
/// It takes the state database's lock for one short transaction (a few inserts), so call it
/// from blocking code (`spawn_blocking`, `block_in_place`), as the API's handlers do.
pub fn publish(
    plane: &Plane,
    topic_arn: &str,
    subject: Option<&str>,
    message: &str,
) -> Result<String, PublishError> {
    publish_request(
        plane,
        &PublishRequest {
            topic_arn: Some(topic_arn.to_string()),
            subject: subject.map(str::to_string),
            message: message.to_string(),
            ..Default::default()
        },
    )
}

/// Publishes a full request (Publish's API handler); gives the message's id.
pub fn publish_request(plane: &Plane, req: &PublishRequest) -> Result<String, PublishError> {
    let (id, deliveries) =
        plane.sns_write(|tx| publish::publish_message(tx, &plane.account_id, req, now_ms()))?;
    if deliveries > 0 {
        plane.sns.wake();
    }
    Ok(id)
}

impl Plane {
    /// Runs an SNS command in one transaction: all it wrote, or nothing when it fails.
    pub fn sns_write<T, E: From<rusqlite::Error>>(
        &self,
        body: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.db.lock();
        let tx = conn.transaction()?;
        let value = body(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Subscribe, the confirmation sent on.
    pub fn sns_subscribe(
        &self,
        topic_arn: &str,
        protocol: &str,
        endpoint: Option<&str>,
        attributes: &std::collections::BTreeMap<String, String>,
    ) -> Result<subscriptions::Subscribed, subscriptions::SubscribeError> {
        let done = self.sns_write(|tx| {
            subscriptions::subscribe(
                tx,
                &self.account_id,
                topic_arn,
                protocol,
                endpoint,
                attributes,
                now_ms(),
            )
        })?;
        if !done.confirmed {
            self.sns.wake();
        }
        Ok(done)
    }
}
