//! DescribeAlarms, DescribeAlarmsForMetric, DescribeAlarmHistory, SetAlarmState,
//! DeleteAlarms and Enable/DisableAlarmActions.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use state::metrics::{
    AlarmFilter, AlarmRow, HistoryFilter, HistoryRow, MetricsStore, StateUpdate, StoreError,
};

use super::actions::Transition;
use super::config::{Alarm, AlarmKind, COMPOSITE_ALARM, METRIC_ALARM, StateValue};
use super::rule;
use crate::Refusal;

/// DescribeAlarms' default and largest page.
pub const DEFAULT_RECORDS: usize = 50;
/// DescribeAlarmHistory's default page.
pub const DEFAULT_HISTORY_RECORDS: usize = 100;

/// Why an alarm command is refused.
#[derive(Debug, thiserror::Error)]
pub enum AlarmCommandError {
    /// Members that exclude each other.
    #[error("{0}")]
    Combination(String),
    /// A malformed member.
    #[error("{0}")]
    Validation(String),
    /// A token that no answer gave.
    #[error(
        "The value for parameter NextToken is invalid: it does not come from an earlier answer."
    )]
    NextToken,
    /// An alarm that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// `StateReasonData` is not JSON.
    #[error("The value for parameter StateReasonData is not valid JSON.")]
    Format(#[source] serde_json::Error),
    /// Deleting alarms a remaining composite alarm's rule names.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error("the alarm store failed")]
    Store(#[from] StoreError),
}

impl Refusal for AlarmCommandError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::Combination(_) => "InvalidParameterCombination",
            Self::Validation(_) => "ValidationError",
            Self::NextToken => "InvalidNextToken",
            Self::NotFound(_) => "ResourceNotFound",
            Self::Format(_) => "InvalidFormat",
            Self::Conflict(_) => "ResourceConflict",
            Self::Store(_) => return None,
        })
    }
}

/// Each composite alarm's children (by name), from their rules.
pub fn composite_children(
    store: &MetricsStore,
) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
    let filter = AlarmFilter {
        kinds: vec![COMPOSITE_ALARM.into()],
        ..Default::default()
    };
    let (rows, _) = store.alarms(&filter, None, super::put::MAX_ALARMS)?;
    Ok(rows
        .iter()
        .filter_map(Alarm::from_row)
        .filter_map(|a| match &a.config.kind {
            AlarmKind::Composite(c) => {
                Some((a.config.name.clone(), rule::parse(&c.rule).ok()?.alarms()))
            }
            AlarmKind::Metric(_) => None,
        })
        .collect())
}

/// A DescribeAlarms request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DescribeAlarms {
    /// `AlarmNames`.
    pub names: Vec<String>,
    /// `AlarmNamePrefix`.
    pub prefix: Option<String>,
    /// `AlarmTypes` (only metric alarms when empty).
    pub types: Vec<String>,
    /// `ChildrenOfAlarmName`.
    pub children_of: Option<String>,
    /// `ParentsOfAlarmName`.
    pub parents_of: Option<String>,
    /// `StateValue`.
    pub state: Option<String>,
    /// `ActionPrefix`.
    pub action_prefix: Option<String>,
    /// `MaxRecords`.
    pub max_records: Option<i32>,
    /// `NextToken`.
    pub next_token: Option<String>,
}

/// A page of alarms.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmPage {
    /// The alarms, by name.
    pub alarms: Vec<Alarm>,
    /// Where the next page starts.
    pub next_token: Option<String>,
}

fn token(name: &str) -> String {
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    format!("da1-{hex}")
}

fn untoken(t: &str) -> Option<String> {
    let hex = t.strip_prefix("da1-")?;
    if hex.len() % 2 != 0 || hex.len() > 2048 {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// DescribeAlarms.
pub fn describe_alarms(
    store: &MetricsStore,
    d: &DescribeAlarms,
) -> Result<AlarmPage, AlarmCommandError> {
    if !d.names.is_empty() && d.prefix.is_some() {
        return Err(AlarmCommandError::Combination(
            "The parameters AlarmNames and AlarmNamePrefix are mutually exclusive.".into(),
        ));
    }
    let family = d.children_of.is_some() || d.parents_of.is_some();
    if family
        && (!d.names.is_empty()
            || d.prefix.is_some()
            || d.state.is_some()
            || d.action_prefix.is_some()
            || (d.children_of.is_some() && d.parents_of.is_some()))
    {
        return Err(AlarmCommandError::Combination(
            "ChildrenOfAlarmName and ParentsOfAlarmName take no other filter but AlarmTypes, MaxRecords and NextToken.".into(),
        ));
    }
    let limit = match d.max_records {
        None => DEFAULT_RECORDS,
        Some(n) if (1..=100).contains(&n) => n as usize,
        Some(n) => {
            return Err(AlarmCommandError::Validation(format!(
                "The parameter MaxRecords must be from 1 to 100, not {n}."
            )));
        }
    };
    let after = match &d.next_token {
        None => None,
        Some(t) => Some(untoken(t).ok_or(AlarmCommandError::NextToken)?),
    };
    let mut names = d.names.clone();
    if let Some(parent) = &d.children_of {
        let children = composite_children(store)?;
        names = children.get(parent).cloned().unwrap_or_default();
        if names.is_empty() {
            return Ok(AlarmPage {
                alarms: Vec::new(),
                next_token: None,
            });
        }
    }
    if let Some(child) = &d.parents_of {
        names = composite_children(store)?
            .into_iter()
            .filter(|(_, cs)| cs.contains(child))
            .map(|(p, _)| p)
            .collect();
        if names.is_empty() {
            return Ok(AlarmPage {
                alarms: Vec::new(),
                next_token: None,
            });
        }
    }
    let kinds = if d.types.is_empty() {
        if family {
            vec![METRIC_ALARM.into(), COMPOSITE_ALARM.into()]
        } else {
            vec![METRIC_ALARM.into()]
        }
    } else {
        d.types.clone()
    };
    let filter = AlarmFilter {
        names,
        prefix: d.prefix.clone(),
        kinds,
        state: d.state.clone(),
        action_prefix: d.action_prefix.clone(),
    };
    let (rows, more) = store.alarms(&filter, after.as_deref(), limit)?;
    let alarms: Vec<Alarm> = rows.iter().filter_map(Alarm::from_row).collect();
    let next_token = more.then(|| rows.last().map(|r| token(&r.name))).flatten();
    Ok(AlarmPage { alarms, next_token })
}

/// DescribeAlarmsForMetric: the metric alarms on a metric, narrowed by what is given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlarmsForMetric {
    /// The namespace.
    pub namespace: String,
    /// The metric's name.
    pub metric_name: String,
    /// The dimensions (all of them, when given).
    pub dimensions: Option<Vec<(String, String)>>,
    /// The statistic.
    pub statistic: Option<String>,
    /// The percentile.
    pub extended_statistic: Option<String>,
    /// The period.
    pub period: Option<i32>,
    /// The unit.
    pub unit: Option<String>,
}

/// DescribeAlarmsForMetric.
pub fn describe_alarms_for_metric(
    store: &MetricsStore,
    q: &AlarmsForMetric,
) -> Result<Vec<Alarm>, AlarmCommandError> {
    let rows = store.alarms_for_metric(&q.namespace, &q.metric_name, super::put::MAX_ALARMS)?;
    let mut wanted_dims = q.dimensions.clone();
    if let Some(d) = &mut wanted_dims {
        d.sort();
    }
    Ok(rows
        .iter()
        .filter(|r| match (&wanted_dims, &r.metric) {
            (Some(d), Some(k)) => *d == k.dimensions,
            _ => true,
        })
        .filter_map(Alarm::from_row)
        .filter(|a| match &a.config.kind {
            AlarmKind::Metric(m) => {
                q.statistic
                    .as_ref()
                    .is_none_or(|s| m.statistic.as_ref() == Some(s))
                    && q.extended_statistic
                        .as_ref()
                        .is_none_or(|s| m.extended_statistic.as_ref() == Some(s))
                    && q.period.is_none_or(|p| i64::from(p) == m.period)
                    && q.unit.as_ref().is_none_or(|u| m.unit.as_ref() == Some(u))
            }
            AlarmKind::Composite(_) => false,
        })
        .collect())
}

/// A DescribeAlarmHistory request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DescribeHistory {
    /// One alarm.
    pub alarm_name: Option<String>,
    /// `AlarmTypes` (only metric alarms when empty).
    pub types: Vec<String>,
    /// `HistoryItemType`.
    pub item_type: Option<String>,
    /// `StartDate` (ms).
    pub start_ms: Option<i64>,
    /// `EndDate` (ms).
    pub end_ms: Option<i64>,
    /// `MaxRecords`.
    pub max_records: Option<i32>,
    /// `NextToken`.
    pub next_token: Option<String>,
    /// `ScanBy` TimestampAscending.
    pub ascending: bool,
}

/// A page of history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryList {
    /// The items.
    pub items: Vec<HistoryRow>,
    /// Where the next page starts.
    pub next_token: Option<String>,
}

/// DescribeAlarmHistory.
pub fn describe_alarm_history(
    store: &MetricsStore,
    d: &DescribeHistory,
) -> Result<HistoryList, AlarmCommandError> {
    let limit = match d.max_records {
        None => DEFAULT_HISTORY_RECORDS,
        Some(n) if (1..=100).contains(&n) => n as usize,
        Some(n) => {
            return Err(AlarmCommandError::Validation(format!(
                "The parameter MaxRecords must be from 1 to 100, not {n}."
            )));
        }
    };
    let after = match &d.next_token {
        None => None,
        Some(t) => Some(
            t.strip_prefix("dh1-")
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or(AlarmCommandError::NextToken)?,
        ),
    };
    let filter = HistoryFilter {
        alarm_name: d.alarm_name.clone(),
        alarm_types: if d.types.is_empty() {
            vec![METRIC_ALARM.into()]
        } else {
            d.types.clone()
        },
        item_type: d.item_type.clone(),
        start_ms: d.start_ms,
        end_ms: d.end_ms,
        ascending: d.ascending,
    };
    let page = store.alarm_history(&filter, after, limit)?;
    Ok(HistoryList {
        items: page.items,
        next_token: page.next.map(|n| format!("dh1-{n}")),
    })
}

/// The history item of a state change.
pub fn state_history(
    alarm: &Alarm,
    old: (StateValue, &str, Option<&str>),
    new: (StateValue, &str, Option<&str>),
    now_ms: i64,
) -> HistoryRow {
    let side = |(s, reason, data): (StateValue, &str, Option<&str>)| {
        let mut v = json!({"stateValue": s.as_str(), "stateReason": reason});
        if let Some(d) = data.and_then(|d| serde_json::from_str::<Value>(d).ok()) {
            v["stateReasonData"] = d;
        }
        v
    };
    HistoryRow {
        alarm_name: alarm.config.name.clone(),
        alarm_type: alarm.config.kind.type_name().into(),
        time_ms: now_ms,
        item_type: "StateUpdate".into(),
        summary: format!(
            "Alarm updated from {} to {}",
            old.0.as_str(),
            new.0.as_str()
        ),
        data: json!({"version": "1.0", "oldState": side(old), "newState": side(new)}).to_string(),
    }
}

/// Sets `row`'s alarm to `state` (recording the change in its history) unless its
/// configuration changed since `config_seen_ms`; the transition to act on when the value
/// changed.
pub fn change_state(
    store: &MetricsStore,
    alarm: &Alarm,
    state: StateValue,
    reason: &str,
    reason_data: Option<&str>,
    now_ms: i64,
    config_seen_ms: Option<i64>,
) -> Result<Option<Transition>, StoreError> {
    let history = state_history(
        alarm,
        (alarm.state, &alarm.reason, alarm.reason_data.as_deref()),
        (state, reason, reason_data),
        now_ms,
    );
    let changed = state != alarm.state;
    let update = StateUpdate {
        state: state.as_str(),
        reason,
        reason_data,
        now_ms,
        config_seen_ms,
    };
    let history = if changed { vec![history] } else { Vec::new() };
    let Some(before) = store.set_alarm_state(&alarm.config.name, &update, &history)? else {
        return Ok(None);
    };
    let old_state = StateValue::parse(&before).unwrap_or(alarm.state);
    if old_state == state {
        return Ok(None);
    }
    let mut now = alarm.clone();
    now.state = state;
    now.reason = reason.to_string();
    now.reason_data = reason_data.map(str::to_string);
    now.state_updated_ms = now_ms;
    now.state_transitioned_ms = now_ms;
    Ok(Some(Transition {
        alarm: now,
        old_state,
    }))
}

/// SetAlarmState: the transition to act on when the value changed.
pub fn set_alarm_state(
    store: &MetricsStore,
    name: &str,
    state: StateValue,
    reason: &str,
    reason_data: Option<&str>,
    now_ms: i64,
) -> Result<Option<Transition>, AlarmCommandError> {
    if let Some(d) = reason_data {
        serde_json::from_str::<Value>(d).map_err(AlarmCommandError::Format)?;
    }
    let row = store
        .alarm(name)?
        .ok_or_else(|| AlarmCommandError::NotFound(format!("Alarm {name} not found")))?;
    let alarm = readable(&row)?;
    Ok(change_state(
        store,
        &alarm,
        state,
        reason,
        reason_data,
        now_ms,
        None,
    )?)
}

fn readable(row: &AlarmRow) -> Result<Alarm, AlarmCommandError> {
    Alarm::from_row(row)
        .ok_or_else(|| AlarmCommandError::NotFound(format!("Alarm {} not found", row.name)))
}

/// DeleteAlarms: all or none; an alarm a remaining composite alarm names stays.
pub fn delete_alarms(store: &MetricsStore, names: &[String]) -> Result<(), AlarmCommandError> {
    let children = composite_children(store)?;
    for (parent, cs) in &children {
        if names.contains(parent) {
            continue;
        }
        if let Some(c) = cs.iter().find(|c| names.contains(c)) {
            return Err(AlarmCommandError::Conflict(format!(
                "Alarm {c} is in the rule of composite alarm {parent}, which is not being deleted."
            )));
        }
    }
    let missing = store.delete_alarms(names)?;
    if missing.is_empty() {
        Ok(())
    } else {
        Err(AlarmCommandError::NotFound(format!(
            "Could not find alarm(s) [{}]; none was deleted.",
            missing.join(", ")
        )))
    }
}

/// Enable/DisableAlarmActions (names that do not exist are passed over, as CloudWatch does).
pub fn set_alarm_actions(
    store: &MetricsStore,
    names: &[String],
    enabled: bool,
) -> Result<(), AlarmCommandError> {
    store.set_alarm_actions(names, enabled)?;
    Ok(())
}

#[cfg(test)]
#[path = "commands_tests.rs"]
mod tests;
