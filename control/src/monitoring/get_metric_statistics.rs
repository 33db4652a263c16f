//! GetMetricStatistics: one metric's statistics per period over a time range.

use state::metrics::{MetricKey, MetricsStore, StoreError};

use super::statistics::{self, BadPeriod, Percentile, Statistic};
use crate::Refusal;

/// The most datapoints one answer holds.
pub const MAX_DATAPOINTS: i64 = 1440;

/// A GetMetricStatistics request.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricStatisticsQuery {
    /// The metric.
    pub key: MetricKey,
    /// From (inclusive), seconds since the epoch.
    pub start: i64,
    /// To (exclusive).
    pub end: i64,
    /// The period in seconds.
    pub period: i32,
    /// The basic statistics asked for.
    pub statistics: Vec<Statistic>,
    /// The percentiles asked for, as given (`p90`).
    pub extended_statistics: Vec<String>,
    /// Only the points of this unit.
    pub unit: Option<String>,
}

/// One period's statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct Datapoint {
    /// The period's start.
    pub time: i64,
    /// The unit of its values.
    pub unit: String,
    /// The basic statistics asked for.
    pub statistics: Vec<(Statistic, f64)>,
    /// The percentiles asked for that the values allow, by name as given.
    pub extended: Vec<(String, f64)>,
}

/// Why GetMetricStatistics is refused.
#[derive(Debug, thiserror::Error)]
pub enum GetMetricStatisticsError {
    /// The period is not one CloudWatch allows.
    #[error(transparent)]
    Period(#[from] BadPeriod),
    /// The range is empty or reversed.
    #[error("The parameter StartTime must be less than the parameter EndTime.")]
    Range,
    /// Neither statistics nor percentiles, or both.
    #[error("{0}")]
    Combination(String),
    /// A percentile that is not `p` and a number from 0 to 100.
    #[error(
        "The value {0} for parameter ExtendedStatistics is not supported: percentiles are p followed by a number from 0 to 100, such as p90 or p99.9."
    )]
    ExtendedStatistic(String),
    /// The store failed.
    #[error("cannot read the metric's points")]
    Store(#[from] StoreError),
}

impl Refusal for GetMetricStatisticsError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::Period(_) | Self::Range | Self::ExtendedStatistic(_) => "InvalidParameterValue",
            Self::Combination(_) => "InvalidParameterCombination",
            Self::Store(_) => return None,
        })
    }
}

/// The datapoints of `q`, in time order; `now` is seconds since the epoch.
pub fn get_metric_statistics(
    store: &MetricsStore,
    q: &MetricStatisticsQuery,
    now: i64,
) -> Result<Vec<Datapoint>, GetMetricStatisticsError> {
    let period = statistics::check_period(q.period)?;
    if q.start >= q.end {
        return Err(GetMetricStatisticsError::Range);
    }
    match (q.statistics.is_empty(), q.extended_statistics.is_empty()) {
        (true, true) => {
            return Err(GetMetricStatisticsError::Combination(
                "At least one of the parameters Statistics and ExtendedStatistics must be specified."
                    .into(),
            ));
        }
        (false, false) => {
            return Err(GetMetricStatisticsError::Combination(
                "The parameters Statistics and ExtendedStatistics are mutually exclusive and you have specified both."
                    .into(),
            ));
        }
        _ => {}
    }
    let percentiles = q
        .extended_statistics
        .iter()
        .map(|s| {
            Percentile::parse(s)
                .map(|p| (s.clone(), p))
                .ok_or_else(|| GetMetricStatisticsError::ExtendedStatistic(s.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let from = statistics::align(q.start, period);
    let asked = (q.end - from + period - 1) / period;
    if asked > MAX_DATAPOINTS {
        return Err(GetMetricStatisticsError::Combination(format!(
            "You have requested up to {asked} datapoints, which exceeds the limit of \
             {MAX_DATAPOINTS}. You may reduce the datapoints requested by increasing Period, or \
             decreasing the time range."
        )));
    }
    let periods = statistics::periods(
        store,
        &q.key,
        (q.start, q.end),
        period,
        q.unit.as_deref(),
        now,
    )?;
    Ok(periods
        .into_iter()
        .map(|((time, unit), a)| Datapoint {
            time,
            unit,
            statistics: q.statistics.iter().map(|&s| (s, s.of(&a))).collect(),
            extended: percentiles
                .iter()
                .filter_map(|(name, p)| p.of(&a).map(|v| (name.clone(), v)))
                .collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitoring::put_metric_data::{Datum, PutMetricData, put_metric_data};
    use crate::monitoring::test_store;

    const NOW: i64 = 1_796_688_000;

    fn key() -> MetricKey {
        MetricKey::new("MyApp", "Latency", vec![])
    }

    fn query(period: i32) -> MetricStatisticsQuery {
        MetricStatisticsQuery {
            key: key(),
            start: NOW - 3600,
            end: NOW,
            period,
            statistics: vec![Statistic::Sum],
            extended_statistics: vec![],
            unit: None,
        }
    }

    fn code(q: &MetricStatisticsQuery) -> &'static str {
        let (_d, s) = test_store();
        get_metric_statistics(&s, q, NOW)
            .unwrap_err()
            .code()
            .unwrap()
    }

    #[test]
    fn each_check_has_cloudwatch_code() {
        assert_eq!(code(&query(45)), "InvalidParameterValue");
        assert_eq!(code(&query(0)), "InvalidParameterValue");
        let mut reversed = query(60);
        reversed.end = reversed.start;
        assert_eq!(code(&reversed), "InvalidParameterValue");
        let mut none = query(60);
        none.statistics.clear();
        assert_eq!(code(&none), "InvalidParameterCombination");
        let mut both = query(60);
        both.extended_statistics = vec!["p90".into()];
        assert_eq!(code(&both), "InvalidParameterCombination");
        let mut bad = query(60);
        bad.statistics.clear();
        bad.extended_statistics = vec!["p90".into(), "median".into()];
        assert_eq!(code(&bad), "InvalidParameterValue");
        // 3,600 one-second periods: past 1,440.
        assert_eq!(code(&query(1)), "InvalidParameterCombination");
        let (_d, s) = test_store();
        let mut day = query(60);
        day.start = NOW - 86_400;
        assert!(get_metric_statistics(&s, &day, NOW).unwrap().is_empty());
    }

    #[test]
    fn statistics_and_percentiles_are_those_of_the_values_put() {
        let (_d, s) = test_store();
        let data = (1..=100)
            .map(|v| Datum {
                metric_name: "Latency".into(),
                timestamp: Some(NOW - 600 + (v % 5)),
                value: Some(v as f64),
                ..Default::default()
            })
            .collect();
        let r = PutMetricData {
            namespace: "MyApp".into(),
            data,
        };
        put_metric_data(&s, &r, NOW).unwrap();
        let mut q = query(3600);
        q.statistics = vec![
            Statistic::SampleCount,
            Statistic::Sum,
            Statistic::Average,
            Statistic::Minimum,
            Statistic::Maximum,
        ];
        q.end = NOW + 3600;
        let points = get_metric_statistics(&s, &q, NOW).unwrap();
        assert_eq!(points.len(), 1);
        let p = &points[0];
        assert_eq!((p.time, p.unit.as_str()), (NOW - 3600, "None"));
        let stats: Vec<f64> = p.statistics.iter().map(|s| s.1).collect();
        assert_eq!(stats, [100.0, 5050.0, 50.5, 1.0, 100.0]);
        q.statistics.clear();
        q.extended_statistics = vec!["p50".into(), "p90".into(), "p99.9".into()];
        let p = get_metric_statistics(&s, &q, NOW).unwrap().remove(0);
        let want = [50.0, 90.0, 99.0];
        for ((name, got), want) in p.extended.iter().zip(want) {
            assert!((got - want).abs() <= want * 0.01, "{name}: {got} vs {want}");
        }
        // Per minute, in order: the five minutes the values were put in.
        let mut per_minute = query(60);
        per_minute.end = NOW + 60;
        let points = get_metric_statistics(&s, &per_minute, NOW).unwrap();
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].time, NOW - 600);
    }
}
