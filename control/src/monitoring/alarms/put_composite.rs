//! PutCompositeAlarm: the rule parses, names existing alarms (not the alarm itself) and
//! makes no cycle of composite alarms; actions are SNS topics only.

use std::collections::{BTreeMap, BTreeSet};

use state::metrics::MetricsStore;

use super::config::{AlarmConfig, AlarmKind, CompositeAlarmConfig};
use super::put::{PutAlarmError, check_actions, check_name, invalid, store_alarm};
use super::rule;

/// PutCompositeAlarm, its members as given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PutCompositeAlarm {
    /// The name.
    pub name: String,
    /// The description.
    pub description: Option<String>,
    /// Whether actions run (true when absent).
    pub actions_enabled: Option<bool>,
    /// `OKActions`.
    pub ok_actions: Vec<String>,
    /// `AlarmActions`.
    pub alarm_actions: Vec<String>,
    /// `InsufficientDataActions`.
    pub insufficient_data_actions: Vec<String>,
    /// The rule.
    pub rule: String,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// The first member given that this endpoint does not serve (`ActionsSuppressor`...).
    pub unsupported: Option<&'static str>,
}

/// Checks `p` (its rule names existing alarms, not itself, and makes no cycle) and stores
/// it at `now_ms`.
pub fn put_composite_alarm(
    store: &MetricsStore,
    p: &PutCompositeAlarm,
    now_ms: i64,
) -> Result<(), PutAlarmError> {
    check_name(&p.name)?;
    if let Some(m) = p.unsupported {
        return Err(invalid(format!(
            "The parameter {m} is not supported by this endpoint."
        )));
    }
    super::tags::check_tags(&p.tags).map_err(PutAlarmError::Value)?;
    let parsed = rule::parse(&p.rule).map_err(PutAlarmError::Rule)?;
    if check_actions([
        &p.ok_actions,
        &p.alarm_actions,
        &p.insufficient_data_actions,
    ])? {
        return Err(invalid(
            "A composite alarm's actions are SNS topics: EC2 actions need a metric alarm on an instance.",
        ));
    }
    let children = parsed.alarms();
    if children.contains(&p.name) {
        return Err(invalid(
            "A composite alarm's rule cannot name the alarm itself.",
        ));
    }
    let composites = super::commands::composite_children(store)?;
    let missing: Vec<&String> = children
        .iter()
        .filter(|c| store.alarm(c).map(|a| a.is_none()).unwrap_or(true))
        .collect();
    if !missing.is_empty() {
        return Err(invalid(format!(
            "Could not save the composite alarm as alarms [{}] in the alarm rule do not exist",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if reaches(&composites, &children, &p.name) {
        return Err(invalid(
            "The rule would make a cycle of composite alarms: one of its alarms depends on this one.",
        ));
    }
    let config = AlarmConfig {
        name: p.name.clone(),
        description: p.description.clone(),
        ok_actions: p.ok_actions.clone(),
        alarm_actions: p.alarm_actions.clone(),
        insufficient_data_actions: p.insufficient_data_actions.clone(),
        tags: p.tags.clone(),
        kind: AlarmKind::Composite(CompositeAlarmConfig {
            rule: p.rule.clone(),
        }),
    };
    store_alarm(store, &config, p.actions_enabled.unwrap_or(true), now_ms)
}

/// Whether `target` is reachable from `start` through composites' children (an iterative
/// walk, each alarm visited once).
fn reaches(children_of: &BTreeMap<String, Vec<String>>, start: &[String], target: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&str> = start.iter().map(String::as_str).collect();
    while let Some(a) = stack.pop() {
        if a == target {
            return true;
        }
        if seen.insert(a)
            && let Some(cs) = children_of.get(a)
        {
            stack.extend(cs.iter().map(String::as_str));
        }
    }
    false
}
