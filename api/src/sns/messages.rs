//! Publish, and a topic's tags (TagResource, UntagResource, ListTagsForResource), as
//! `control::sns`' commands.

use base64::Engine;
use control::sns::message::MessageAttribute;
use control::sns::{PublishRequest, publish_request, tags};
use serde_json::Value;
use shapes::sns::{
    ListTagsForResourceResponse, PublishResponse, Tag, TagResourceResponse, UntagResourceResponse,
    ops,
};

use super::{pairs, refused};
use crate::errors::ApiError;
use crate::operation::{input, output};
use crate::{Call, Reply};

/// Publish.
pub(super) fn publish(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::Publish>(value)?;
    let attributes = r
        .message_attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(name, v)| MessageAttribute {
            name,
            data_type: v.data_type,
            string_value: v.string_value,
            binary_base64: v
                .binary_value
                .map(|b| base64::engine::general_purpose::STANDARD.encode(b.0)),
        })
        .collect();
    let request = PublishRequest {
        topic_arn: r.topic_arn,
        target_arn: r.target_arn,
        phone_number: r.phone_number,
        subject: r.subject,
        message: r.message,
        message_structure: r.message_structure,
        attributes,
        message_group_id: r.message_group_id,
        message_deduplication_id: r.message_deduplication_id,
    };
    let id = publish_request(&c.st.plane, &request).map_err(|e| refused(&e))?;
    output::<ops::Publish>(PublishResponse {
        message_id: Some(id),
        sequence_number: None,
    })
}

/// TagResource.
pub(super) fn tag_resource(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::TagResource>(value)?;
    let plane = &c.st.plane;
    plane
        .sns_write(|tx| tags::tag_resource(tx, &plane.account_id, &r.resource_arn, &pairs(r.tags)))
        .map_err(|e| refused(&e))?;
    output::<ops::TagResource>(TagResourceResponse {})
}

/// UntagResource.
pub(super) fn untag_resource(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::UntagResource>(value)?;
    let plane = &c.st.plane;
    plane
        .sns_write(|tx| tags::untag_resource(tx, &plane.account_id, &r.resource_arn, &r.tag_keys))
        .map_err(|e| refused(&e))?;
    output::<ops::UntagResource>(UntagResourceResponse {})
}

/// ListTagsForResource.
pub(super) fn list_tags_for_resource(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::ListTagsForResource>(value)?;
    let plane = &c.st.plane;
    let tags = tags::list_tags(&plane.db.lock(), &plane.account_id, &r.resource_arn)
        .map_err(|e| refused(&e))?;
    output::<ops::ListTagsForResource>(ListTagsForResourceResponse {
        tags: Some(
            tags.into_iter()
                .map(|(key, value)| Tag { key, value })
                .collect(),
        ),
    })
}
