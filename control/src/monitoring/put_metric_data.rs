//! PutMetricData: custom metrics, checked as CloudWatch checks them, then recorded in one
//! write (all of the request's data or none).

use std::collections::BTreeSet;

use state::metrics::{Aggregate, MetricKey, MetricsStore, Observation, PutError};

use crate::Refusal;

/// The most datums one request carries.
pub const MAX_DATUMS: usize = 1000;
/// The most dimensions a metric has.
pub const MAX_DIMENSIONS: usize = 30;
/// The most values (and counts) one datum carries.
pub const MAX_VALUES: usize = 150;
/// How far in the past a timestamp may be: two weeks.
pub const MAX_AGE: i64 = 14 * 86_400;
/// How far in the future a timestamp may be: two hours.
pub const MAX_AHEAD: i64 = 2 * 3600;
/// The largest magnitude CloudWatch accepts (2^360).
const MAX_MAGNITUDE: f64 = 2.348_515_656_111_023_6e108;

/// A statistic set: the statistics of values that are not sent one by one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatisticSet {
    /// How many values.
    pub sample_count: f64,
    /// Their sum.
    pub sum: f64,
    /// The lowest.
    pub minimum: f64,
    /// The highest.
    pub maximum: f64,
}

/// One datum as the request gives it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Datum {
    /// The metric's name.
    pub metric_name: String,
    /// Its dimensions as (name, value), in the request's order.
    pub dimensions: Vec<(String, String)>,
    /// When, in seconds since the epoch (now when absent).
    pub timestamp: Option<i64>,
    /// One value.
    pub value: Option<f64>,
    /// A statistic set.
    pub statistic_values: Option<StatisticSet>,
    /// Up to 150 values.
    pub values: Option<Vec<f64>>,
    /// How many times each value was seen (as many as `values`).
    pub counts: Option<Vec<f64>>,
    /// The unit (`None` when absent).
    pub unit: Option<String>,
    /// 1 (high resolution) or 60 (the default).
    pub storage_resolution: Option<i32>,
}

/// A PutMetricData request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PutMetricData {
    /// The namespace (not one of AWS's).
    pub namespace: String,
    /// The datums.
    pub data: Vec<Datum>,
}

/// Why PutMetricData is refused.
#[derive(Debug, thiserror::Error)]
pub enum PutMetricDataError {
    /// A namespace of AWS's own.
    #[error(
        "The value {0} for parameter Namespace is invalid: namespaces starting with \"AWS/\" are reserved for AWS services."
    )]
    ReservedNamespace(String),
    /// No datum.
    #[error("The parameter MetricData is required.")]
    NoData,
    /// More than 1000 datums.
    #[error("The collection MetricData must not have a size greater than 1000 (it has {0}).")]
    TooManyData(usize),
    /// A member's value is refused.
    #[error("The value for parameter {parameter} is invalid: {reason}")]
    Invalid {
        /// The member, as `MetricData.member.N.Field`.
        parameter: String,
        /// Why, and what is allowed.
        reason: String,
    },
    /// Members that cannot go together, or none of those one is needed from.
    #[error("{0}")]
    Combination(String),
    /// The store's cap on distinct metrics is reached.
    #[error(
        "The request would make more than {limit} distinct metrics, the limit of this endpoint."
    )]
    TooManyMetrics {
        /// The cap.
        limit: usize,
    },
    /// The store failed.
    #[error("cannot record the metric data")]
    Store(#[source] PutError),
}

impl Refusal for PutMetricDataError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::ReservedNamespace(_) | Self::TooManyData(_) | Self::Invalid { .. } => {
                "InvalidParameterValue"
            }
            Self::NoData => "MissingParameter",
            Self::Combination(_) => "InvalidParameterCombination",
            Self::TooManyMetrics { .. } => "LimitExceeded",
            Self::Store(_) => return None,
        })
    }
}

/// Checks `request` and records its data as put at `now` (seconds since the epoch).
pub fn put_metric_data(
    store: &MetricsStore,
    request: &PutMetricData,
    now: i64,
) -> Result<(), PutMetricDataError> {
    let observations = observations(request, now)?;
    store.put(&observations, now).map_err(|e| match e {
        PutError::TooManyMetrics { limit } => PutMetricDataError::TooManyMetrics { limit },
        e => PutMetricDataError::Store(e),
    })
}

/// The observations of a request, every check passed.
pub fn observations(
    request: &PutMetricData,
    now: i64,
) -> Result<Vec<Observation>, PutMetricDataError> {
    let ns = &request.namespace;
    if ns.starts_with("AWS/") {
        return Err(PutMetricDataError::ReservedNamespace(ns.clone()));
    }
    if ns.is_empty() || ns.starts_with(':') || ns.chars().any(char::is_control) {
        return Err(invalid(
            "Namespace",
            "a namespace is 1 to 255 printable characters, not starting with ':'",
        ));
    }
    match request.data.len() {
        0 => return Err(PutMetricDataError::NoData),
        n if n > MAX_DATUMS => return Err(PutMetricDataError::TooManyData(n)),
        _ => {}
    }
    request
        .data
        .iter()
        .enumerate()
        .map(|(i, d)| observation(ns, d, i + 1, now))
        .collect()
}

fn invalid(parameter: impl Into<String>, reason: impl Into<String>) -> PutMetricDataError {
    PutMetricDataError::Invalid {
        parameter: parameter.into(),
        reason: reason.into(),
    }
}

fn observation(
    namespace: &str,
    d: &Datum,
    n: usize,
    now: i64,
) -> Result<Observation, PutMetricDataError> {
    let at = |field: &str| format!("MetricData.member.{n}.{field}");
    if d.metric_name.is_empty() || d.metric_name.chars().count() > 255 {
        return Err(invalid(
            at("MetricName"),
            "a metric name is 1 to 255 characters",
        ));
    }
    if d.dimensions.len() > MAX_DIMENSIONS {
        return Err(invalid(
            at("Dimensions"),
            format!(
                "a metric has at most {MAX_DIMENSIONS} dimensions, not {}",
                d.dimensions.len()
            ),
        ));
    }
    let mut names = BTreeSet::new();
    for (name, value) in &d.dimensions {
        if name.is_empty() || value.is_empty() {
            return Err(invalid(
                at("Dimensions"),
                "dimension names and values are not empty",
            ));
        }
        if !names.insert(name.as_str()) {
            return Err(invalid(
                at("Dimensions"),
                format!("the dimension name {name} is given twice"),
            ));
        }
    }
    let time = d.timestamp.unwrap_or(now);
    if time < now - MAX_AGE {
        return Err(invalid(
            at("Timestamp"),
            "the timestamp must be no more than two weeks in the past",
        ));
    }
    if time > now + MAX_AHEAD {
        return Err(invalid(
            at("Timestamp"),
            "the timestamp must be no more than two hours in the future",
        ));
    }
    let high_resolution = match d.storage_resolution {
        None | Some(60) => false,
        Some(1) => true,
        Some(other) => {
            return Err(invalid(
                at("StorageResolution"),
                format!("the storage resolution is 1 or 60 (seconds), not {other}"),
            ));
        }
    };
    Ok(Observation {
        key: MetricKey::new(namespace, d.metric_name.clone(), d.dimensions.clone()),
        time,
        high_resolution,
        unit: d.unit.clone().unwrap_or_else(|| "None".into()),
        aggregate: aggregate(d, &at)?,
    })
}

/// A value CloudWatch accepts: finite, within ±2^360; a magnitude under 8.5e-109 is zero.
fn number(v: f64, parameter: &dyn Fn() -> String) -> Result<f64, PutMetricDataError> {
    if !v.is_finite() {
        return Err(invalid(
            parameter(),
            format!("{v} is not a number CloudWatch stores"),
        ));
    }
    if v.abs() > MAX_MAGNITUDE {
        return Err(invalid(
            parameter(),
            "values must be within -2^360 and 2^360",
        ));
    }
    Ok(if v.abs() < 8.515_920e-109 { 0.0 } else { v })
}

fn aggregate(d: &Datum, at: &dyn Fn(&str) -> String) -> Result<Aggregate, PutMetricDataError> {
    let given = [
        d.value.is_some().then_some("Value"),
        d.statistic_values.is_some().then_some("StatisticValues"),
        d.values.is_some().then_some("Values"),
    ];
    let given: Vec<&str> = given.into_iter().flatten().collect();
    if given.len() > 1 {
        return Err(PutMetricDataError::Combination(format!(
            "The parameters {} and {} are mutually exclusive and you have specified both.",
            at(given[0]),
            at(given[1])
        )));
    }
    if d.counts.is_some() && d.values.is_none() {
        return Err(PutMetricDataError::Combination(format!(
            "The parameter {} can only be given with {}.",
            at("Counts"),
            at("Values")
        )));
    }
    if let Some(v) = d.value {
        let v = number(v, &|| at("Value"))?;
        return Ok(Aggregate::of_value(v, 1.0));
    }
    if let Some(s) = d.statistic_values {
        return statistic_set(s, at);
    }
    if let Some(values) = &d.values {
        return values_and_counts(values, d.counts.as_deref(), at);
    }
    Err(PutMetricDataError::Combination(format!(
        "One of the parameters {}, {} or {} must be specified.",
        at("Value"),
        at("StatisticValues"),
        at("Values")
    )))
}

fn statistic_set(
    s: StatisticSet,
    at: &dyn Fn(&str) -> String,
) -> Result<Aggregate, PutMetricDataError> {
    let field = |f: &str| at(&format!("StatisticValues.{f}"));
    let count = number(s.sample_count, &|| field("SampleCount"))?;
    let sum = number(s.sum, &|| field("Sum"))?;
    let min = number(s.minimum, &|| field("Minimum"))?;
    let max = number(s.maximum, &|| field("Maximum"))?;
    if count <= 0.0 {
        return Err(invalid(
            field("SampleCount"),
            "the sample count must be positive",
        ));
    }
    if min > max {
        return Err(invalid(
            field("Minimum"),
            "the minimum must not exceed the maximum",
        ));
    }
    Ok(Aggregate::of_statistics(count, sum, min, max))
}

fn values_and_counts(
    values: &[f64],
    counts: Option<&[f64]>,
    at: &dyn Fn(&str) -> String,
) -> Result<Aggregate, PutMetricDataError> {
    if values.is_empty() || values.len() > MAX_VALUES {
        return Err(invalid(
            at("Values"),
            format!(
                "a datum carries 1 to {MAX_VALUES} values, not {}",
                values.len()
            ),
        ));
    }
    if let Some(c) = counts
        && c.len() != values.len()
    {
        return Err(invalid(
            at("Counts"),
            format!(
                "the arrays Values and Counts must be of the same size ({} values, {} counts)",
                values.len(),
                c.len()
            ),
        ));
    }
    let mut total: Option<Aggregate> = None;
    for (i, &v) in values.iter().enumerate() {
        let v = number(v, &|| at(&format!("Values.member.{}", i + 1)))?;
        let c = match counts {
            Some(c) => number(c[i], &|| at(&format!("Counts.member.{}", i + 1)))?,
            None => 1.0,
        };
        if c < 0.0 {
            return Err(invalid(
                at(&format!("Counts.member.{}", i + 1)),
                "counts are not negative",
            ));
        }
        if c == 0.0 {
            continue;
        }
        let one = Aggregate::of_value(v, c);
        match &mut total {
            Some(t) => t.merge(&one),
            None => total = Some(one),
        }
    }
    total.ok_or_else(|| invalid(at("Counts"), "at least one count must be positive"))
}

#[cfg(test)]
mod tests;
