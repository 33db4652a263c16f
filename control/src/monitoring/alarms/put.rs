//! PutMetricAlarm (and what PutCompositeAlarm, in `put_composite.rs`, shares): the checks
//! CloudWatch makes, then the alarm stored
//! (a new one in INSUFFICIENT_DATA, "Unchecked: Initial alarm creation"; an existing one
//! keeps its state) with a `ConfigurationUpdate` history item.

use std::collections::BTreeSet;

use serde_json::json;
use state::metrics::{AlarmRow, HistoryRow, MetricsStore, StoreError};

use super::actions::{Action, BadAction, parse_action};
use super::config::{
    Alarm, AlarmConfig, AlarmKind, AlarmQuery, COMPOSITE_ALARM, Comparison, METRIC_ALARM,
    MetricAlarmConfig, StateValue, TreatMissing,
};
pub use super::put_composite::{PutCompositeAlarm, put_composite_alarm};
use super::rule::RuleError;
use crate::Refusal;
use crate::monitoring::metric_math;
use crate::monitoring::put_metric_data::MAX_DIMENSIONS;
use crate::monitoring::statistics::{Percentile, Stat, Statistic};

/// The most alarms the store keeps.
pub const MAX_ALARMS: usize = 10_000;
/// The longest an alarm may look back: EvaluationPeriods × Period, one day.
pub const MAX_EVALUATION_SECONDS: i64 = 86_400;
/// The most queries of a metric math alarm.
pub const MAX_QUERIES: usize = 10;
/// The reason of a new alarm.
pub const INITIAL_REASON: &str = "Unchecked: Initial alarm creation";

/// PutMetricAlarm, its members as given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PutMetricAlarm {
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
    /// The namespace.
    pub namespace: Option<String>,
    /// The metric's name.
    pub metric_name: Option<String>,
    /// The dimensions (name, value).
    pub dimensions: Vec<(String, String)>,
    /// A basic statistic.
    pub statistic: Option<String>,
    /// A percentile.
    pub extended_statistic: Option<String>,
    /// Metric math queries.
    pub metrics: Vec<AlarmQuery>,
    /// The period.
    pub period: Option<i32>,
    /// The unit.
    pub unit: Option<String>,
    /// N.
    pub evaluation_periods: Option<i32>,
    /// M.
    pub datapoints_to_alarm: Option<i32>,
    /// The threshold.
    pub threshold: Option<f64>,
    /// The comparison operator, as given.
    pub comparison_operator: Option<String>,
    /// `TreatMissingData`.
    pub treat_missing_data: Option<String>,
    /// `EvaluateLowSampleCountPercentile`.
    pub evaluate_low_sample_count_percentile: Option<String>,
    /// `ThresholdMetricId` (anomaly bands, not served).
    pub threshold_metric_id: Option<String>,
    /// Tags (key, value).
    pub tags: Vec<(String, String)>,
    /// The first member given that this endpoint does not serve (`EvaluationCriteria`...).
    pub unsupported: Option<&'static str>,
}

/// Why PutMetricAlarm or PutCompositeAlarm is refused.
#[derive(Debug, thiserror::Error)]
pub enum PutAlarmError {
    /// A member is missing, malformed or out of range.
    #[error("{0}")]
    Validation(String),
    /// A member's value is not one CloudWatch takes.
    #[error("{0}")]
    Value(String),
    /// Members that exclude each other.
    #[error("{0}")]
    Combination(String),
    /// An action ARN.
    #[error(transparent)]
    Action(#[from] BadAction),
    /// The composite rule.
    #[error("The value for parameter AlarmRule is invalid: {0}")]
    Rule(#[source] RuleError),
    /// The store holds as many alarms as it may.
    #[error("The maximum number of alarms ({0}) has been reached.")]
    Limit(usize),
    /// The store failed.
    #[error("cannot store the alarm")]
    Store(#[from] StoreError),
}

impl Refusal for PutAlarmError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::Validation(_) | Self::Action(_) | Self::Rule(_) => "ValidationError",
            Self::Value(_) => "InvalidParameterValue",
            Self::Combination(_) => "InvalidParameterCombination",
            Self::Limit(_) => "LimitExceeded",
            Self::Store(_) => return None,
        })
    }
}

pub(super) fn invalid(m: impl Into<String>) -> PutAlarmError {
    PutAlarmError::Validation(m.into())
}

/// Checks an alarm name: no control characters (the model bounds its length).
pub(super) fn check_name(name: &str) -> Result<(), PutAlarmError> {
    if name.is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
        return Err(invalid(
            "The value for parameter AlarmName is invalid: 1 to 255 characters, no control characters.",
        ));
    }
    Ok(())
}

/// Checks the three action lists; whether one is an EC2 action.
pub(super) fn check_actions(lists: [&[String]; 3]) -> Result<bool, PutAlarmError> {
    let mut ec2 = false;
    for list in lists {
        if list.len() > 5 {
            return Err(invalid("An alarm has at most 5 actions per state."));
        }
        for arn in list {
            ec2 |= matches!(parse_action(arn)?, Action::Ec2(_));
        }
    }
    Ok(ec2)
}

/// Checks `p` and stores its alarm at `now_ms`.
pub fn put_metric_alarm(
    store: &MetricsStore,
    p: &PutMetricAlarm,
    now_ms: i64,
) -> Result<(), PutAlarmError> {
    check_name(&p.name)?;
    if let Some(m) = p.unsupported {
        return Err(invalid(format!(
            "The parameter {m} is not supported by this endpoint."
        )));
    }
    super::tags::check_tags(&p.tags).map_err(PutAlarmError::Value)?;
    let kind = metric_config(p)?;
    let has_ec2 = check_actions([
        &p.ok_actions,
        &p.alarm_actions,
        &p.insufficient_data_actions,
    ])?;
    if has_ec2 && kind.dimension("InstanceId").is_none() {
        return Err(invalid(
            "Invalid use of EC2 action. An EC2 action can only be used if the alarm is monitoring a metric with an InstanceId dimension.",
        ));
    }
    let config = AlarmConfig {
        name: p.name.clone(),
        description: p.description.clone(),
        ok_actions: p.ok_actions.clone(),
        alarm_actions: p.alarm_actions.clone(),
        insufficient_data_actions: p.insufficient_data_actions.clone(),
        tags: p.tags.clone(),
        kind: AlarmKind::Metric(Box::new(kind)),
    };
    store_alarm(store, &config, p.actions_enabled.unwrap_or(true), now_ms)
}

/// The metric alarm `p` describes, checked.
fn metric_config(p: &PutMetricAlarm) -> Result<MetricAlarmConfig, PutAlarmError> {
    let (period, extended) = if p.metrics.is_empty() {
        single_metric(p)?
    } else {
        (metric_math_period(p)?, None)
    };
    let n = p
        .evaluation_periods
        .ok_or_else(|| invalid("The parameter EvaluationPeriods must be specified."))?;
    if n < 1 {
        return Err(invalid(
            "The parameter EvaluationPeriods must be at least 1.",
        ));
    }
    if i64::from(n) * period > MAX_EVALUATION_SECONDS {
        return Err(invalid(format!(
            "The evaluation period (EvaluationPeriods {n} × Period {period} seconds) must not exceed {MAX_EVALUATION_SECONDS} seconds (1 day)."
        )));
    }
    if let Some(m) = p.datapoints_to_alarm
        && !(1..=n).contains(&m)
    {
        return Err(invalid(format!(
            "DatapointsToAlarm ({m}) must be from 1 to EvaluationPeriods ({n})."
        )));
    }
    if p.threshold_metric_id.is_some() {
        return Err(invalid(
            "ThresholdMetricId (anomaly detection bands) is not supported by this endpoint; give a Threshold.",
        ));
    }
    let threshold = p
        .threshold
        .ok_or_else(|| invalid("The parameter Threshold must be specified."))?;
    if !threshold.is_finite() {
        return Err(invalid("The parameter Threshold must be a finite number."));
    }
    let op = p
        .comparison_operator
        .as_deref()
        .ok_or_else(|| invalid("The parameter ComparisonOperator must be specified."))?;
    let comparison = Comparison::parse(op).ok_or_else(|| {
        invalid(format!(
            "The comparison operator {op} needs an anomaly detection band (ThresholdMetricId), which this endpoint does not support."
        ))
    })?;
    if let Some(t) = &p.treat_missing_data
        && TreatMissing::parse(t).is_none()
    {
        return Err(invalid(format!(
            "The value {t} for parameter TreatMissingData is invalid: it is one of breaching, notBreaching, ignore, missing."
        )));
    }
    if let Some(e) = &p.evaluate_low_sample_count_percentile
        && e != "evaluate"
        && e != "ignore"
    {
        return Err(invalid(format!(
            "The value {e} for parameter EvaluateLowSampleCountPercentile is invalid: it is evaluate or ignore."
        )));
    }
    Ok(MetricAlarmConfig {
        namespace: p.namespace.clone(),
        metric_name: p.metric_name.clone(),
        dimensions: p.dimensions.clone(),
        statistic: p.statistic.clone(),
        extended_statistic: extended,
        metrics: p.metrics.clone(),
        period,
        unit: p.unit.clone(),
        evaluation_periods: n as u32,
        datapoints_to_alarm: p.datapoints_to_alarm.map(|m| m as u32),
        threshold,
        comparison,
        treat_missing_data: p.treat_missing_data.clone(),
        evaluate_low_sample_count_percentile: p.evaluate_low_sample_count_percentile.clone(),
    })
}

/// Checks an alarm period: 10, 30 or a multiple of 60 seconds.
fn alarm_period(period: i32) -> Result<i64, PutAlarmError> {
    match period {
        10 | 30 => Ok(i64::from(period)),
        p if p > 0 && p % 60 == 0 => Ok(i64::from(p)),
        p => Err(invalid(format!(
            "The parameter Period must be 10, 30 or a multiple of 60 seconds; {p} is not."
        ))),
    }
}

/// A single-metric alarm's period and percentile, checked.
fn single_metric(p: &PutMetricAlarm) -> Result<(i64, Option<String>), PutAlarmError> {
    let (Some(_), Some(_)) = (&p.namespace, &p.metric_name) else {
        return Err(invalid(
            "The parameters Namespace and MetricName must be specified, or Metrics.",
        ));
    };
    let extended = match (&p.statistic, &p.extended_statistic) {
        (Some(_), Some(_)) => {
            return Err(PutAlarmError::Combination(
                "The parameters Statistic and ExtendedStatistic are mutually exclusive and you have specified both.".into(),
            ));
        }
        (None, None) => {
            return Err(invalid(
                "One of the parameters Statistic and ExtendedStatistic must be specified.",
            ));
        }
        (Some(s), None) => {
            if Statistic::parse(s).is_none() {
                return Err(PutAlarmError::Value(format!(
                    "The value {s} for parameter Statistic is invalid."
                )));
            }
            None
        }
        (None, Some(e)) => {
            if Percentile::parse(e).is_none() {
                return Err(PutAlarmError::Value(format!(
                    "The value {e} for parameter ExtendedStatistic is not supported: percentiles are p followed by a number from 0 to 100, such as p90 or p99.9."
                )));
            }
            Some(e.clone())
        }
    };
    check_dimensions(&p.dimensions)?;
    let period = p
        .period
        .ok_or_else(|| invalid("The parameter Period must be specified."))?;
    Ok((alarm_period(period)?, extended))
}

fn check_dimensions(dimensions: &[(String, String)]) -> Result<(), PutAlarmError> {
    if dimensions.len() > MAX_DIMENSIONS {
        return Err(PutAlarmError::Value(format!(
            "An alarm's metric has at most {MAX_DIMENSIONS} dimensions, not {}.",
            dimensions.len()
        )));
    }
    let mut names = BTreeSet::new();
    for (n, _) in dimensions {
        if !names.insert(n) {
            return Err(PutAlarmError::Value(format!(
                "The dimension {n} is given more than once."
            )));
        }
    }
    Ok(())
}

/// A metric math alarm's queries checked; the period of the one it watches.
fn metric_math_period(p: &PutMetricAlarm) -> Result<i64, PutAlarmError> {
    let single = [
        ("Namespace", p.namespace.is_some()),
        ("MetricName", p.metric_name.is_some()),
        ("Statistic", p.statistic.is_some()),
        ("ExtendedStatistic", p.extended_statistic.is_some()),
        ("Dimensions", !p.dimensions.is_empty()),
        ("Period", p.period.is_some()),
        ("Unit", p.unit.is_some()),
    ];
    if let Some((name, _)) = single.iter().find(|(_, given)| *given) {
        return Err(PutAlarmError::Combination(format!(
            "The parameter {name} cannot be used with Metrics: a metric math alarm gives its metrics in the Metrics list only."
        )));
    }
    if p.metrics.len() > MAX_QUERIES {
        return Err(invalid(format!(
            "The Metrics list holds at most {MAX_QUERIES} queries."
        )));
    }
    let mut ids = BTreeSet::new();
    for q in &p.metrics {
        let id_ok = q.id.starts_with(|c: char| c.is_ascii_lowercase())
            && q.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !id_ok || !ids.insert(q.id.as_str()) {
            return Err(invalid(format!(
                "The query id {} is invalid or repeated: ids start with a lowercase letter, then letters, digits and _.",
                q.id
            )));
        }
        match (&q.metric, &q.expression) {
            (Some(m), None) => {
                alarm_period(m.period)?;
                if Stat::parse(&m.stat).is_none() {
                    return Err(PutAlarmError::Value(format!(
                        "The statistic {} of query {} is invalid.",
                        m.stat, q.id
                    )));
                }
                check_dimensions(&m.dimensions)?;
            }
            (None, Some(e)) => {
                metric_math::parse(e).map_err(|e| {
                    invalid(format!("The expression of query {} is invalid: {e}", q.id))
                })?;
            }
            _ => {
                return Err(invalid(format!(
                    "The query {} must have exactly one of MetricStat and Expression.",
                    q.id
                )));
            }
        }
    }
    let returned: Vec<&AlarmQuery> = p
        .metrics
        .iter()
        .filter(|q| q.return_data != Some(false))
        .collect();
    let [watched] = returned[..] else {
        return Err(invalid(
            "Metrics list must contain exactly one metric matching the ReturnData parameter.",
        ));
    };
    let period = watched
        .metric
        .as_ref()
        .map(|m| m.period)
        .or(watched.period)
        .or_else(|| {
            p.metrics
                .iter()
                .find_map(|q| q.metric.as_ref().map(|m| m.period))
        })
        .ok_or_else(|| invalid("The expression the alarm watches needs a Period."))?;
    alarm_period(period)
}

/// Stores `config`: a new alarm in INSUFFICIENT_DATA, due at once; an existing one keeps
/// its state and its tags. A name of the other kind is refused.
pub(super) fn store_alarm(
    store: &MetricsStore,
    config: &AlarmConfig,
    actions_enabled: bool,
    now_ms: i64,
) -> Result<(), PutAlarmError> {
    let kind = config.kind.type_name();
    let existing = store.alarm(&config.name)?;
    if let Some(e) = &existing
        && e.kind != kind
    {
        return Err(invalid(format!(
            "An alarm named {} exists and is a {}; delete it first.",
            config.name, e.kind
        )));
    }
    // An update ignores the request's tags, as CloudWatch does: TagResource changes them.
    let mut config = config.clone();
    if let Some(tags) = existing
        .as_ref()
        .and_then(Alarm::from_row)
        .map(|a| a.config.tags)
    {
        config.tags = tags;
    }
    let config = &config;
    let serialized = serde_json::to_string(config).unwrap_or_default();
    let metric = match &config.kind {
        AlarmKind::Metric(m) => m.key(),
        AlarmKind::Composite(_) => None,
    };
    let row = AlarmRow {
        name: config.name.clone(),
        kind: kind.to_string(),
        config: serialized.clone(),
        metric,
        actions: config.all_actions(),
        actions_enabled,
        state: StateValue::InsufficientData.as_str().to_string(),
        reason: INITIAL_REASON.to_string(),
        reason_data: None,
        state_updated_ms: now_ms,
        state_transitioned_ms: now_ms,
        config_updated_ms: now_ms,
        next_eval: now_ms.div_euclid(1000),
    };
    let (verb, kind_word, key) = match existing {
        None => ("created", "Create", "createdAlarm"),
        Some(_) => ("updated", "Update", "updatedAlarm"),
    };
    let history = HistoryRow {
        alarm_name: config.name.clone(),
        alarm_type: kind.to_string(),
        time_ms: now_ms,
        item_type: "ConfigurationUpdate".into(),
        summary: format!("Alarm \"{}\" {verb}", config.name),
        data: json!({
            "version": "1.0",
            "type": kind_word,
            key: serde_json::from_str::<serde_json::Value>(&serialized).unwrap_or_default(),
        })
        .to_string(),
    };
    if !store.put_alarm(&row, &history, MAX_ALARMS)? {
        return Err(PutAlarmError::Limit(MAX_ALARMS));
    }
    Ok(())
}

/// The type names, for the API's `AlarmTypes`.
pub const TYPES: [&str; 2] = [METRIC_ALARM, COMPOSITE_ALARM];

#[cfg(test)]
#[path = "put_tests.rs"]
mod tests;
