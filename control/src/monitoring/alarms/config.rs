//! An alarm's configuration as the control plane keeps it (JSON in the store's `config`
//! column), its states, comparison operators and treatments of missing data, and what a
//! stored alarm reads back as.

use serde::{Deserialize, Serialize};
use state::metrics::{AlarmRow, MetricKey};

/// An alarm's state value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StateValue {
    /// Within the threshold.
    #[serde(rename = "OK")]
    Ok,
    /// Past the threshold.
    #[serde(rename = "ALARM")]
    Alarm,
    /// Not enough data to decide.
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl StateValue {
    /// CloudWatch's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Alarm => "ALARM",
            Self::InsufficientData => "INSUFFICIENT_DATA",
        }
    }

    /// The state spelled `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "OK" => Self::Ok,
            "ALARM" => Self::Alarm,
            "INSUFFICIENT_DATA" => Self::InsufficientData,
            _ => return None,
        })
    }
}

/// How a datapoint is compared with the threshold (the operators without an anomaly band).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    /// `>=`.
    GreaterThanOrEqualToThreshold,
    /// `>`.
    GreaterThanThreshold,
    /// `<`.
    LessThanThreshold,
    /// `<=`.
    LessThanOrEqualToThreshold,
}

impl Comparison {
    /// CloudWatch's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
            Self::GreaterThanThreshold => "GreaterThanThreshold",
            Self::LessThanThreshold => "LessThanThreshold",
            Self::LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
        }
    }

    /// The operator named `s`, if it is one without an anomaly band.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "GreaterThanOrEqualToThreshold" => Self::GreaterThanOrEqualToThreshold,
            "GreaterThanThreshold" => Self::GreaterThanThreshold,
            "LessThanThreshold" => Self::LessThanThreshold,
            "LessThanOrEqualToThreshold" => Self::LessThanOrEqualToThreshold,
            _ => return None,
        })
    }

    /// Whether `value` breaches `threshold`.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::GreaterThanOrEqualToThreshold => value >= threshold,
            Self::GreaterThanThreshold => value > threshold,
            Self::LessThanThreshold => value < threshold,
            Self::LessThanOrEqualToThreshold => value <= threshold,
        }
    }

    /// The words of a reason: "greater than or equal to".
    pub fn words(self) -> &'static str {
        match self {
            Self::GreaterThanOrEqualToThreshold => "greater than or equal to",
            Self::GreaterThanThreshold => "greater than",
            Self::LessThanThreshold => "less than",
            Self::LessThanOrEqualToThreshold => "less than or equal to",
        }
    }
}

/// How missing datapoints are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TreatMissing {
    /// Not considered; all missing gives INSUFFICIENT_DATA (the default).
    Missing,
    /// The current state is kept.
    Ignore,
    /// Missing points breach.
    Breaching,
    /// Missing points are within the threshold.
    NotBreaching,
}

impl TreatMissing {
    /// The treatment spelled `s` (`missing`, `ignore`, `breaching`, `notBreaching`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "missing" => Self::Missing,
            "ignore" => Self::Ignore,
            "breaching" => Self::Breaching,
            "notBreaching" => Self::NotBreaching,
            _ => return None,
        })
    }
}

/// One query of a metric math alarm (`Metrics`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmQuery {
    /// Its id.
    pub id: String,
    /// A metric read: namespace, name, dimensions, period, stat, unit.
    pub metric: Option<QueryMetric>,
    /// An expression over other queries.
    pub expression: Option<String>,
    /// Its label.
    pub label: Option<String>,
    /// Whether it is the one the alarm watches.
    pub return_data: Option<bool>,
    /// The period of an expression query.
    pub period: Option<i32>,
}

/// The metric of an [`AlarmQuery`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryMetric {
    /// The namespace.
    pub namespace: Option<String>,
    /// The metric's name.
    pub metric_name: Option<String>,
    /// Its dimensions (name, value).
    pub dimensions: Vec<(String, String)>,
    /// The period in seconds.
    pub period: i32,
    /// The statistic.
    pub stat: String,
    /// The unit.
    pub unit: Option<String>,
}

/// What a metric alarm watches and how it decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricAlarmConfig {
    /// The namespace (single-metric alarms).
    pub namespace: Option<String>,
    /// The metric's name (single-metric alarms).
    pub metric_name: Option<String>,
    /// The dimensions, as given.
    pub dimensions: Vec<(String, String)>,
    /// A basic statistic (`Average`).
    pub statistic: Option<String>,
    /// A percentile (`p90`).
    pub extended_statistic: Option<String>,
    /// The metric math queries (metric math alarms).
    pub metrics: Vec<AlarmQuery>,
    /// The period in seconds (for a metric math alarm, the returned query's).
    pub period: i64,
    /// Only points of this unit.
    pub unit: Option<String>,
    /// N of "M out of N".
    pub evaluation_periods: u32,
    /// M, as given.
    pub datapoints_to_alarm: Option<u32>,
    /// The threshold.
    pub threshold: f64,
    /// The comparison.
    pub comparison: Comparison,
    /// `TreatMissingData`, as given.
    pub treat_missing_data: Option<String>,
    /// `EvaluateLowSampleCountPercentile`, as given.
    pub evaluate_low_sample_count_percentile: Option<String>,
}

impl MetricAlarmConfig {
    /// M: `DatapointsToAlarm`, else N.
    pub fn m(&self) -> u32 {
        self.datapoints_to_alarm.unwrap_or(self.evaluation_periods)
    }

    /// How missing data is treated.
    pub fn treat_missing(&self) -> TreatMissing {
        self.treat_missing_data
            .as_deref()
            .and_then(TreatMissing::parse)
            .unwrap_or(TreatMissing::Missing)
    }

    /// The statistic's name as shown (`Average`, `p90`; `Expression` for metric math).
    pub fn stat_name(&self) -> &str {
        self.statistic
            .as_deref()
            .or(self.extended_statistic.as_deref())
            .unwrap_or("Expression")
    }

    /// The single metric watched.
    pub fn key(&self) -> Option<MetricKey> {
        Some(MetricKey::new(
            self.namespace.clone()?,
            self.metric_name.clone()?,
            self.dimensions.clone(),
        ))
    }

    /// The value of dimension `name`.
    pub fn dimension(&self, name: &str) -> Option<&str> {
        self.dimensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .or_else(|| {
                self.metrics.iter().find_map(|q| {
                    q.metric.as_ref().and_then(|m| {
                        m.dimensions
                            .iter()
                            .find(|(n, _)| n == name)
                            .map(|(_, v)| v.as_str())
                    })
                })
            })
    }
}

/// What a composite alarm follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompositeAlarmConfig {
    /// The rule, as given.
    pub rule: String,
}

/// Either kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlarmKind {
    /// A metric (or metric math) alarm.
    Metric(Box<MetricAlarmConfig>),
    /// A composite alarm.
    Composite(CompositeAlarmConfig),
}

impl AlarmKind {
    /// `MetricAlarm` or `CompositeAlarm`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Metric(_) => METRIC_ALARM,
            Self::Composite(_) => COMPOSITE_ALARM,
        }
    }
}

/// The type name of metric alarms.
pub const METRIC_ALARM: &str = "MetricAlarm";
/// The type name of composite alarms.
pub const COMPOSITE_ALARM: &str = "CompositeAlarm";

/// An alarm's whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmConfig {
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Actions on entering OK.
    pub ok_actions: Vec<String>,
    /// Actions on entering ALARM.
    pub alarm_actions: Vec<String>,
    /// Actions on entering INSUFFICIENT_DATA.
    pub insufficient_data_actions: Vec<String>,
    /// Its tags (key, value).
    pub tags: Vec<(String, String)>,
    /// What it watches.
    pub kind: AlarmKind,
}

impl AlarmConfig {
    /// The actions run on entering `state`.
    pub fn actions_for(&self, state: StateValue) -> &[String] {
        match state {
            StateValue::Ok => &self.ok_actions,
            StateValue::Alarm => &self.alarm_actions,
            StateValue::InsufficientData => &self.insufficient_data_actions,
        }
    }

    /// Every action, for the store's `ActionPrefix` filter.
    pub fn all_actions(&self) -> Vec<String> {
        let mut all = self.ok_actions.clone();
        all.extend(self.alarm_actions.iter().cloned());
        all.extend(self.insufficient_data_actions.iter().cloned());
        all
    }
}

/// A stored alarm read back: its configuration and state.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    /// Its configuration.
    pub config: AlarmConfig,
    /// Whether its actions run.
    pub actions_enabled: bool,
    /// Its state.
    pub state: StateValue,
    /// Why.
    pub reason: String,
    /// Why, as JSON.
    pub reason_data: Option<String>,
    /// When the state was last updated (ms).
    pub state_updated_ms: i64,
    /// When its value last changed (ms).
    pub state_transitioned_ms: i64,
    /// When the configuration was last put (ms).
    pub config_updated_ms: i64,
}

impl Alarm {
    /// The alarm a row holds; `None` when its configuration does not read (never written
    /// by this crate).
    pub fn from_row(row: &AlarmRow) -> Option<Self> {
        Some(Self {
            config: serde_json::from_str(&row.config).ok()?,
            actions_enabled: row.actions_enabled,
            state: StateValue::parse(&row.state)?,
            reason: row.reason.clone(),
            reason_data: row.reason_data.clone(),
            state_updated_ms: row.state_updated_ms,
            state_transitioned_ms: row.state_transitioned_ms,
            config_updated_ms: row.config_updated_ms,
        })
    }
}

/// Alarm `name`'s ARN in `account`.
pub fn alarm_arn(account: &str, name: &str) -> String {
    format!("arn:aws:cloudwatch:{REGION}:{account}:alarm:{name}")
}

/// The one region.
pub const REGION: &str = "local-1";
