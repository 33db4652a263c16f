//! Auto Scaling's refusals and the checks the commands share: names, sizes, subnets,
//! health-check types, termination policies, tags.

use rusqlite::Connection;

use super::model::{GroupTag, TERMINATION_POLICIES, ZONE};
use crate::Refusal;

/// The most groups the agent keeps (Auto Scaling's default quota per region).
pub const MAX_GROUPS: usize = 500;
/// The most tags a group has.
pub const MAX_TAGS: usize = 50;
/// The most instances a group may hold.
pub const MAX_SIZE: i32 = 1_000;

/// Why an Auto Scaling command is refused, with Auto Scaling's codes.
#[derive(Debug, thiserror::Error)]
pub enum ScalingError {
    /// Bad or inconsistent input, or a resource that does not exist.
    #[error("{0}")]
    Validation(String),
    /// A group, policy or action of that name exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// A quota reached.
    #[error("{0}")]
    Limit(String),
    /// The group still has instances or activities.
    #[error("{0}")]
    InUse(String),
    /// A scaling activity (or the cooldown) is under way.
    #[error("{0}")]
    ActivityInProgress(String),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for ScalingError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::Validation(_) => "ValidationError",
            Self::AlreadyExists(_) => "AlreadyExists",
            Self::Limit(_) => "LimitExceeded",
            Self::InUse(_) => "ResourceInUse",
            Self::ActivityInProgress(_) => "ScalingActivityInProgress",
            Self::Db(_) => return None,
        })
    }
}

/// A `ValidationError`.
pub fn invalid(m: impl Into<String>) -> ScalingError {
    ScalingError::Validation(m.into())
}

/// Checks min, max and desired.
pub fn check_sizes(min: i32, max: i32, desired: i32) -> Result<(), ScalingError> {
    if min < 0 || !(0..=MAX_SIZE).contains(&max) {
        return Err(invalid(format!(
            "MinSize and MaxSize must be between 0 and {MAX_SIZE}."
        )));
    }
    if min > max {
        return Err(invalid(format!(
            "Max bound, {max}, must be greater than or equal to min bound, {min}"
        )));
    }
    if desired < min || desired > max {
        return Err(invalid(format!(
            "Desired capacity:{desired} must be between the specified min size:{min} and max size:{max}"
        )));
    }
    Ok(())
}

/// The subnets a group launches in: `VPCZoneIdentifier`'s (comma-separated), else the
/// default subnet for `AvailabilityZones` of the one zone.
pub fn resolve_subnets(
    conn: &Connection,
    vpc_zone_identifier: Option<&str>,
    zones: Option<&[String]>,
) -> Result<Vec<String>, ScalingError> {
    let listed: Vec<String> = vpc_zone_identifier
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(z) = zones.and_then(|z| z.iter().find(|z| *z != ZONE)) {
        return Err(invalid(format!("The availability zone {z} is not legal")));
    }
    if listed.is_empty() {
        if zones.is_some_and(|z| !z.is_empty()) {
            let default = state::vpcs::default_subnet(conn)?
                .ok_or_else(|| invalid("No default subnet for availability zone: local-1a"))?;
            return Ok(vec![default.id]);
        }
        return Err(invalid(
            "At least one Availability Zone or VPC Subnet is required.",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    let mut vpc: Option<String> = None;
    for id in listed {
        let subnet = state::vpcs::get_subnet(conn, &id)?
            .ok_or_else(|| invalid(format!("The subnet ID '{id}' does not exist")))?;
        match &vpc {
            Some(v) if *v != subnet.vpc_id => {
                return Err(invalid(
                    "The subnets of an Auto Scaling group must be in the same VPC.",
                ));
            }
            _ => vpc = Some(subnet.vpc_id.clone()),
        }
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Checks a health-check type.
pub fn check_health_check_type(t: &str) -> Result<(), ScalingError> {
    if matches!(t, "EC2" | "ELB") {
        Ok(())
    } else {
        Err(invalid(format!(
            "Value {t} at 'healthCheckType' failed to satisfy constraint: Member must be EC2 or ELB"
        )))
    }
}

/// Checks termination policies.
pub fn check_termination_policies(p: &[String]) -> Result<(), ScalingError> {
    match p
        .iter()
        .find(|p| !TERMINATION_POLICIES.contains(&p.as_str()))
    {
        Some(bad) => Err(invalid(format!("Invalid termination policy: {bad}"))),
        None => Ok(()),
    }
}

/// A tag as given: the resource it names and its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInput {
    /// `ResourceId` (the group's name).
    pub resource_id: Option<String>,
    /// `ResourceType` (`auto-scaling-group`).
    pub resource_type: Option<String>,
    /// The key.
    pub key: String,
    /// The value.
    pub value: Option<String>,
    /// `PropagateAtLaunch`.
    pub propagate: Option<bool>,
}

/// Checks one tag of group `group`, gives it as kept.
pub fn check_tag(t: &TagInput, group: &str) -> Result<GroupTag, ScalingError> {
    if let Some(kind) = &t.resource_type
        && kind != "auto-scaling-group"
    {
        return Err(invalid(format!(
            "Invalid resource type: {kind}; the only valid resource type is auto-scaling-group"
        )));
    }
    if let Some(id) = &t.resource_id
        && !id.is_empty()
        && id != group
    {
        return Err(invalid(format!(
            "The tag's ResourceId {id} is not the group's name {group}"
        )));
    }
    if t.key.is_empty() || t.key.chars().count() > 128 {
        return Err(invalid("Tag key must be between 1 and 128 characters"));
    }
    if t.key.to_ascii_lowercase().starts_with("aws:") {
        return Err(invalid(
            "Tag keys starting with 'aws:' are reserved for internal use",
        ));
    }
    let value = t.value.clone().unwrap_or_default();
    if value.chars().count() > 256 {
        return Err(invalid("Tag value must be at most 256 characters"));
    }
    Ok(GroupTag {
        key: t.key.clone(),
        value,
        propagate: t.propagate.unwrap_or(false),
    })
}

/// Merges `new` tags into `tags` (a key given again replaces its tag).
pub fn merge_tags(tags: &mut Vec<GroupTag>, new: Vec<GroupTag>) -> Result<(), ScalingError> {
    for t in new {
        match tags.iter_mut().find(|x| x.key == t.key) {
            Some(x) => *x = t,
            None => tags.push(t),
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(ScalingError::Limit(format!(
            "The number of tags for the Auto Scaling group exceeds the limit of {MAX_TAGS}."
        )));
    }
    Ok(())
}

/// Checks a name of a group, policy or scheduled action.
pub fn check_name(what: &str, name: &str) -> Result<(), ScalingError> {
    if name.is_empty()
        || name.chars().count() > 255
        || name.contains(':')
        || name.chars().any(char::is_control)
    {
        return Err(invalid(format!(
            "{what} must be 1 to 255 characters, without ':' or control characters"
        )));
    }
    Ok(())
}
