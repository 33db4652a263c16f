//! A topic's tags: TagResource, UntagResource and ListTagsForResource (by the topic's ARN;
//! SNS tags topics only).

use rusqlite::Connection;
use state::sns as db;

use super::checks::{self, ArnError, TagError};
use crate::Refusal;

/// Why a tag command is refused.
#[derive(Debug, thiserror::Error)]
pub enum TagsError {
    /// The ARN is not a topic's of this account.
    #[error(transparent)]
    Arn(#[from] ArnError),
    /// No such topic.
    #[error("Resource does not exist")]
    NotFound,
    /// A tag refused, or too many.
    #[error(transparent)]
    Tag(#[from] TagError),
    /// The database failed.
    #[error("cannot read or write the tags")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for TagsError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Arn(e) => Some(e.code()),
            Self::NotFound => Some("ResourceNotFound"),
            Self::Tag(e) => Some(e.code()),
            Self::Db(_) => None,
        }
    }
}

fn existing_topic(conn: &Connection, account: &str, arn: &str) -> Result<(), TagsError> {
    checks::check_topic_arn("ResourceArn", arn, account)?;
    db::topic_by_arn(conn, arn)?.ok_or(TagsError::NotFound)?;
    Ok(())
}

/// Adds or replaces tags on a topic, all or none; a topic has at most 50.
pub fn tag_resource(
    conn: &Connection,
    account: &str,
    arn: &str,
    tags: &[(String, String)],
) -> Result<(), TagsError> {
    existing_topic(conn, account, arn)?;
    for (k, v) in tags {
        checks::check_tag(k, v)?;
    }
    let mut keys: Vec<String> = db::tags(conn, arn)?.into_iter().map(|(k, _)| k).collect();
    keys.extend(tags.iter().map(|(k, _)| k.clone()));
    keys.sort();
    keys.dedup();
    if keys.len() > checks::MAX_TAGS {
        return Err(TagError::TooMany.into());
    }
    db::put_tags(conn, arn, tags)?;
    Ok(())
}

/// Removes tags from a topic.
pub fn untag_resource(
    conn: &Connection,
    account: &str,
    arn: &str,
    keys: &[String],
) -> Result<(), TagsError> {
    existing_topic(conn, account, arn)?;
    for k in keys {
        checks::check_tag(k, "")?;
    }
    db::delete_tags(conn, arn, keys)?;
    Ok(())
}

/// A topic's tags, by key.
pub fn list_tags(
    conn: &Connection,
    account: &str,
    arn: &str,
) -> Result<Vec<(String, String)>, TagsError> {
    existing_topic(conn, account, arn)?;
    Ok(db::tags(conn, arn)?)
}
