//! Tags on existing resources: CreateTags and DeleteTags, all resources or none. Tags given
//! at a resource's creation are written by that resource's command.

use rusqlite::Connection;

use crate::{Plane, Refusal};
use state::tags::{self, Taggable};

/// The most tags a resource may have (EC2's limit).
pub const MAX_TAGS: usize = 50;

/// Every kind CreateTags and DeleteTags take: its id prefix, its `resourceType`, and the
/// error code for an id of it that does not exist.
const TAGGABLE: &[(&str, &str, Taggable, &str)] = &[
    (
        "i-",
        "instance",
        Taggable::Instance,
        "InvalidInstanceID.NotFound",
    ),
    ("ami-", "image", Taggable::Image, "InvalidAMIID.NotFound"),
    (
        "key-",
        "key-pair",
        Taggable::KeyPair,
        "InvalidKeyPair.NotFound",
    ),
    ("vpc-", "vpc", Taggable::Vpc, "InvalidVpcID.NotFound"),
    (
        "subnet-",
        "subnet",
        Taggable::Subnet,
        "InvalidSubnetID.NotFound",
    ),
    (
        "sg-",
        "security-group",
        Taggable::SecurityGroup,
        "InvalidGroup.NotFound",
    ),
    (
        "eni-",
        "network-interface",
        Taggable::NetworkInterface,
        "InvalidNetworkInterfaceID.NotFound",
    ),
    (
        "eipalloc-",
        "elastic-ip",
        Taggable::ElasticIp,
        "InvalidAllocationID.NotFound",
    ),
    (
        "lt-",
        "launch-template",
        Taggable::LaunchTemplate,
        "InvalidLaunchTemplateId.NotFound",
    ),
];

/// The EC2 resource type of an id CreateTags takes, from its prefix.
pub fn resource_type(id: &str) -> Option<&'static str> {
    TAGGABLE.iter().find(|t| id.starts_with(t.0)).map(|t| t.1)
}

/// Why CreateTags or DeleteTags is refused.
#[derive(Debug, thiserror::Error)]
pub enum TagsError {
    /// An id of no taggable kind.
    #[error("The ID '{id}' is not valid: taggable ids start with {prefixes}")]
    NotTaggable {
        /// The id.
        id: String,
        /// The prefixes taken.
        prefixes: String,
    },
    /// No resource has that id.
    #[error("The ID '{id}' does not exist")]
    NotFound {
        /// The id.
        id: String,
        /// The kind's own not-found code.
        code: &'static str,
    },
    /// A resource would pass [`MAX_TAGS`].
    #[error("The maximum number of tags per resource ({MAX_TAGS}) would be exceeded: {0}")]
    TooMany(String),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for TagsError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::NotTaggable { .. } => "InvalidID",
            Self::NotFound { code, .. } => code,
            Self::TooMany(_) => "TagLimitExceeded",
            Self::Db(_) => return None,
        })
    }
}

/// Checks that every id names an existing resource of a taggable kind.
fn check_resources(conn: &Connection, ids: &[String]) -> Result<(), TagsError> {
    for id in ids {
        let Some(&(_, _, kind, code)) = TAGGABLE.iter().find(|t| id.starts_with(t.0)) else {
            let prefixes: Vec<&str> = TAGGABLE.iter().map(|t| t.0).collect();
            return Err(TagsError::NotTaggable {
                id: id.clone(),
                prefixes: prefixes.join(", "),
            });
        };
        if !tags::resource_exists(conn, kind, id)? {
            return Err(TagsError::NotFound {
                id: id.clone(),
                code,
            });
        }
    }
    Ok(())
}

/// Sets `new` on every resource of `ids`, none if one is missing or would pass
/// [`MAX_TAGS`].
pub fn create(
    conn: &Connection,
    ids: &[String],
    new: &[(String, String)],
) -> Result<(), TagsError> {
    if new.len() > MAX_TAGS {
        return Err(TagsError::TooMany(format!("{} tags given", new.len())));
    }
    check_resources(conn, ids)?;
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let existing = tags::for_resources(conn, &refs)?;
    for id in ids {
        let have = existing.get(id).map_or(&[][..], Vec::as_slice);
        let added = new
            .iter()
            .filter(|(k, _)| !have.iter().any(|(h, _)| h == k))
            .count();
        if have.len() + added > MAX_TAGS {
            return Err(TagsError::TooMany(format!(
                "resource '{id}' would have {} tags",
                have.len() + added
            )));
        }
        tags::put(conn, id, new)?;
    }
    Ok(())
}

/// Removes `keys` (a key with a value only where the value matches) from every resource of
/// `ids`, or every tag when `keys` is empty.
pub fn delete(
    conn: &Connection,
    ids: &[String],
    keys: &[(String, Option<String>)],
) -> Result<(), TagsError> {
    check_resources(conn, ids)?;
    for id in ids {
        if keys.is_empty() {
            tags::delete_all(conn, id)?;
        }
        for (k, v) in keys {
            tags::delete(conn, id, k, v.as_deref())?;
        }
    }
    Ok(())
}

impl Plane {
    /// CreateTags.
    pub fn create_tags(&self, ids: &[String], new: &[(String, String)]) -> Result<(), TagsError> {
        self.transact::<_, TagsError>(|tx| Ok((create(tx, ids, new)?, Vec::new())))?;
        Ok(())
    }

    /// DeleteTags.
    pub fn delete_tags(
        &self,
        ids: &[String],
        keys: &[(String, Option<String>)],
    ) -> Result<(), TagsError> {
        self.transact::<_, TagsError>(|tx| Ok((delete(tx, ids, keys)?, Vec::new())))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_go_on_existing_resources_only_and_within_the_limit() {
        let (_dir, db) = crate::ec2::test_db();
        let conn = db.lock();
        state::vpcs::insert_vpc(&conn, "vpc-00000001", "10.0.0.0/16", false).unwrap();
        let ids = vec!["vpc-00000001".to_string()];
        let e = create(&conn, &["vpc-00000002".into()], &[("a".into(), "1".into())]).unwrap_err();
        assert_eq!(e.code(), Some("InvalidVpcID.NotFound"));
        let e = create(&conn, &["vol-1".into()], &[("a".into(), "1".into())]).unwrap_err();
        assert_eq!(e.code(), Some("InvalidID"));
        let many: Vec<(String, String)> = (0..MAX_TAGS)
            .map(|i| (format!("k{i}"), String::new()))
            .collect();
        create(&conn, &ids, &many).unwrap();
        // Overwriting a key is no new tag; one more key is.
        create(&conn, &ids, &[("k0".into(), "v".into())]).unwrap();
        let e = create(&conn, &ids, &[("extra".into(), String::new())]).unwrap_err();
        assert_eq!(e.code(), Some("TagLimitExceeded"));
        delete(&conn, &ids, &[("k0".into(), Some("other".into()))]).unwrap();
        assert_eq!(
            tags::for_resources(&conn, &["vpc-00000001"]).unwrap()["vpc-00000001"].len(),
            MAX_TAGS
        );
        delete(&conn, &ids, &[]).unwrap();
        assert!(
            !tags::for_resources(&conn, &["vpc-00000001"])
                .unwrap()
                .contains_key("vpc-00000001")
        );
    }
}
