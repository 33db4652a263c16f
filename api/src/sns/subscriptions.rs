//! Subscribe, ConfirmSubscription, Unsubscribe, ListSubscriptions,
//! ListSubscriptionsByTopic, GetSubscriptionAttributes and SetSubscriptionAttributes as
//! `control::sns::subscriptions`' commands.

use control::sns::subscriptions::{self, PENDING};
use serde_json::Value;
use shapes::sns::{
    ConfirmSubscriptionResponse, GetSubscriptionAttributesResponse,
    ListSubscriptionsByTopicResponse, ListSubscriptionsResponse, SubscribeResponse, Subscription,
    ops,
};
use state::sns::SubscriptionRow;

use super::refused;
use crate::errors::ApiError;
use crate::operation::{input, output};
use crate::{Call, Reply};

/// Subscribe: a subscription still to be confirmed is answered `pending confirmation`,
/// unless the caller asked for its ARN (`ReturnSubscriptionArn`).
pub(super) fn subscribe(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::Subscribe>(value)?;
    let done =
        c.st.plane
            .sns_subscribe(
                &r.topic_arn,
                &r.protocol,
                r.endpoint.as_deref(),
                &r.attributes.unwrap_or_default(),
            )
            .map_err(|e| refused(&e))?;
    let arn = if done.confirmed || r.return_subscription_arn == Some(true) {
        done.arn
    } else {
        PENDING.to_string()
    };
    output::<ops::Subscribe>(SubscribeResponse {
        subscription_arn: Some(arn),
    })
}

/// ConfirmSubscription (also reached unsigned, from a SubscribeURL: see the front).
pub(super) fn confirm_subscription(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::ConfirmSubscription>(value)?;
    let plane = &c.st.plane;
    let arn = plane
        .sns_write(|tx| {
            subscriptions::confirm_subscription(tx, &plane.account_id, &r.topic_arn, &r.token)
        })
        .map_err(|e| refused(&e))?;
    output::<ops::ConfirmSubscription>(ConfirmSubscriptionResponse {
        subscription_arn: Some(arn),
    })
}

/// Unsubscribe.
pub(super) fn unsubscribe(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::Unsubscribe>(value)?;
    let plane = &c.st.plane;
    plane
        .sns_write(|tx| subscriptions::unsubscribe(tx, &plane.account_id, &r.subscription_arn))
        .map_err(|e| refused(&e))?;
    output::<ops::Unsubscribe>(shapes::Empty {})
}

fn shape(account: &str, s: &SubscriptionRow) -> Subscription {
    Subscription {
        subscription_arn: Some(subscriptions::listed_arn(s).to_string()),
        owner: Some(account.to_string()),
        protocol: Some(s.protocol.clone()),
        endpoint: Some(s.endpoint.clone()),
        topic_arn: Some(s.topic_arn.clone()),
    }
}

/// ListSubscriptions.
pub(super) fn list_subscriptions(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::ListSubscriptions>(value)?;
    let plane = &c.st.plane;
    let (rows, next_token) = subscriptions::list_subscriptions(
        &plane.db.lock(),
        &plane.account_id,
        None,
        r.next_token.as_deref(),
    )
    .map_err(|e| refused(&e))?;
    output::<ops::ListSubscriptions>(ListSubscriptionsResponse {
        subscriptions: Some(rows.iter().map(|s| shape(&plane.account_id, s)).collect()),
        next_token,
    })
}

/// ListSubscriptionsByTopic.
pub(super) fn list_subscriptions_by_topic(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::ListSubscriptionsByTopic>(value)?;
    let plane = &c.st.plane;
    let (rows, next_token) = subscriptions::list_subscriptions(
        &plane.db.lock(),
        &plane.account_id,
        Some(&r.topic_arn),
        r.next_token.as_deref(),
    )
    .map_err(|e| refused(&e))?;
    output::<ops::ListSubscriptionsByTopic>(ListSubscriptionsByTopicResponse {
        subscriptions: Some(rows.iter().map(|s| shape(&plane.account_id, s)).collect()),
        next_token,
    })
}

/// GetSubscriptionAttributes.
pub(super) fn get_subscription_attributes(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::GetSubscriptionAttributes>(value)?;
    let plane = &c.st.plane;
    let attributes = subscriptions::get_subscription_attributes(
        &plane.db.lock(),
        &plane.account_id,
        &r.subscription_arn,
    )
    .map_err(|e| refused(&e))?;
    output::<ops::GetSubscriptionAttributes>(GetSubscriptionAttributesResponse {
        attributes: Some(attributes),
    })
}

/// SetSubscriptionAttributes.
pub(super) fn set_subscription_attributes(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::SetSubscriptionAttributes>(value)?;
    let plane = &c.st.plane;
    plane
        .sns_write(|tx| {
            subscriptions::set_subscription_attribute(
                tx,
                &plane.account_id,
                &r.subscription_arn,
                &r.attribute_name,
                r.attribute_value.as_deref(),
            )
        })
        .map_err(|e| refused(&e))?;
    output::<ops::SetSubscriptionAttributes>(shapes::Empty {})
}
