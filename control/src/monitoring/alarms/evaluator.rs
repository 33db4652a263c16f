//! The evaluator: every round (the agent runs one every 10 seconds), the metric alarms
//! that are due read their evaluation range from the store and go through the pure
//! [`evaluate`](super::evaluate::evaluate); then every composite alarm's rule is checked
//! against its children's states (a few passes, for composites of composites); each change
//! is stored with its history item, and the actions of the new state run when the alarm's
//! actions are enabled, each outcome in the history too.
//!
//! Alarms of 10- and 30-second periods are due every 10 seconds, the others every minute.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use state::metrics::{HistoryRow, MetricsStore, StoreError};

use super::actions::{Transition, run_action};
use super::commands::change_state;
use super::config::{
    Alarm, AlarmKind, COMPOSITE_ALARM, METRIC_ALARM, MetricAlarmConfig, StateValue, alarm_arn,
};
use super::evaluate::{Point, Window, evaluate, evaluation_range, json_time};
use super::rule;
use crate::Plane;
use crate::monitoring::get_metric_data::{self, MetricDataQuery, MetricDataRequest, MetricStat};
use crate::monitoring::statistics::{self, Stat};

/// The most alarms one round evaluates (the rest wait for the next).
pub const MAX_PER_ROUND: usize = 10_000;
/// How many passes over the composite alarms one round makes.
pub const COMPOSITE_PASSES: usize = 8;

/// How long until an alarm of `period` seconds is due again.
pub fn interval(period: i64) -> i64 {
    if period < 60 { 10 } else { 60 }
}

/// One round at `now_ms`: the changes it made, to act on.
pub fn evaluate_round(
    store: &MetricsStore,
    account: &str,
    now_ms: i64,
) -> Result<Vec<Transition>, StoreError> {
    let now = now_ms.div_euclid(1000);
    let mut changes = Vec::new();
    let due = store.due_alarms(METRIC_ALARM, now, MAX_PER_ROUND)?;
    // When each is next due, written in one go before they are evaluated.
    let next: Vec<(String, i64)> = due
        .iter()
        .map(|row| {
            let period = Alarm::from_row(row).and_then(|a| match a.config.kind {
                AlarmKind::Metric(m) => Some(m.period),
                AlarmKind::Composite(_) => None,
            });
            (row.name.clone(), now + period.map_or(60, interval))
        })
        .collect();
    store.set_next_evals(&next)?;
    for row in due {
        let Some(alarm) = Alarm::from_row(&row) else {
            continue;
        };
        let AlarmKind::Metric(m) = &alarm.config.kind else {
            continue;
        };
        let window = Window {
            newest: statistics::align(now, m.period) - m.period,
            range: evaluation_range(m.evaluation_periods),
            query_ms: now_ms,
        };
        let points = match read_points(store, m, window, now) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(alarm = %row.name, error = %e, "cannot read the alarm's metric");
                continue;
            }
        };
        let Some(d) = evaluate(m, alarm.state, &points, window) else {
            continue;
        };
        if d.state == alarm.state {
            continue;
        }
        let data = d.reason_data.to_string();
        if let Some(t) = change_state(
            store,
            &alarm,
            d.state,
            &d.reason,
            Some(&data),
            now_ms,
            Some(alarm.config_updated_ms),
        )? {
            changes.push(t);
        }
    }
    changes.extend(evaluate_composites(store, account, now_ms)?);
    Ok(changes)
}

/// The evaluation range's points of `m`.
fn read_points(
    store: &MetricsStore,
    m: &MetricAlarmConfig,
    window: Window,
    now: i64,
) -> Result<Vec<Point>, String> {
    let start = window.newest - m.period * (i64::from(window.range) - 1);
    let end = window.newest + m.period;
    if let Some(key) = m.key() {
        let stat = Stat::parse(m.stat_name()).ok_or("the alarm's statistic does not parse")?;
        let periods =
            statistics::periods(store, &key, (start, end), m.period, m.unit.as_deref(), now)
                .map_err(|e| e.to_string())?;
        let mut out: Vec<Point> = Vec::new();
        for ((time, _unit), a) in periods {
            // One point per period: the first unit's, when several were put.
            if out.last().is_some_and(|p| p.time == time) {
                continue;
            }
            if let Some(value) = stat.of(&a) {
                out.push(Point {
                    time,
                    value,
                    sample_count: Some(a.count),
                });
            }
        }
        return Ok(out);
    }
    // Metric math: the queries through GetMetricData, the returned one's series.
    let queries = m
        .metrics
        .iter()
        .map(|q| MetricDataQuery {
            id: q.id.clone(),
            metric_stat: q.metric.as_ref().map(|s| MetricStat {
                namespace: s.namespace.clone(),
                metric_name: s.metric_name.clone(),
                dimensions: s.dimensions.clone(),
                period: s.period,
                stat: s.stat.clone(),
                unit: s.unit.clone(),
            }),
            expression: q.expression.clone(),
            label: q.label.clone(),
            return_data: Some(q.return_data != Some(false)),
        })
        .collect();
    let request = MetricDataRequest {
        queries,
        start,
        end,
        ascending: true,
        max_datapoints: None,
        next_token: None,
    };
    let page = get_metric_data::get_metric_data(store, &request, now).map_err(|e| e.to_string())?;
    let Some(r) = page.results.into_iter().next() else {
        return Ok(Vec::new());
    };
    Ok(r.timestamps
        .into_iter()
        .zip(r.values)
        .map(|(time, value)| Point {
            time,
            value,
            sample_count: None,
        })
        .collect())
}

/// Every composite alarm against its children's states, a few passes.
fn evaluate_composites(
    store: &MetricsStore,
    account: &str,
    now_ms: i64,
) -> Result<Vec<Transition>, StoreError> {
    let filter = state::metrics::AlarmFilter {
        kinds: vec![COMPOSITE_ALARM.into()],
        ..Default::default()
    };
    let (rows, _) = store.alarms(&filter, None, MAX_PER_ROUND)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let composites: Vec<(Alarm, rule::Rule)> = rows
        .iter()
        .filter_map(Alarm::from_row)
        .filter_map(|a| match &a.config.kind {
            AlarmKind::Composite(c) => rule::parse(&c.rule).ok().map(|r| (a.clone(), r)),
            AlarmKind::Metric(_) => None,
        })
        .collect();
    let mut changes = Vec::new();
    for _ in 0..COMPOSITE_PASSES {
        let states: BTreeMap<String, (StateValue, i64)> = store
            .all_alarm_states()?
            .into_iter()
            .filter_map(|(n, s, t)| Some((n, (StateValue::parse(&s)?, t))))
            .collect();
        let mut changed = false;
        for (alarm, rule) in &composites {
            let Some(&(current, _)) = states.get(&alarm.config.name) else {
                continue;
            };
            let state_of = |n: &str| states.get(n).map(|s| s.0);
            let children = rule.alarms();
            let state = if rule.holds(&state_of) {
                StateValue::Alarm
            } else if children.iter().any(|c| !states.contains_key(c)) {
                StateValue::InsufficientData
            } else {
                StateValue::Ok
            };
            if state == current {
                continue;
            }
            // The child that changed last among those in the new state tells why.
            let trigger = children
                .iter()
                .filter_map(|c| states.get(c).map(|s| (c, s)))
                .filter(|(_, s)| (s.0 == StateValue::Alarm) == (state == StateValue::Alarm))
                .max_by_key(|(_, s)| s.1);
            let (reason, data) = match trigger {
                Some((c, (s, t))) => (
                    format!(
                        "{} transitioned to {} at {}",
                        alarm_arn(account, c),
                        s.as_str(),
                        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(*t)
                            .unwrap_or_default()
                            .format("%A %d %B, %Y %H:%M:%S UTC")
                    ),
                    json!({"triggeringAlarms": [{
                        "arn": alarm_arn(account, c),
                        "state": {"value": s.as_str(), "timestamp": json_time(*t)},
                    }]}),
                ),
                None => (
                    format!(
                        "The rule of composite alarm {} evaluates to {}",
                        alarm.config.name,
                        state.as_str()
                    ),
                    json!({"triggeringAlarms": []}),
                ),
            };
            let mut current_alarm = alarm.clone();
            current_alarm.state = current;
            if let Some(t) = change_state(
                store,
                &current_alarm,
                state,
                &reason,
                Some(&data.to_string()),
                now_ms,
                Some(alarm.config_updated_ms),
            )? {
                changes.push(t);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    Ok(changes)
}

/// Runs the actions of each change whose alarm has them enabled, recording each outcome.
pub async fn act(plane: &Arc<Plane>, changes: Vec<Transition>) {
    for t in changes {
        if !t.alarm.actions_enabled {
            continue;
        }
        let arns = t.alarm.config.actions_for(t.alarm.state).to_vec();
        let mut items = Vec::new();
        for arn in arns {
            let o = run_action(plane, &t, &arn).await;
            if !o.ok {
                tracing::warn!(alarm = %t.alarm.config.name, %arn, detail = %o.detail, "alarm action failed");
            }
            items.push(HistoryRow {
                alarm_name: t.alarm.config.name.clone(),
                alarm_type: t.alarm.config.kind.type_name().into(),
                time_ms: chrono::Utc::now().timestamp_millis(),
                item_type: "Action".into(),
                summary: o.summary(),
                data: o.data().to_string(),
            });
        }
        if items.is_empty() {
            continue;
        }
        let store = plane.metrics.clone();
        let written = tokio::task::spawn_blocking(move || store.add_alarm_history(&items)).await;
        if let Ok(Err(e)) = written {
            tracing::warn!(error = %e, "cannot record alarm actions");
        }
    }
}

/// One round of evaluation and the actions of its changes: what the agent's loop runs.
pub async fn run_round(plane: &Arc<Plane>) -> Result<usize, StoreError> {
    let store = plane.metrics.clone();
    let account = plane.account_id.clone();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let changes =
        match tokio::task::spawn_blocking(move || evaluate_round(&store, &account, now_ms)).await {
            Ok(r) => r?,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => return Ok(0),
        };
    let n = changes.len();
    act(plane, changes).await;
    Ok(n)
}
