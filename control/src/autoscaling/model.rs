//! What Auto Scaling keeps: a group's settings (the JSON of its row), its members'
//! lifecycle states, and the ARNs of groups, policies and scheduled actions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use state::autoscaling::{GroupRow, MemberRow};

/// The one region.
pub const REGION: &str = "local-1";
/// The one zone.
pub const ZONE: &str = "local-1a";

/// A member's lifecycle state: launched, not yet running.
pub const PENDING: &str = "Pending";
/// Running and counted.
pub const IN_SERVICE: &str = "InService";
/// Being deregistered and terminated.
pub const TERMINATING: &str = "Terminating";
/// Being detached.
pub const DETACHING: &str = "Detaching";
/// Healthy.
pub const HEALTHY: &str = "Healthy";
/// Unhealthy.
pub const UNHEALTHY: &str = "Unhealthy";

/// The processes SuspendProcesses names.
pub const PROCESSES: &[&str] = &[
    "Launch",
    "Terminate",
    "AddToLoadBalancer",
    "AlarmNotification",
    "AZRebalance",
    "HealthCheck",
    "InstanceRefresh",
    "ReplaceUnhealthy",
    "ScheduledActions",
];

/// The termination policies a group may name.
pub const TERMINATION_POLICIES: &[&str] = &[
    "Default",
    "OldestInstance",
    "NewestInstance",
    "OldestLaunchConfiguration",
    "OldestLaunchTemplate",
    "ClosestToNextInstanceHour",
    "AllocationStrategy",
];

/// The launch template a group launches from, as named.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSpec {
    /// `lt-...`.
    pub id: Option<String>,
    /// Its name.
    pub name: Option<String>,
    /// `$Default`, `$Latest` or a number (`$Default` when not given).
    pub version: Option<String>,
}

/// One of a group's tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupTag {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
    /// Whether instances launched get it.
    pub propagate: bool,
}

/// A group's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupConfig {
    /// The launch template.
    pub template: TemplateSpec,
    /// Instance types to launch instead of the template's (a `MixedInstancesPolicy`'s
    /// overrides), in order of preference.
    pub instance_types: Vec<String>,
    /// `MinSize`.
    pub min: i32,
    /// `MaxSize`.
    pub max: i32,
    /// `DesiredCapacity`.
    pub desired: i32,
    /// `DefaultCooldown`, seconds.
    pub default_cooldown: i32,
    /// `DefaultInstanceWarmup`, seconds.
    pub default_instance_warmup: Option<i32>,
    /// The subnets (`VPCZoneIdentifier`), in the order given.
    pub subnets: Vec<String>,
    /// `EC2` or `ELB`.
    pub health_check_type: String,
    /// `HealthCheckGracePeriod`, seconds.
    pub grace: i32,
    /// `TargetGroupARNs`.
    pub target_groups: Vec<String>,
    /// `TerminationPolicies`.
    pub termination_policies: Vec<String>,
    /// `NewInstancesProtectedFromScaleIn`.
    pub protect_new: bool,
    /// Suspended processes and why.
    pub suspended: BTreeMap<String, String>,
    /// Tags.
    pub tags: Vec<GroupTag>,
    /// The words of the last change of desired capacity, put before the causes of the
    /// activities that follow it until the group reaches that capacity.
    pub pending_cause: Option<String>,
    /// Until when simple scaling and `HonorCooldown` wait (milliseconds since the epoch).
    pub cooldown_until_ms: i64,
    /// A deletion asked with `ForceDelete` is under way.
    pub deleting: bool,
    /// The minimum the predictive policy asks for now, if any.
    pub forecast_min: Option<i32>,
}

impl GroupConfig {
    /// Whether `process` is suspended.
    pub fn suspended(&self, process: &str) -> bool {
        self.suspended.contains_key(process)
    }

    /// The termination policies in force (`Default` when none were given).
    pub fn termination_policies(&self) -> Vec<String> {
        if self.termination_policies.is_empty() {
            vec!["Default".into()]
        } else {
            self.termination_policies.clone()
        }
    }
}

/// A group: its row and its settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Creation order.
    pub seq: i64,
    /// The name.
    pub name: String,
    /// The ARN.
    pub arn: String,
    /// Milliseconds since the epoch.
    pub created_ms: i64,
    /// The settings.
    pub config: GroupConfig,
}

impl Group {
    /// The group a row holds (settings this code did not write read as the defaults).
    pub fn from_row(r: GroupRow) -> Self {
        Self {
            seq: r.seq,
            config: serde_json::from_str(&r.config).unwrap_or_default(),
            name: r.name,
            arn: r.arn,
            created_ms: r.created_ms,
        }
    }

    /// The settings as stored.
    pub fn config_text(&self) -> String {
        serde_json::to_string(&self.config).unwrap_or_else(|_| "{}".into())
    }
}

/// Whether a member counts toward the group's capacity.
pub fn counts(m: &MemberRow) -> bool {
    m.lifecycle == PENDING || m.lifecycle == IN_SERVICE
}

/// A group's ARN.
pub fn group_arn(account: &str, uuid: &str, name: &str) -> String {
    format!(
        "arn:aws:autoscaling:{REGION}:{account}:autoScalingGroup:{uuid}:autoScalingGroupName/{name}"
    )
}

/// A scaling policy's ARN.
pub fn policy_arn(account: &str, uuid: &str, group: &str, name: &str) -> String {
    format!(
        "arn:aws:autoscaling:{REGION}:{account}:scalingPolicy:{uuid}:autoScalingGroupName/{group}:policyName/{name}"
    )
}

/// A scheduled action's ARN.
pub fn scheduled_arn(account: &str, uuid: &str, group: &str, name: &str) -> String {
    format!(
        "arn:aws:autoscaling:{REGION}:{account}:scheduledUpdateGroupAction:{uuid}:autoScalingGroupName/{group}:scheduledActionName/{name}"
    )
}

/// The group and policy names a policy ARN of `account` carries.
pub fn parse_policy_arn<'a>(arn: &'a str, account: &str) -> Option<(&'a str, &'a str)> {
    let rest = arn.strip_prefix(&format!(
        "arn:aws:autoscaling:{REGION}:{account}:scalingPolicy:"
    ))?;
    let (_uuid, rest) = rest.split_once(":autoScalingGroupName/")?;
    let (group, policy) = rest.split_once(":policyName/")?;
    (!group.is_empty() && !policy.is_empty()).then_some((group, policy))
}

/// A time as Auto Scaling writes it in causes (`2026-12-07T18:00:00Z`).
pub fn cause_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_arn_names_its_group_and_policy() {
        let arn = policy_arn("123456789012", "u-1", "web", "cpu50");
        assert_eq!(
            arn,
            "arn:aws:autoscaling:local-1:123456789012:scalingPolicy:u-1:autoScalingGroupName/web:policyName/cpu50"
        );
        assert_eq!(
            parse_policy_arn(&arn, "123456789012"),
            Some(("web", "cpu50"))
        );
        assert_eq!(parse_policy_arn(&arn, "000000000000"), None);
        assert_eq!(parse_policy_arn("arn:aws:sns:local-1:1:t", "1"), None);
    }

    #[test]
    fn causes_write_whole_seconds_in_utc() {
        assert_eq!(cause_time(1_796_666_400_500), "2026-12-07T18:00:00Z");
    }
}
