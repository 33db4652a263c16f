//! A metric alarm's evaluation, pure: given its configuration, its current state and the
//! datapoints of its evaluation range, the state it should be in and why, worded as
//! CloudWatch words it. No clock, no store: the evaluator (`evaluator.rs`) reads the
//! points and the time and hands them here.
//!
//! As CloudWatch documents it: the evaluation range holds more periods than
//! `EvaluationPeriods` (N). When it has at least N real datapoints, the N most recent decide
//! and `TreatMissingData` plays no part; with fewer, the missing ones are filled as few
//! times as needed with the treatment chosen (`breaching`, `notBreaching`), or the state is
//! kept (`ignore`), or only the real ones count (`missing`: with none at all, the alarm
//! has INSUFFICIENT_DATA). ALARM needs M (`DatapointsToAlarm`) breaching datapoints of
//! the N. A percentile datapoint from too few samples (fewer than `1 / (1 - q)`, where the
//! percentile is the maximum itself) keeps the state when
//! `EvaluateLowSampleCountPercentile` is `ignore`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::config::{MetricAlarmConfig, StateValue, TreatMissing};

/// One period's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// The period's start, seconds since the epoch.
    pub time: i64,
    /// The statistic's value.
    pub value: f64,
    /// How many samples it is of (unknown for metric math).
    pub sample_count: Option<f64>,
}

/// What an evaluation decides.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The state.
    pub state: StateValue,
    /// Why, in CloudWatch's words.
    pub reason: String,
    /// Why, as CloudWatch's reason JSON.
    pub reason_data: Value,
}

/// What the evaluation reads beside the points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// The start of the newest complete period (seconds).
    pub newest: i64,
    /// How many periods the range holds (at least N).
    pub range: u32,
    /// When the evaluation runs (milliseconds), for `queryDate`.
    pub query_ms: i64,
}

/// How many periods an alarm with N evaluation periods reads: N and a few more, so that
/// late or missing points can be made up from older ones.
pub fn evaluation_range(n: u32) -> u32 {
    n.saturating_add(n.min(5))
}

/// The decision for `alarm` in state `current` over `points` (any order; those outside the
/// window are not read), or `None` when the state is kept (missing data ignored, or
/// percentiles of too few samples).
pub fn evaluate(
    alarm: &MetricAlarmConfig,
    current: StateValue,
    points: &[Point],
    window: Window,
) -> Option<Decision> {
    let period = alarm.period.max(1);
    let n = alarm.evaluation_periods.max(1) as usize;
    let m = (alarm.m().max(1) as usize).min(n);
    let oldest = window.newest - period * (i64::from(window.range.max(1)) - 1);
    let mut real: Vec<Point> = points
        .iter()
        .copied()
        .filter(|p| p.time >= oldest && p.time <= window.newest && p.value.is_finite())
        .collect();
    real.sort_by_key(|p| std::cmp::Reverse(p.time));
    real.dedup_by_key(|p| p.time);
    real.truncate(n);
    if low_sample_ignored(alarm, &real) {
        return None;
    }
    let breaching = real
        .iter()
        .filter(|p| alarm.comparison.breaches(p.value, alarm.threshold))
        .count();
    let fills = n - real.len();
    let from = current;
    let data = |state: StateValue| reason_data(alarm, &real, window, state);
    if real.is_empty() {
        let state = match alarm.treat_missing() {
            TreatMissing::Ignore => return None,
            TreatMissing::Missing => {
                return Some(Decision {
                    state: StateValue::InsufficientData,
                    reason: format!(
                        "Insufficient Data: {n} {} {} unknown.",
                        plural(n, "datapoint"),
                        was(n)
                    ),
                    reason_data: data(StateValue::InsufficientData),
                });
            }
            TreatMissing::Breaching => StateValue::Alarm,
            TreatMissing::NotBreaching => StateValue::Ok,
        };
        let treated = if state == StateValue::Alarm {
            "Breaching"
        } else {
            "NonBreaching"
        };
        return Some(Decision {
            state,
            reason: format!(
                "Threshold Crossed: no datapoints were received for {n} {} and {n} missing {} {} treated as [{treated}].",
                plural(n, "period"),
                plural(n, "datapoint"),
                was(n)
            ),
            reason_data: data(state),
        });
    }
    // Fewer real points than N: fill the rest as the treatment says.
    let (breaching_total, counted) = match (fills, alarm.treat_missing()) {
        (0, _) => (breaching, n),
        (_, TreatMissing::Breaching) => (breaching + fills, n),
        (_, TreatMissing::NotBreaching) => (breaching, n),
        // Kept unless the real points decide whatever the missing ones would be.
        (_, TreatMissing::Ignore) if breaching >= m || breaching + fills < m => (breaching, n),
        (_, TreatMissing::Ignore) => return None,
        (_, TreatMissing::Missing) => (breaching, real.len()),
    };
    let needed = m.min(counted);
    let state = if breaching_total >= needed {
        StateValue::Alarm
    } else {
        StateValue::Ok
    };
    let shown: Vec<&Point> = real
        .iter()
        .filter(|p| {
            alarm.comparison.breaches(p.value, alarm.threshold) == (state == StateValue::Alarm)
        })
        .collect();
    let count = if state == StateValue::Alarm {
        breaching_total
    } else {
        counted - breaching_total
    };
    let minimum = if state == StateValue::Alarm {
        needed
    } else {
        counted - needed + 1
    };
    let list = shown
        .iter()
        .map(|p| format!("{} ({})", number(p.value), reason_time(p.time)))
        .collect::<Vec<_>>()
        .join(", ");
    let negation = if state == StateValue::Alarm {
        ""
    } else {
        "not "
    };
    let reason = format!(
        "Threshold Crossed: {count} out of the last {counted} datapoints [{list}] {} {negation}{} the threshold ({}) (minimum {minimum} {} for {} -> {} transition).",
        was(count),
        alarm.comparison.words(),
        number(alarm.threshold),
        plural(minimum, "datapoint"),
        from.as_str(),
        state.as_str(),
    );
    Some(Decision {
        state,
        reason,
        reason_data: data(state),
    })
}

/// Whether `alarm` watches a percentile, ignores low sample counts, and one of `points` is
/// of too few samples to tell its percentile from the maximum.
fn low_sample_ignored(alarm: &MetricAlarmConfig, points: &[Point]) -> bool {
    let Some(q) = alarm
        .extended_statistic
        .as_deref()
        .and_then(super::super::statistics::Percentile::parse)
    else {
        return false;
    };
    if alarm.evaluate_low_sample_count_percentile.as_deref() != Some("ignore") {
        return false;
    }
    let needed = if q.0 >= 1.0 {
        f64::INFINITY
    } else {
        1.0 / (1.0 - q.0)
    };
    points
        .iter()
        .any(|p| p.sample_count.is_some_and(|c| c < needed))
}

/// CloudWatch's reason JSON.
fn reason_data(
    alarm: &MetricAlarmConfig,
    real: &[Point],
    window: Window,
    _state: StateValue,
) -> Value {
    let period = alarm.period.max(1);
    let start = window.newest - period * (i64::from(alarm.evaluation_periods.max(1)) - 1);
    let mut recent: Vec<f64> = real.iter().map(|p| p.value).collect();
    recent.reverse();
    let evaluated: Vec<Value> = real
        .iter()
        .map(|p| {
            let mut d = json!({"timestamp": json_time(p.time * 1000), "value": p.value});
            if let Some(c) = p.sample_count {
                d["sampleCount"] = json!(c);
            }
            d
        })
        .collect();
    let mut v = json!({
        "version": "1.0",
        "queryDate": json_time(window.query_ms),
        "startDate": json_time(start * 1000),
        "period": period,
        "recentDatapoints": recent,
        "threshold": alarm.threshold,
        "evaluatedDatapoints": evaluated,
    });
    if let Some(s) = &alarm.statistic {
        v["statistic"] = json!(s);
    }
    if let Some(s) = &alarm.extended_statistic {
        v["extendedStatistic"] = json!(s);
    }
    if let Some(u) = &alarm.unit {
        v["unit"] = json!(u);
    }
    v
}

/// A number as CloudWatch's reasons show it: `70.0`, `85.2`.
pub fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// A period start as a reason shows it: `07/12/26 14:03:00` (day/month/year).
pub fn reason_time(seconds: i64) -> String {
    DateTime::<Utc>::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .format("%d/%m/%y %H:%M:%S")
        .to_string()
}

/// A time as CloudWatch's JSON shows it: `2026-12-07T14:03:00.000+0000`.
pub fn json_time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string()
}

/// A time as RFC 3339 with milliseconds (`2026-12-07T14:03:00.000Z`).
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

fn was(n: usize) -> &'static str {
    if n == 1 { "was" } else { "were" }
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
