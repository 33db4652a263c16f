//! Tags on load balancers, target groups, listeners and rules: AddTags, RemoveTags,
//! DescribeTags.

use rusqlite::Connection;
use state::elbv2 as db;

use super::error::ElbError;
use crate::Plane;

/// The most tags a resource has.
pub const MAX_TAGS: usize = 50;

fn check_key_value(k: &str, v: &str) -> Result<(), ElbError> {
    if k.is_empty() || k.chars().count() > 128 || k.to_ascii_lowercase().starts_with("aws:") {
        return Err(ElbError::Validation(format!(
            "Tag key '{k}' must be 1 to 128 characters, not starting with 'aws:'"
        )));
    }
    if v.chars().count() > 256 {
        return Err(ElbError::Validation(
            "Tag values are at most 256 characters".into(),
        ));
    }
    Ok(())
}

/// Checks the tags of a new resource.
pub fn check_new(tags: &[(String, String)]) -> Result<(), ElbError> {
    let mut keys: Vec<&str> = tags.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(ElbError::DuplicateTagKeys);
    }
    if tags.len() > MAX_TAGS {
        return Err(ElbError::TooManyTags(format!(
            "A resource has at most {MAX_TAGS} tags"
        )));
    }
    for (k, v) in tags {
        check_key_value(k, v)?;
    }
    Ok(())
}

/// The error for an ARN that names nothing, by its kind.
fn not_found(arn: &str) -> ElbError {
    if arn.contains(":targetgroup/") {
        ElbError::TargetGroupNotFound
    } else if arn.contains(":listener-rule/") {
        ElbError::RuleNotFound
    } else if arn.contains(":listener/") {
        ElbError::ListenerNotFound
    } else {
        ElbError::LoadBalancerNotFound
    }
}

/// Whether `arn` names a resource that exists.
fn exists(conn: &Connection, arn: &str) -> Result<bool, ElbError> {
    Ok(if arn.contains(":targetgroup/") {
        db::targets::tg_by_arn(conn, arn)?.is_some()
    } else if arn.contains(":listener-rule/") {
        db::rule_by_arn(conn, arn)?.is_some()
    } else if arn.contains(":listener/") {
        db::listener_by_arn(conn, arn)?.is_some()
    } else {
        db::lb_by_arn(conn, arn)?.is_some()
    })
}

/// AddTags.
pub fn add(conn: &Connection, arns: &[String], tags: &[(String, String)]) -> Result<(), ElbError> {
    check_new(tags)?;
    for arn in arns {
        if !exists(conn, arn)? {
            return Err(not_found(arn));
        }
        let mut all: std::collections::BTreeMap<String, String> =
            db::tags_of(conn, arn)?.into_iter().collect();
        all.extend(tags.iter().cloned());
        if all.len() > MAX_TAGS {
            return Err(ElbError::TooManyTags(format!(
                "A resource has at most {MAX_TAGS} tags"
            )));
        }
        db::put_tags(conn, arn, tags)?;
    }
    Ok(())
}

/// RemoveTags.
pub fn remove(conn: &Connection, arns: &[String], keys: &[String]) -> Result<(), ElbError> {
    for arn in arns {
        if !exists(conn, arn)? {
            return Err(not_found(arn));
        }
        db::remove_tags(conn, arn, keys)?;
    }
    Ok(())
}

/// A resource's ARN and its tags.
pub type Tagged = (String, Vec<(String, String)>);

/// DescribeTags: each resource's tags.
pub fn describe(conn: &Connection, arns: &[String]) -> Result<Vec<Tagged>, ElbError> {
    if arns.len() > 20 {
        return Err(ElbError::Validation(
            "At most 20 resource ARNs per request".into(),
        ));
    }
    let mut out = Vec::new();
    for arn in arns {
        if !exists(conn, arn)? {
            return Err(not_found(arn));
        }
        out.push((arn.clone(), db::tags_of(conn, arn)?));
    }
    Ok(out)
}

impl Plane {
    /// AddTags.
    pub fn elb_add_tags(&self, arns: &[String], tags: &[(String, String)]) -> Result<(), ElbError> {
        self.elb_write(|tx| Ok((add(tx, arns, tags)?, Vec::new())))
    }

    /// RemoveTags.
    pub fn elb_remove_tags(&self, arns: &[String], keys: &[String]) -> Result<(), ElbError> {
        self.elb_write(|tx| Ok((remove(tx, arns, keys)?, Vec::new())))
    }
}
