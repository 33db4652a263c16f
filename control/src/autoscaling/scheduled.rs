//! Scheduled actions: PutScheduledUpdateGroupAction (a start time, or a cron recurrence in
//! a time zone between a start and an end), DescribeScheduledActions,
//! DeleteScheduledAction; the reconciler fires those due ([`fire_due`]).

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use state::autoscaling::{self as db, Named, NamedRow};

use super::activities::DesiredChange;
use super::capacity::clamp;
use super::checks::{ScalingError, check_name, check_sizes, invalid};
use super::cron;
use super::groups::{change_desired, group};
use super::model::scheduled_arn;
use crate::Plane;

/// A scheduled action's settings (and PutScheduledUpdateGroupAction's input).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScheduledConfig {
    /// `StartTime` (ms).
    pub start_ms: Option<i64>,
    /// `EndTime` (ms).
    pub end_ms: Option<i64>,
    /// `Recurrence`.
    pub recurrence: Option<String>,
    /// `TimeZone`.
    pub time_zone: Option<String>,
    /// `MinSize`.
    pub min: Option<i32>,
    /// `MaxSize`.
    pub max: Option<i32>,
    /// `DesiredCapacity`.
    pub desired: Option<i32>,
}

/// A scheduled action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    /// Its ARN.
    pub arn: String,
    /// Its group.
    pub group: String,
    /// Its name.
    pub name: String,
    /// Its settings.
    pub config: ScheduledConfig,
    /// When it next fires (ms).
    pub next_ms: Option<i64>,
}

impl Scheduled {
    fn from_row(r: NamedRow) -> Self {
        Self {
            config: serde_json::from_str(&r.config).unwrap_or_default(),
            arn: r.arn,
            group: r.group_name,
            name: r.name,
            next_ms: r.next_ms,
        }
    }
}

/// When an action of `c` next fires after `after_ms` (`None`: never again).
fn next_fire(c: &ScheduledConfig, after_ms: i64) -> Result<Option<i64>, ScalingError> {
    let next = match &c.recurrence {
        None => c.start_ms.filter(|s| *s > after_ms),
        Some(r) => {
            let from = c.start_ms.map_or(after_ms, |s| (s - 1).max(after_ms));
            cron::next_after(r, c.time_zone.as_deref(), from).map_err(|e| invalid(e.to_string()))?
        }
    };
    Ok(next.filter(|n| c.end_ms.is_none_or(|e| *n <= e)))
}

/// PutScheduledUpdateGroupAction at `now_ms`.
pub fn put_scheduled(
    conn: &Connection,
    account: &str,
    group_name: &str,
    name: &str,
    c: &ScheduledConfig,
    now_ms: i64,
) -> Result<Scheduled, ScalingError> {
    check_name("ScheduledActionName", name)?;
    group(conn, group_name)?;
    if c.min.is_none() && c.max.is_none() && c.desired.is_none() {
        return Err(invalid(
            "At least one of MinSize, MaxSize or DesiredCapacity must be specified.",
        ));
    }
    if let (Some(min), Some(max)) = (c.min, c.max) {
        check_sizes(min, max, c.desired.unwrap_or(min))?;
    }
    if let Some(r) = &c.recurrence {
        cron::check(r, c.time_zone.as_deref()).map_err(|e| invalid(e.to_string()))?;
    } else if c.time_zone.is_some() {
        cron::zone(c.time_zone.as_deref()).map_err(|e| invalid(e.to_string()))?;
    }
    match (c.start_ms, c.end_ms, &c.recurrence) {
        (None, _, None) => {
            return Err(invalid("Either StartTime or Recurrence must be specified."));
        }
        (Some(s), _, None) if s < now_ms => {
            return Err(invalid("Given start time is in the past"));
        }
        (Some(s), Some(e), _) if e <= s => {
            return Err(invalid("End time must be after the start time."));
        }
        (_, Some(e), _) if e < now_ms => {
            return Err(invalid("Given end time is in the past"));
        }
        _ => {}
    }
    let next = next_fire(c, now_ms - 1)?;
    let existing = db::named_by_name(conn, Named::Scheduled, group_name, name)?;
    let arn = existing.map_or_else(
        || scheduled_arn(account, &crate::sns::new_uuid(), group_name, name),
        |e| e.arn,
    );
    let row = NamedRow {
        seq: 0,
        arn: arn.clone(),
        group_name: group_name.into(),
        name: name.into(),
        config: serde_json::to_string(c).unwrap_or_else(|_| "{}".into()),
        next_ms: next,
    };
    db::put_named(conn, Named::Scheduled, &row)?;
    Ok(Scheduled::from_row(row))
}

/// DescribeScheduledActions: a group's (or every) action, restricted to `names`.
pub fn scheduled(
    conn: &Connection,
    group_name: Option<&str>,
    names: &[String],
) -> Result<Vec<Scheduled>, ScalingError> {
    if let Some(g) = group_name {
        group(conn, g)?;
    }
    Ok(db::named_rows(conn, Named::Scheduled, group_name)?
        .into_iter()
        .map(Scheduled::from_row)
        .filter(|s| names.is_empty() || names.contains(&s.name))
        .collect())
}

/// DeleteScheduledAction.
pub fn delete_scheduled(
    conn: &Connection,
    group_name: &str,
    name: &str,
) -> Result<(), ScalingError> {
    group(conn, group_name)?;
    if !db::delete_named(conn, Named::Scheduled, group_name, name)? {
        return Err(invalid(format!(
            "Scheduled Update Group Action name not found - Could not find scheduled action {name} for group {group_name}"
        )));
    }
    Ok(())
}

/// Applies one due action to its group and sets when it fires next (or drops it).
fn fire(conn: &Connection, s: &Scheduled, now_ms: i64) -> Result<(), ScalingError> {
    let mut g = group(conn, &s.group)?;
    if g.config.suspended("ScheduledActions") || g.config.deleting {
        return Ok(());
    }
    let c = &s.config;
    let min = c.min.unwrap_or(g.config.min);
    let max = c.max.unwrap_or(g.config.max).max(min);
    let desired = clamp(c.desired.unwrap_or(g.config.desired), min, max);
    g.config.min = min;
    g.config.max = max;
    db::set_group_config(conn, &g.name, &g.config_text())?;
    change_desired(
        conn,
        &mut g,
        desired,
        &DesiredChange::Scheduled(min, max, desired),
        now_ms,
    )?;
    let next = next_fire(c, now_ms)?;
    match next {
        Some(n) if c.recurrence.is_some() => {
            let row = NamedRow {
                seq: 0,
                arn: s.arn.clone(),
                group_name: s.group.clone(),
                name: s.name.clone(),
                config: serde_json::to_string(c).unwrap_or_else(|_| "{}".into()),
                next_ms: Some(n),
            };
            db::put_named(conn, Named::Scheduled, &row)?;
        }
        _ => {
            db::delete_named(conn, Named::Scheduled, &s.group, &s.name)?;
        }
    }
    Ok(())
}

/// Fires every scheduled action due at `now_ms`.
pub fn fire_due(plane: &Plane, now_ms: i64) -> rusqlite::Result<()> {
    let due = db::due_scheduled(&plane.db.lock(), now_ms)?;
    for row in due {
        let s = Scheduled::from_row(row);
        tracing::info!(group = %s.group, action = %s.name, "scheduled action fires");
        if let Err(e) = plane.asg_write(|tx| fire(tx, &s, now_ms)) {
            tracing::warn!(action = %s.name, error = %host::error_chain(&e), "scheduled action failed");
            // Drop it so that it does not fire again each round.
            plane.asg_write(|tx| {
                db::delete_named(tx, Named::Scheduled, &s.group, &s.name).map(drop)
            })?;
        }
    }
    Ok(())
}
