//! Authorizing and revoking a group's rules, ingress or egress.

use rusqlite::Connection;

use super::permissions::{self, Permission, PermissionError, describe_rule};
use super::{GroupLookupError, GroupRef, MAX_RULES, lookup};
use crate::effects::Effect;
use crate::{Plane, Refusal};
use state::security_groups::{self, RuleRow};
use state::tags;

/// Authorize or Revoke, ingress or egress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleChange {
    /// The group whose rules change.
    pub group: GroupRef,
    /// Egress rules, else ingress.
    pub egress: bool,
    /// The permissions to add or remove.
    pub permissions: Vec<Permission>,
}

/// Why Authorize is refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// The group cannot be found.
    #[error(transparent)]
    Lookup(#[from] GroupLookupError),
    /// A permission is not valid.
    #[error(transparent)]
    Permission(#[from] PermissionError),
    /// The group has the rule already (or the request names it twice).
    #[error("the specified rule \"{0}\" already exists")]
    Duplicate(String),
    /// More than [`MAX_RULES`] in one direction.
    #[error(
        "The maximum number of rules per security group ({MAX_RULES} per direction) has been reached."
    )]
    TooMany,
    /// The firewall could not be brought in line (the rules stand; the agent's next start
    /// applies them).
    #[error("the firewall could not be updated")]
    Apply(#[source] crate::effects::ApplyError),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for AuthorizeError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Lookup(e) => e.code(),
            Self::Permission(e) => e.code(),
            Self::Duplicate(_) => Some("InvalidPermission.Duplicate"),
            Self::TooMany => Some("RulesPerSecurityGroupLimitExceeded"),
            Self::Apply(_) | Self::Db(_) => None,
        }
    }
}

/// Why Revoke is refused.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    /// The group cannot be found.
    #[error(transparent)]
    Lookup(#[from] GroupLookupError),
    /// A permission is not valid.
    #[error(transparent)]
    Permission(#[from] PermissionError),
    /// A rule id the group does not have.
    #[error("The security group rule ID '{id}' does not exist in {group}")]
    NoRuleId {
        /// The rule id.
        id: String,
        /// The group.
        group: String,
    },
    /// A permission the group does not have.
    #[error("The specified rule \"{0}\" does not exist in this security group.")]
    NoRule(String),
    /// The firewall could not be brought in line (the rules are gone from the state; the
    /// agent's next start applies that).
    #[error("the firewall could not be updated")]
    Apply(#[source] crate::effects::ApplyError),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for RevokeError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Lookup(e) => e.code(),
            Self::Permission(e) => e.code(),
            Self::NoRuleId { .. } => Some("InvalidSecurityGroupRuleId.NotFound"),
            Self::NoRule(_) => Some("InvalidPermission.NotFound"),
            Self::Apply(_) | Self::Db(_) => None,
        }
    }
}

/// The group's rules in `change`'s direction.
fn existing(conn: &Connection, group_id: &str, egress: bool) -> rusqlite::Result<Vec<RuleRow>> {
    Ok(security_groups::rules_of(conn, group_id)?
        .into_iter()
        .filter(|r| r.egress == egress)
        .collect())
}

/// Adds the rules `change` asks for, each with `tag_list`; none when one is a duplicate or
/// the group would pass [`MAX_RULES`].
pub fn authorize(
    conn: &Connection,
    change: &RuleChange,
    tag_list: &[(String, String)],
) -> Result<Vec<RuleRow>, AuthorizeError> {
    let group = lookup(conn, &change.group)?;
    let new = permissions::rules(conn, &group, change.egress, &change.permissions)?;
    let existing = existing(conn, &group.id, change.egress)?;
    for (i, r) in new.iter().enumerate() {
        if existing
            .iter()
            .chain(&new[..i])
            .any(|e| e.same_permission(r))
        {
            return Err(AuthorizeError::Duplicate(describe_rule(r)));
        }
    }
    if existing.len() + new.len() > MAX_RULES {
        return Err(AuthorizeError::TooMany);
    }
    for r in &new {
        security_groups::insert_rule(conn, r)?;
        tags::put(conn, &r.id, tag_list)?;
    }
    Ok(new)
}

/// Removes the rules `rule_ids` names, or when it is empty those `change` describes; none
/// when one does not exist.
pub fn revoke(
    conn: &Connection,
    change: &RuleChange,
    rule_ids: &[String],
) -> Result<Vec<RuleRow>, RevokeError> {
    let group = lookup(conn, &change.group)?;
    let existing = existing(conn, &group.id, change.egress)?;
    let mut removed: Vec<RuleRow> = Vec::new();
    for id in rule_ids {
        let r = existing
            .iter()
            .find(|r| &r.id == id)
            .ok_or_else(|| RevokeError::NoRuleId {
                id: id.clone(),
                group: group.id.clone(),
            })?;
        removed.push(r.clone());
    }
    if rule_ids.is_empty() {
        for wanted in permissions::rules(conn, &group, change.egress, &change.permissions)? {
            let r = existing
                .iter()
                .find(|e| e.same_permission(&wanted))
                .ok_or_else(|| RevokeError::NoRule(describe_rule(&wanted)))?;
            removed.push(r.clone());
        }
    }
    for r in &removed {
        security_groups::delete_rule(conn, &r.id)?;
        tags::delete_all(conn, &r.id)?;
    }
    Ok(removed)
}

impl Plane {
    /// AuthorizeSecurityGroupIngress/Egress; the firewall has the rules before this returns.
    pub async fn authorize_security_group(
        &self,
        change: &RuleChange,
        tag_list: &[(String, String)],
    ) -> Result<Vec<RuleRow>, AuthorizeError> {
        let committed = self.transact::<_, AuthorizeError>(|tx| {
            Ok((authorize(tx, change, tag_list)?, vec![Effect::SyncFirewall]))
        })?;
        self.apply(committed.effects)
            .await
            .map_err(AuthorizeError::Apply)?;
        Ok(committed.value)
    }

    /// RevokeSecurityGroupIngress/Egress; the firewall drops the rules before this returns.
    pub async fn revoke_security_group(
        &self,
        change: &RuleChange,
        rule_ids: &[String],
    ) -> Result<Vec<RuleRow>, RevokeError> {
        let committed = self.transact::<_, RevokeError>(|tx| {
            Ok((revoke(tx, change, rule_ids)?, vec![Effect::SyncFirewall]))
        })?;
        self.apply(committed.effects)
            .await
            .map_err(RevokeError::Apply)?;
        Ok(committed.value)
    }
}
