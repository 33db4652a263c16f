//! SNS over awsQuery: topics (`topics.rs`), subscriptions (`subscriptions.rs`), Publish and
//! tags (`messages.rs`). Each handler turns the operation's typed input into a command of
//! `control::sns`, run in one transaction of the plane's database, and its result into the
//! typed output; a refusal is answered with SNS's code and the HTTP status its model gives
//! that code (404 for `NotFound`, 403 for `AuthorizationError`).

mod messages;
mod subscriptions;
mod topics;

use serde_json::Value;

use super::errors::ApiError;
use super::operation::not_served;
use super::{Call, Reply};

/// Runs one SNS operation.
pub fn dispatch(operation: &str, c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    match operation {
        "CreateTopic" => topics::create_topic(c, value),
        "DeleteTopic" => topics::delete_topic(c, value),
        "ListTopics" => topics::list_topics(c, value),
        "GetTopicAttributes" => topics::get_topic_attributes(c, value),
        "SetTopicAttributes" => topics::set_topic_attributes(c, value),
        "Subscribe" => subscriptions::subscribe(c, value),
        "ConfirmSubscription" => subscriptions::confirm_subscription(c, value),
        "Unsubscribe" => subscriptions::unsubscribe(c, value),
        "ListSubscriptions" => subscriptions::list_subscriptions(c, value),
        "ListSubscriptionsByTopic" => subscriptions::list_subscriptions_by_topic(c, value),
        "GetSubscriptionAttributes" => subscriptions::get_subscription_attributes(c, value),
        "SetSubscriptionAttributes" => subscriptions::set_subscription_attributes(c, value),
        "Publish" => messages::publish(c, value),
        "TagResource" => messages::tag_resource(c, value),
        "UntagResource" => messages::untag_resource(c, value),
        "ListTagsForResource" => messages::list_tags_for_resource(c, value),
        other => Err(not_served(other)),
    }
}

/// A command's refusal with SNS's code and the status the model gives it; a failure of the
/// agent's is SNS's `InternalError` (HTTP 500), the cause logged.
fn refused<E: control::Refusal>(e: &E) -> ApiError {
    let error = ApiError::refused(e);
    let status = crate::models::registry()
        .by_signing_name("sns")
        .and_then(|m| m.error_shape(&error.code))
        .and_then(|(_, s)| s.error.as_ref()?.http_status_code);
    match status {
        Some(s) if error.status < 500 => error.with_status(s),
        _ => error,
    }
}

/// The request's tags as pairs.
fn pairs(tags: Vec<shapes::sns::Tag>) -> Vec<(String, String)> {
    tags.into_iter().map(|t| (t.key, t.value)).collect()
}
