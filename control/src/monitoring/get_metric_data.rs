//! GetMetricData: several metrics' statistics at once (`MetricStat` queries), each a list of
//! timestamps and values, paged by datapoints (`MaxDatapoints`, `NextToken`), and metric
//! math over them (`Expression` queries, `metric_math.rs`).

use std::collections::{BTreeMap, BTreeSet};

use state::metrics::{MetricKey, MetricsStore, StoreError};

pub use super::metric_data::{
    MetricDataPage, MetricDataQuery, MetricDataRequest, MetricDataResult, MetricStat, Status,
};
use super::metric_data_pages::{self, Cursor, Series};
use super::metric_math::{self, Expr};
use super::statistics::{self, Stat};
use crate::Refusal;

/// The most queries one request holds.
pub const MAX_QUERIES: usize = 500;
/// The most datapoints one answer holds unless `MaxDatapoints` says fewer.
pub const DEFAULT_MAX_DATAPOINTS: i64 = 100_800;

/// Why GetMetricData is refused.
#[derive(Debug, thiserror::Error)]
pub enum GetMetricDataError {
    /// A query or the request is not well formed.
    #[error("{0}")]
    Validation(String),
    /// The token does not come from an earlier answer to this request.
    #[error(
        "The NextToken does not come from an earlier answer to the same GetMetricData request."
    )]
    NextToken,
    /// The store failed.
    #[error("cannot read the metrics' points")]
    Store(#[from] StoreError),
}

impl Refusal for GetMetricDataError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::Validation(_) => "ValidationError",
            Self::NextToken => "InvalidNextToken",
            Self::Store(_) => return None,
        })
    }
}

fn invalid(message: impl Into<String>) -> GetMetricDataError {
    GetMetricDataError::Validation(message.into())
}

/// What a checked query reads or computes.
enum Kind<'q> {
    /// A metric's statistic per period.
    Reading {
        key: MetricKey,
        period: i64,
        stat: Stat,
        unit: Option<&'q str>,
    },
    /// Metric math over other queries.
    Expression(Expr),
}

/// A checked query.
struct Checked<'q> {
    query: &'q MetricDataQuery,
    kind: Kind<'q>,
}

/// Answers `request`; `now` is seconds since the epoch.
pub fn get_metric_data(
    store: &MetricsStore,
    request: &MetricDataRequest,
    now: i64,
) -> Result<MetricDataPage, GetMetricDataError> {
    let checked = check(request)?;
    let max = match request.max_datapoints {
        None => DEFAULT_MAX_DATAPOINTS,
        Some(m) if m > 0 => i64::from(m),
        Some(m) => return Err(invalid(format!("MaxDatapoints must be positive, not {m}."))),
    };
    let fingerprint = metric_data_pages::fingerprint(request);
    let cursor = match &request.next_token {
        Some(t) => Cursor::parse(t, fingerprint).ok_or(GetMetricDataError::NextToken)?,
        None => Cursor::start(fingerprint),
    };
    // Every metric read (those without ReturnData too: expressions may name them), then
    // the expressions in an order where each comes after the ones it names.
    let mut known: BTreeMap<String, metric_math::Series> = BTreeMap::new();
    for c in &checked {
        if let Kind::Reading {
            key,
            period,
            stat,
            unit,
        } = &c.kind
        {
            let points = read(store, request, key, *period, *stat, *unit, now)?;
            known.insert(c.query.id.clone(), points);
        }
    }
    let metrics: Vec<metric_math::Series> = known.values().cloned().collect();
    let metrics: Vec<&metric_math::Series> = metrics.iter().collect();
    for i in evaluation_order(&checked)? {
        if let Kind::Expression(e) = &checked[i].kind {
            let at = &checked[i].query.id;
            let values = metric_math::evaluate(e, &known, &metrics)
                .map_err(|e| invalid(format!("The expression of query {at} fails: {e}.")))?;
            known.insert(at.clone(), values);
        }
    }
    let mut series = Vec::new();
    for c in &checked {
        if c.query.return_data == Some(false) {
            continue;
        }
        let mut points: Vec<(i64, f64)> = known
            .remove(&c.query.id)
            .unwrap_or_default()
            .into_iter()
            .collect();
        if !request.ascending {
            points.reverse();
        }
        let label = c.query.label.clone().unwrap_or_else(|| match &c.kind {
            Kind::Reading { key, .. } => key.name.clone(),
            Kind::Expression(_) => c.query.id.clone(),
        });
        series.push(Series {
            id: c.query.id.clone(),
            label,
            points,
        });
    }
    Ok(metric_data_pages::page(series, cursor, max))
}

/// One metric's statistic per period, oldest first.
fn read(
    store: &MetricsStore,
    request: &MetricDataRequest,
    key: &MetricKey,
    period: i64,
    stat: Stat,
    unit: Option<&str>,
    now: i64,
) -> Result<metric_math::Series, GetMetricDataError> {
    let periods = statistics::periods(store, key, (request.start, request.end), period, unit, now)?;
    // Units apart are one series here: merged per period.
    let mut merged: BTreeMap<i64, state::metrics::Aggregate> = BTreeMap::new();
    for ((time, _), a) in periods {
        match merged.get_mut(&time) {
            Some(m) => m.merge(&a),
            None => {
                merged.insert(time, a);
            }
        }
    }
    let from = statistics::align(request.start, period);
    Ok(merged
        .into_iter()
        .filter(|(t, _)| *t >= from)
        .filter_map(|(t, a)| stat.of(&a).map(|v| (t, v)))
        .collect())
}

/// The expressions' indices, each after those it names (Kahn's algorithm: linear in the
/// queries and the ids named); a cycle is refused.
fn evaluation_order(checked: &[Checked<'_>]) -> Result<Vec<usize>, GetMetricDataError> {
    let index: BTreeMap<&str, usize> = checked
        .iter()
        .enumerate()
        .map(|(i, c)| (c.query.id.as_str(), i))
        .collect();
    let mut waiting = vec![0usize; checked.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); checked.len()];
    for (i, c) in checked.iter().enumerate() {
        if let Kind::Expression(e) = &c.kind {
            let mut ids = Vec::new();
            e.ids(&mut ids);
            for id in ids {
                let Some(&j) = index.get(id.as_str()) else {
                    return Err(invalid(format!(
                        "The expression of query {} names {id}, which is not a query of the request.",
                        c.query.id
                    )));
                };
                if matches!(checked[j].kind, Kind::Expression(_)) {
                    waiting[i] += 1;
                    dependents[j].push(i);
                }
            }
        }
    }
    let mut ready: Vec<usize> = (0..checked.len()).filter(|&i| waiting[i] == 0).collect();
    let mut order = Vec::with_capacity(checked.len());
    while let Some(i) = ready.pop() {
        order.push(i);
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(d);
            }
        }
    }
    if order.len() < checked.len() {
        return Err(invalid(
            "The expressions of the request refer to each other in a cycle.",
        ));
    }
    Ok(order)
}

/// Checks the request's queries.
fn check(request: &MetricDataRequest) -> Result<Vec<Checked<'_>>, GetMetricDataError> {
    if request.queries.is_empty() {
        return Err(invalid(
            "The parameter MetricDataQueries must hold at least one query.",
        ));
    }
    if request.queries.len() > MAX_QUERIES {
        return Err(invalid(format!(
            "The collection MetricDataQueries must not have a size greater than {MAX_QUERIES}."
        )));
    }
    if request.start >= request.end {
        return Err(invalid(
            "The parameter StartTime must be less than the parameter EndTime.",
        ));
    }
    let mut ids = BTreeSet::new();
    let mut checked = Vec::new();
    for (i, q) in request.queries.iter().enumerate() {
        let at = format!("MetricDataQueries.member.{}", i + 1);
        if !well_formed_id(&q.id) {
            return Err(invalid(format!(
                "The value {} for parameter {at}.Id is invalid: an id starts with a lowercase \
                 letter followed by letters, digits and underscores.",
                q.id
            )));
        }
        if !ids.insert(q.id.as_str()) {
            return Err(invalid(format!(
                "The id {} is used by more than one query.",
                q.id
            )));
        }
        let kind = match (&q.metric_stat, &q.expression) {
            (Some(s), None) => reading(s, &at)?,
            (None, Some(text)) => Kind::Expression(metric_math::parse(text).map_err(|e| {
                invalid(format!(
                    "The value of parameter {at}.Expression is invalid: {e}."
                ))
            })?),
            _ => {
                return Err(invalid(format!(
                    "{at} must have exactly one of MetricStat and Expression."
                )));
            }
        };
        checked.push(Checked { query: q, kind });
    }
    Ok(checked)
}

/// A checked MetricStat.
fn reading<'q>(stat: &'q MetricStat, at: &str) -> Result<Kind<'q>, GetMetricDataError> {
    let (Some(namespace), Some(name)) = (&stat.namespace, &stat.metric_name) else {
        return Err(invalid(format!(
            "{at}.MetricStat.Metric must have a Namespace and a MetricName."
        )));
    };
    let period = statistics::check_period(stat.period)
        .map_err(|e| invalid(format!("{at}.MetricStat.Period: {e}")))?;
    let parsed = Stat::parse(&stat.stat).ok_or_else(|| {
        invalid(format!(
            "The value {} for parameter {at}.MetricStat.Stat is not a statistic: \
             SampleCount, Average, Sum, Minimum, Maximum or a percentile such as p90.",
            stat.stat
        ))
    })?;
    Ok(Kind::Reading {
        key: MetricKey::new(namespace.clone(), name.clone(), stat.dimensions.clone()),
        period,
        stat: parsed,
        unit: stat.unit.as_deref(),
    })
}

/// A query id: a lowercase letter, then letters, digits and underscores.
fn well_formed_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
#[path = "get_metric_data_tests.rs"]
mod tests;
