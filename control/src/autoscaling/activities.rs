//! Scaling activities: their causes and descriptions in Auto Scaling's words (pure), and
//! the rows that record them. Every launch, termination, attachment and detachment is an
//! activity, `InProgress` until it ends `Successful` or `Failed` (with its StatusMessage);
//! an activity still open after a restart is resumed by the reconciler.

use rusqlite::Connection;
use state::autoscaling::{self as db, ActivityRow};

use super::model::cause_time;

/// Status: under way.
pub const IN_PROGRESS: &str = "InProgress";
/// Status: waiting for the target groups to drain the instance.
pub const DRAINING: &str = "WaitingForELBConnectionDraining";
/// Status: done.
pub const SUCCESSFUL: &str = "Successful";
/// Status: failed.
pub const FAILED: &str = "Failed";

/// Kinds of activity.
pub const LAUNCH: &str = "launch";
/// A termination.
pub const TERMINATE: &str = "terminate";
/// An attachment (ends at once).
pub const ATTACH: &str = "attach";
/// A detachment (ends at once).
pub const DETACH: &str = "detach";

/// Why the desired capacity changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DesiredChange<'a> {
    /// CreateAutoScalingGroup.
    Created,
    /// SetDesiredCapacity.
    SetDesired,
    /// UpdateAutoScalingGroup: its new min, max and desired.
    Updated(i32, i32, i32),
    /// A scheduled action: the group's new min, max and desired.
    Scheduled(i32, i32, i32),
    /// An alarm executing a policy: the alarm's name, its state, the policy's name.
    Alarm(&'a str, &'a str, &'a str),
    /// ExecutePolicy.
    UserPolicy(&'a str),
    /// A predictive scaling policy raising the minimum.
    Forecast(&'a str),
}

/// The cause of a change of desired capacity from `from` to `to` at `ms`.
pub fn desired_cause(change: &DesiredChange<'_>, from: i32, to: i32, ms: i64) -> String {
    let at = cause_time(ms);
    let what = match change {
        DesiredChange::Created => "a user request created an AutoScalingGroup".to_string(),
        DesiredChange::SetDesired => "a user request explicitly set group desired capacity".into(),
        DesiredChange::Updated(min, max, d) => format!(
            "a user request update of AutoScalingGroup constraints to min: {min}, max: {max}, desired: {d}"
        ),
        DesiredChange::Scheduled(min, max, d) => format!(
            "a scheduled action update of AutoScalingGroup constraints to min: {min}, max: {max}, desired: {d}"
        ),
        DesiredChange::Alarm(alarm, state, policy) => {
            format!("a monitor alarm {alarm} in state {state} triggered policy {policy}")
        }
        DesiredChange::UserPolicy(policy) => format!("a user request executed policy {policy}"),
        DesiredChange::Forecast(policy) => {
            format!("a predictive scaling action by policy {policy} raised the minimum capacity")
        }
    };
    format!("At {at} {what} changing the desired capacity from {from} to {to}.")
}

/// The cause of a launch that brings the group from `from` toward `to` instances.
pub fn launch_cause(prefix: Option<&str>, from: usize, to: i32, ms: i64) -> String {
    joined(
        prefix,
        format!(
            "At {} an instance was started in response to a difference between desired and actual capacity, increasing the capacity from {from} to {to}.",
            cause_time(ms)
        ),
    )
}

/// The cause of a scale-in termination of `instance` from `from` toward `to`.
pub fn scale_in_cause(
    prefix: Option<&str>,
    from: usize,
    to: i32,
    instance: &str,
    ms: i64,
) -> String {
    let at = cause_time(ms);
    joined(
        prefix,
        format!(
            "At {at} an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from {from} to {to}.  At {at} instance {instance} was selected for termination."
        ),
    )
}

/// Why a health check took an instance out of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unhealthy {
    /// Stopped, terminated or gone.
    StoppedOrTerminated,
    /// A failed EC2 status check.
    StatusCheck,
    /// Its target group's health check.
    Elb,
    /// SetInstanceHealth.
    User,
}

/// The cause of replacing an unhealthy instance.
pub fn unhealthy_cause(why: Unhealthy, ms: i64) -> String {
    let at = cause_time(ms);
    let what = match why {
        Unhealthy::StoppedOrTerminated => {
            "an EC2 health check indicating it has been terminated or stopped"
        }
        Unhealthy::StatusCheck => "an EC2 instance status check failure",
        Unhealthy::Elb => "an ELB system health check failure",
        Unhealthy::User => "a user health-check",
    };
    format!("At {at} an instance was taken out of service in response to {what}.")
}

/// The cause of TerminateInstanceInAutoScalingGroup.
pub fn user_terminate_cause(instance: &str, shrink: Option<(usize, i32)>, ms: i64) -> String {
    let at = cause_time(ms);
    match shrink {
        Some((from, to)) => format!(
            "At {at} instance {instance} was taken out of service in response to a user request, shrinking the capacity from {from} to {to}."
        ),
        None => format!(
            "At {at} instance {instance} was taken out of service in response to a user request."
        ),
    }
}

/// The cause of DetachInstances.
pub fn detach_cause(instance: &str, from: usize, to: i32, ms: i64) -> String {
    format!(
        "At {} instance {instance} was detached in response to a user request, shrinking the capacity from {from} to {to}.",
        cause_time(ms)
    )
}

/// The cause of AttachInstances.
pub fn attach_cause(instance: &str, from: usize, to: i32, ms: i64) -> String {
    format!(
        "At {} instance {instance} was added to the group in response to a user request, increasing the capacity from {from} to {to}.",
        cause_time(ms)
    )
}

fn joined(prefix: Option<&str>, text: String) -> String {
    match prefix {
        Some(p) if !p.is_empty() => format!("{p}  {text}"),
        _ => text,
    }
}

/// The description of a launch (`None`: the instance is not known yet).
pub fn launch_description(instance: Option<&str>) -> String {
    match instance {
        Some(i) => format!("Launching a new EC2 instance: {i}"),
        None => "Launching a new EC2 instance".into(),
    }
}

/// The description of a failed launch.
pub fn failed_launch_description(reason: &str) -> String {
    format!(
        "Launching a new EC2 instance.  Status Reason: {reason}. Launching EC2 instance failed."
    )
}

/// The description of a termination.
pub fn terminate_description(instance: &str) -> String {
    format!("Terminating EC2 instance: {instance}")
}

/// A new activity, in progress (or already ended when `status` is final).
#[derive(Debug, Clone)]
pub struct NewActivity<'a> {
    /// Its group.
    pub group: &'a str,
    /// Its kind.
    pub kind: &'a str,
    /// The instance, when known.
    pub instance_id: Option<&'a str>,
    /// A launch's subnet.
    pub subnet_id: Option<&'a str>,
    /// The description.
    pub description: String,
    /// The cause.
    pub cause: String,
    /// The status.
    pub status: &'a str,
}

/// Records `a` at `now_ms`; gives its row.
pub fn record(conn: &Connection, a: NewActivity<'_>, now_ms: i64) -> rusqlite::Result<ActivityRow> {
    let done = matches!(a.status, SUCCESSFUL | FAILED);
    let row = ActivityRow {
        seq: 0,
        id: crate::sns::new_uuid(),
        group_name: a.group.to_string(),
        kind: a.kind.to_string(),
        instance_id: a.instance_id.map(str::to_string),
        subnet_id: a.subnet_id.map(str::to_string),
        description: a.description,
        cause: a.cause,
        status: a.status.to_string(),
        status_message: None,
        progress: if done { 100 } else { 0 },
        details: details(a.subnet_id),
        start_ms: now_ms,
        end_ms: done.then_some(now_ms),
    };
    db::insert_activity(conn, &row)?;
    Ok(row)
}

/// An activity's `Details` JSON (its subnet and zone).
pub fn details(subnet: Option<&str>) -> String {
    match subnet {
        Some(s) => {
            serde_json::json!({"Subnet ID": s, "Availability Zone": super::model::ZONE}).to_string()
        }
        None => serde_json::json!({"Availability Zone": super::model::ZONE}).to_string(),
    }
}

/// Ends activity `a` with `status` (and the message of a failure) at `now_ms`.
pub fn finish(
    conn: &Connection,
    a: &mut ActivityRow,
    status: &str,
    message: Option<String>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    a.status = status.to_string();
    a.status_message = message;
    a.progress = 100;
    a.end_ms = Some(now_ms);
    db::update_activity(conn, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_796_666_400_000; // 2026-12-07T18:00:00Z

    #[test]
    fn a_created_group_launches_with_both_causes() {
        let created = desired_cause(&DesiredChange::Created, 0, 2, T);
        assert_eq!(
            created,
            "At 2026-12-07T18:00:00Z a user request created an AutoScalingGroup changing the desired capacity from 0 to 2."
        );
        assert_eq!(
            launch_cause(Some(&created), 0, 2, T + 1000),
            "At 2026-12-07T18:00:00Z a user request created an AutoScalingGroup changing the desired capacity from 0 to 2.  At 2026-12-07T18:00:01Z an instance was started in response to a difference between desired and actual capacity, increasing the capacity from 0 to 2."
        );
    }

    #[test]
    fn alarms_scale_in_and_health_checks_are_worded_as_auto_scaling_words_them() {
        let alarm = desired_cause(
            &DesiredChange::Alarm("TargetTracking-web-AlarmLow-1", "ALARM", "cpu50"),
            4,
            2,
            T,
        );
        assert_eq!(
            alarm,
            "At 2026-12-07T18:00:00Z a monitor alarm TargetTracking-web-AlarmLow-1 in state ALARM triggered policy cpu50 changing the desired capacity from 4 to 2."
        );
        assert!(scale_in_cause(None, 4, 2, "i-1", T).ends_with(
            "shrinking the capacity from 4 to 2.  At 2026-12-07T18:00:00Z instance i-1 was selected for termination."
        ));
        assert_eq!(
            unhealthy_cause(Unhealthy::StoppedOrTerminated, T),
            "At 2026-12-07T18:00:00Z an instance was taken out of service in response to an EC2 health check indicating it has been terminated or stopped."
        );
        assert_eq!(
            desired_cause(&DesiredChange::Scheduled(1, 5, 3), 2, 3, T),
            "At 2026-12-07T18:00:00Z a scheduled action update of AutoScalingGroup constraints to min: 1, max: 5, desired: 3 changing the desired capacity from 2 to 3."
        );
    }
}
