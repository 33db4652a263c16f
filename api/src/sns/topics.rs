//! CreateTopic, DeleteTopic, ListTopics, GetTopicAttributes and SetTopicAttributes as
//! `control::sns::topics`' commands.

use control::sns::topics;
use serde_json::Value;
use shapes::sns::{
    CreateTopicResponse, GetTopicAttributesResponse, ListTopicsResponse, Topic, ops,
};

use super::{pairs, refused};
use crate::errors::ApiError;
use crate::operation::{input, output};
use crate::{Call, Reply};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// CreateTopic.
pub(super) fn create_topic(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::CreateTopic>(value)?;
    let plane = &c.st.plane;
    let arn = plane
        .sns_write(|tx| {
            topics::create_topic(
                tx,
                &plane.account_id,
                &r.name,
                &r.attributes.unwrap_or_default(),
                &pairs(r.tags.unwrap_or_default()),
                now_ms(),
            )
        })
        .map_err(|e| refused(&e))?;
    output::<ops::CreateTopic>(CreateTopicResponse {
        topic_arn: Some(arn),
    })
}

/// DeleteTopic.
pub(super) fn delete_topic(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DeleteTopic>(value)?;
    let plane = &c.st.plane;
    plane
        .sns_write(|tx| topics::delete_topic(tx, &plane.account_id, &r.topic_arn))
        .map_err(|e| refused(&e))?;
    output::<ops::DeleteTopic>(shapes::Empty {})
}

/// ListTopics.
pub(super) fn list_topics(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::ListTopics>(value)?;
    let page = topics::list_topics(&c.st.plane.db.lock(), r.next_token.as_deref())
        .map_err(|e| refused(&e))?;
    output::<ops::ListTopics>(ListTopicsResponse {
        topics: Some(
            page.items
                .into_iter()
                .map(|arn| Topic {
                    topic_arn: Some(arn),
                })
                .collect(),
        ),
        next_token: page.next_token,
    })
}

/// GetTopicAttributes.
pub(super) fn get_topic_attributes(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::GetTopicAttributes>(value)?;
    let plane = &c.st.plane;
    let attributes =
        topics::get_topic_attributes(&plane.db.lock(), &plane.account_id, &r.topic_arn)
            .map_err(|e| refused(&e))?;
    output::<ops::GetTopicAttributes>(GetTopicAttributesResponse {
        attributes: Some(attributes),
    })
}

/// SetTopicAttributes.
pub(super) fn set_topic_attributes(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::SetTopicAttributes>(value)?;
    let plane = &c.st.plane;
    plane
        .sns_write(|tx| {
            topics::set_topic_attribute(
                tx,
                &plane.account_id,
                &r.topic_arn,
                &r.attribute_name,
                r.attribute_value.as_deref(),
            )
        })
        .map_err(|e| refused(&e))?;
    output::<ops::SetTopicAttributes>(shapes::Empty {})
}
