//! A group's instances: TerminateInstanceInAutoScalingGroup, AttachInstances,
//! DetachInstances, SetInstanceHealth, SetInstanceProtection. Each records what is asked
//! (the member's state, an activity) in one transaction; the reconciler does the rest
//! (deregistering, terminating), so that a restart resumes it.

use rusqlite::Connection;
use state::autoscaling::{self as db, ActivityRow, MemberRow};
use state::instances::InstanceState;

use super::activities::{self, ATTACH, DETACH, IN_PROGRESS, NewActivity, SUCCESSFUL, TERMINATE};
use super::checks::{ScalingError, invalid};
use super::groups::group;
use super::model::{DETACHING, HEALTHY, PENDING, TERMINATING, UNHEALTHY, counts};

/// The member `id` of any group, or Auto Scaling's ValidationError.
fn member(conn: &Connection, id: &str) -> Result<MemberRow, ScalingError> {
    db::member_by_id(conn, id)?.ok_or_else(|| {
        invalid(format!(
            "Instance Id not found - No managed instance found for instance ID: {id}"
        ))
    })
}

fn member_of(conn: &Connection, group_name: &str, id: &str) -> Result<MemberRow, ScalingError> {
    let m = db::member_by_id(conn, id)?.filter(|m| m.group_name == group_name);
    m.ok_or_else(|| {
        invalid(format!(
            "The instance {id} is not part of Auto Scaling group {group_name}."
        ))
    })
}

/// Lowers group `name`'s desired capacity by `n` for a user request, refusing to go below
/// its minimum.
fn decrement(conn: &Connection, name: &str, n: i32) -> Result<(i32, i32), ScalingError> {
    let mut g = group(conn, name)?;
    let from = g.config.desired;
    let to = from - n;
    if to < g.config.min {
        return Err(invalid(format!(
            "Currently, desiredSize equals minSize ({}). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size.",
            g.config.min
        )));
    }
    g.config.desired = to;
    db::set_group_config(conn, name, &g.config_text())?;
    Ok((from, to))
}

/// TerminateInstanceInAutoScalingGroup: the activity that terminates it.
pub fn terminate_instance(
    conn: &Connection,
    id: &str,
    decrement_desired: bool,
    now_ms: i64,
) -> Result<ActivityRow, ScalingError> {
    let mut m = member(conn, id)?;
    if !counts(&m) {
        return Err(ScalingError::ActivityInProgress(format!(
            "The instance {id} is already being terminated or detached."
        )));
    }
    let capacity = super::groups::capacity(conn, &m.group_name)?;
    let shrink = if decrement_desired {
        let (_, to) = decrement(conn, &m.group_name, 1)?;
        Some((capacity, to))
    } else {
        None
    };
    m.lifecycle = TERMINATING.into();
    db::put_member(conn, &m)?;
    Ok(activities::record(
        conn,
        NewActivity {
            group: &m.group_name,
            kind: TERMINATE,
            instance_id: Some(id),
            subnet_id: Some(&m.subnet_id),
            description: activities::terminate_description(id),
            cause: activities::user_terminate_cause(id, shrink, now_ms),
            status: IN_PROGRESS,
        },
        now_ms,
    )?)
}

/// AttachInstances: running instances of the group's subnets join it (InService once the
/// reconciler has registered them), the desired capacity raised by as many.
pub fn attach_instances(
    conn: &Connection,
    name: &str,
    ids: &[String],
    now_ms: i64,
) -> Result<(), ScalingError> {
    let mut g = group(conn, name)?;
    let capacity = super::groups::capacity(conn, name)?;
    let to = g.config.desired + ids.len() as i32;
    if to > g.config.max {
        return Err(invalid(format!(
            "Cannot attach instances: the desired capacity {to} would exceed the group's max size {}.",
            g.config.max
        )));
    }
    for (i, id) in ids.iter().enumerate() {
        let row = state::instances::get(conn, id)?
            .filter(|r| r.state == InstanceState::Running)
            .ok_or_else(|| {
                invalid(format!(
                    "Instance {id} is not in correct state (it must be running) or does not exist."
                ))
            })?;
        if db::member_by_id(conn, id)?.is_some() {
            return Err(invalid(format!(
                "The instance {id} is already part of an Auto Scaling group."
            )));
        }
        let subnet = state::enis::of_instance(conn, id)?
            .into_iter()
            .find(|e| e.device_index == Some(0))
            .map(|e| e.subnet_id)
            .unwrap_or_default();
        if !g.config.subnets.contains(&subnet) {
            return Err(invalid(format!(
                "Instance {id} is not in one of the Auto Scaling group's subnets."
            )));
        }
        db::put_member(
            conn,
            &MemberRow {
                instance_id: id.clone(),
                group_name: name.to_string(),
                lifecycle: PENDING.into(),
                health: HEALTHY.into(),
                protected: g.config.protect_new,
                subnet_id: subnet.clone(),
                instance_type: row.instance_type.clone(),
                template: "{}".into(),
                launched_ms: now_ms,
            },
        )?;
        activities::record(
            conn,
            NewActivity {
                group: name,
                kind: ATTACH,
                instance_id: Some(id),
                subnet_id: Some(&subnet),
                description: format!("Attaching an existing EC2 instance: {id}"),
                cause: activities::attach_cause(
                    id,
                    capacity + i,
                    g.config.desired + i as i32 + 1,
                    now_ms,
                ),
                status: SUCCESSFUL,
            },
            now_ms,
        )?;
    }
    g.config.desired = to;
    db::set_group_config(conn, name, &g.config_text())?;
    Ok(())
}

/// DetachInstances: the activities that detach them (deregistered from the target groups
/// first), the desired capacity lowered by as many when asked.
pub fn detach_instances(
    conn: &Connection,
    name: &str,
    ids: &[String],
    decrement_desired: bool,
    now_ms: i64,
) -> Result<Vec<ActivityRow>, ScalingError> {
    let mut members = Vec::new();
    for id in ids {
        let m = member_of(conn, name, id)?;
        if !counts(&m) {
            return Err(invalid(format!(
                "The instance {id} is not in InService or Pending."
            )));
        }
        members.push(m);
    }
    let capacity = super::groups::capacity(conn, name)?;
    let to = if decrement_desired {
        decrement(conn, name, ids.len() as i32)?.1
    } else {
        group(conn, name)?.config.desired
    };
    let mut out = Vec::new();
    for (i, mut m) in members.into_iter().enumerate() {
        m.lifecycle = DETACHING.into();
        db::put_member(conn, &m)?;
        out.push(activities::record(
            conn,
            NewActivity {
                group: name,
                kind: DETACH,
                instance_id: Some(&m.instance_id),
                subnet_id: Some(&m.subnet_id),
                description: format!("Detaching EC2 instance: {}", m.instance_id),
                cause: activities::detach_cause(&m.instance_id, capacity - i, to, now_ms),
                status: IN_PROGRESS,
            },
            now_ms,
        )?);
    }
    Ok(out)
}

/// SetInstanceHealth: `Healthy` or `Unhealthy` (an unhealthy instance is replaced, after
/// the grace period when `respect_grace`).
pub fn set_instance_health(
    conn: &Connection,
    id: &str,
    health: &str,
    respect_grace: bool,
    now_ms: i64,
) -> Result<(), ScalingError> {
    if health != HEALTHY && health != UNHEALTHY {
        return Err(invalid(format!(
            "Valid health status values are Healthy and Unhealthy, not {health}"
        )));
    }
    let mut m = member(conn, id)?;
    if respect_grace && health == UNHEALTHY {
        let g = group(conn, &m.group_name)?;
        if now_ms < m.launched_ms + i64::from(g.config.grace) * 1000 {
            return Ok(());
        }
    }
    m.health = health.to_string();
    db::put_member(conn, &m)?;
    Ok(())
}

/// SetInstanceProtection.
pub fn set_instance_protection(
    conn: &Connection,
    name: &str,
    ids: &[String],
    protected: bool,
) -> Result<(), ScalingError> {
    group(conn, name)?;
    for id in ids {
        let mut m = member_of(conn, name, id)?;
        m.protected = protected;
        db::put_member(conn, &m)?;
    }
    Ok(())
}
