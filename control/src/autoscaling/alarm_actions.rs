//! What a CloudWatch alarm naming a scaling policy's ARN does: the alarm evaluator's action
//! runner calls [`on_alarm`] when the alarm changes state, and the reconciler re-invokes
//! the policy once a minute while the alarm stays in ALARM ([`reinvoke`]), as CloudWatch
//! does for Auto Scaling actions. The metric's value is read fresh from the store over the
//! alarm's last period, so that a re-invocation sees the load of now, not of the change.

use state::autoscaling::{self as db, Named};
use state::metrics::{MetricKey, Resolution};

use super::activities::DesiredChange;
use super::model::{Group, parse_policy_arn};
use super::policies::{Executed, Execution, Policy, execute};
use crate::Plane;
use crate::monitoring::alarms::config::{Alarm, AlarmKind, StateValue};

/// How often an alarm that stays in ALARM invokes its policies again.
pub const REINVOKE_MS: i64 = 60_000;

/// The value of the metric `alarm` watches over its last period (`None`: no data, or a
/// metric math alarm).
pub fn latest_value(plane: &Plane, alarm: &Alarm, now_ms: i64) -> Option<f64> {
    let AlarmKind::Metric(m) = &alarm.config.kind else {
        return None;
    };
    let key = MetricKey::new(
        m.namespace.clone()?,
        m.metric_name.clone()?,
        m.dimensions.clone(),
    );
    let period = m.period.max(1);
    let resolution = if period < 60 {
        Resolution::Second
    } else {
        Resolution::Minute
    };
    let now = now_ms / 1000;
    // The last whole period, with one more behind it for a sampler that is late.
    let points = plane
        .metrics
        .points(
            &key,
            resolution,
            now - 2 * period,
            now + 1,
            m.unit.as_deref(),
        )
        .ok()?;
    let recent: Vec<_> = points.iter().filter(|p| p.time >= now - period).collect();
    let used: Vec<_> = if recent.is_empty() {
        points.iter().collect()
    } else {
        recent
    };
    if used.is_empty() {
        return None;
    }
    let count: f64 = used.iter().map(|p| p.aggregate.count).sum();
    let sum: f64 = used.iter().map(|p| p.aggregate.sum).sum();
    Some(match m.statistic.as_deref() {
        Some("Sum") => sum,
        Some("Maximum") => used
            .iter()
            .map(|p| p.aggregate.max)
            .fold(f64::MIN, f64::max),
        Some("Minimum") => used
            .iter()
            .map(|p| p.aggregate.min)
            .fold(f64::MAX, f64::min),
        Some("SampleCount") => count,
        _ => sum / count.max(1.0),
    })
}

/// Runs the policy `arn` for `alarm` (in its current state); what it did, or why not.
pub fn on_alarm(plane: &Plane, arn: &str, alarm: &Alarm) -> Result<String, String> {
    let now = super::model::now_ms();
    let (group_name, _) = parse_policy_arn(arn, &plane.account_id)
        .ok_or_else(|| format!("{arn} is not a scaling policy of this account"))?;
    let value = latest_value(plane, alarm, now);
    let threshold = match &alarm.config.kind {
        AlarmKind::Metric(m) => Some(m.threshold),
        AlarmKind::Composite(_) => None,
    };
    let state = match alarm.state {
        StateValue::Ok => "OK",
        StateValue::Alarm => "ALARM",
        StateValue::InsufficientData => "INSUFFICIENT_DATA",
    };
    let done = plane.asg_write(|tx| {
        let Some(row) = db::named_by_arn(tx, Named::Policy, arn)? else {
            return Ok(Err(format!("The scaling policy {arn} does not exist.")));
        };
        let mut p = Policy::from_row(row);
        let Some(g) = db::group_by_name(tx, group_name)?.map(Group::from_row) else {
            return Ok(Err(format!(
                "The Auto Scaling group {group_name} does not exist."
            )));
        };
        if g.config.suspended("AlarmNotification") {
            return Ok(Ok(Executed::Unchanged));
        }
        let e = Execution {
            by: DesiredChange::Alarm(&alarm.config.name, state, &p.name.clone()),
            metric_value: value,
            breach_threshold: threshold,
            honor_cooldown: true,
            scale_in_only: alarm.config.name.contains("-AlarmLow-"),
        };
        Ok::<_, super::checks::ScalingError>(
            execute(tx, &mut p, &e, now).map_err(|e| e.to_string()),
        )
    });
    match done {
        Ok(Ok(Executed::Changed(from, to))) => Ok(format!(
            "changed the desired capacity of {group_name} from {from} to {to}"
        )),
        Ok(Ok(Executed::Unchanged)) => Ok(format!("no change to {group_name}")),
        Ok(Ok(Executed::CoolingDown)) => Ok(format!("{group_name} is in its cooldown")),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(host::error_chain(&e)),
    }
}

/// Invokes again the policies of the alarms that have stayed in ALARM for another minute.
pub async fn reinvoke(
    plane: &Plane,
    invoked: &mut std::collections::HashMap<(String, String), i64>,
    now_ms: i64,
) {
    let policies = match db::named_rows(&plane.db.lock(), Named::Policy, None) {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the scaling policies");
            return;
        }
    };
    for row in policies {
        let filter = state::metrics::AlarmFilter {
            action_prefix: Some(row.arn.clone()),
            state: Some("ALARM".into()),
            ..Default::default()
        };
        let Ok((alarms, _)) = plane.metrics.alarms(&filter, None, 100) else {
            continue;
        };
        for a in alarms.iter().filter_map(Alarm::from_row) {
            if !a.actions_enabled || !a.config.alarm_actions.contains(&row.arn) {
                continue;
            }
            let key = (row.arn.clone(), a.config.name.clone());
            let last = invoked
                .get(&key)
                .copied()
                .unwrap_or(0)
                .max(a.state_transitioned_ms);
            if now_ms - last < REINVOKE_MS {
                continue;
            }
            invoked.insert(key, now_ms);
            match on_alarm(plane, &row.arn, &a) {
                Ok(done) => {
                    tracing::debug!(alarm = %a.config.name, %done, "alarm re-invoked its policy")
                }
                Err(e) => {
                    tracing::warn!(alarm = %a.config.name, error = %e, "alarm re-invocation failed")
                }
            }
        }
    }
}
