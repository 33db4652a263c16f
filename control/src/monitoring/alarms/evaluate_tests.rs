//! The evaluation, by CloudWatch's documented rules: M out of N, each operator, each
//! treatment of missing data, percentiles of few samples, and the reasons' words.

use super::*;
use crate::monitoring::alarms::config::{Comparison, MetricAlarmConfig, StateValue};

/// 2026-12-07 14:03:00 UTC, a period start.
const NEWEST: i64 = 1_796_652_180;

fn alarm(n: u32, m: Option<u32>, op: Comparison, missing: Option<&str>) -> MetricAlarmConfig {
    MetricAlarmConfig {
        namespace: Some("MyApp".into()),
        metric_name: Some("Load".into()),
        dimensions: vec![],
        statistic: Some("Average".into()),
        extended_statistic: None,
        metrics: vec![],
        period: 60,
        unit: None,
        evaluation_periods: n,
        datapoints_to_alarm: m,
        threshold: 70.0,
        comparison: op,
        treat_missing_data: missing.map(str::to_string),
        evaluate_low_sample_count_percentile: None,
    }
}

fn window(a: &MetricAlarmConfig) -> Window {
    Window {
        newest: NEWEST,
        range: evaluation_range(a.evaluation_periods),
        query_ms: (NEWEST + 75) * 1000,
    }
}

/// Points from newest to oldest, one per period; `None` is a missing period.
fn series(values: &[Option<f64>]) -> Vec<Point> {
    values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            v.map(|value| Point {
                time: NEWEST - 60 * i as i64,
                value,
                sample_count: Some(1.0),
            })
        })
        .collect()
}

fn state(a: &MetricAlarmConfig, current: StateValue, values: &[Option<f64>]) -> Option<StateValue> {
    evaluate(a, current, &series(values), window(a)).map(|d| d.state)
}

const GT: Comparison = Comparison::GreaterThanThreshold;
use StateValue::{Alarm as A, InsufficientData as I, Ok as O};

#[test]
fn three_of_three_crossing_is_worded_as_cloudwatch_words_it() {
    let a = alarm(3, None, GT, None);
    let d = evaluate(
        &a,
        O,
        &series(&[Some(85.2), Some(84.1), Some(90.0)]),
        window(&a),
    )
    .unwrap();
    assert_eq!(d.state, A);
    assert_eq!(
        d.reason,
        "Threshold Crossed: 3 out of the last 3 datapoints [85.2 (07/12/26 14:03:00), 84.1 \
         (07/12/26 14:02:00), 90.0 (07/12/26 14:01:00)] were greater than the threshold (70.0) \
         (minimum 3 datapoints for OK -> ALARM transition)."
    );
    assert_eq!(d.reason_data["version"], "1.0");
    assert_eq!(d.reason_data["statistic"], "Average");
    assert_eq!(d.reason_data["period"], 60);
    assert_eq!(d.reason_data["threshold"], 70.0);
    assert_eq!(
        d.reason_data["recentDatapoints"],
        serde_json::json!([90.0, 84.1, 85.2])
    );
    assert_eq!(d.reason_data["startDate"], "2026-12-07T14:01:00.000+0000");
    assert_eq!(d.reason_data["queryDate"], "2026-12-07T14:04:15.000+0000");
    assert_eq!(
        d.reason_data["evaluatedDatapoints"][0],
        serde_json::json!({"timestamp": "2026-12-07T14:03:00.000+0000", "sampleCount": 1.0, "value": 85.2})
    );
    // Two of three is not enough for 3 of 3; the back to OK needs only one.
    let d = evaluate(
        &a,
        A,
        &series(&[Some(50.0), Some(84.1), Some(90.0)]),
        window(&a),
    )
    .unwrap();
    assert_eq!(d.state, O);
    assert_eq!(
        d.reason,
        "Threshold Crossed: 1 out of the last 3 datapoints [50.0 (07/12/26 14:03:00)] was not \
         greater than the threshold (70.0) (minimum 1 datapoint for ALARM -> OK transition)."
    );
}

#[test]
fn m_out_of_n_counts_breaching_points_among_the_last_n() {
    let a = alarm(5, Some(3), GT, None);
    let v = |xs: [f64; 5]| xs.map(Some);
    assert_eq!(state(&a, O, &v([80.0, 10.0, 80.0, 10.0, 80.0])), Some(A));
    assert_eq!(state(&a, O, &v([80.0, 10.0, 10.0, 10.0, 80.0])), Some(O));
    assert_eq!(state(&a, A, &v([80.0, 80.0, 10.0, 10.0, 10.0])), Some(O));
    // Only the last N real points decide: older ones past the N-th are not read.
    let mut six = v([10.0, 10.0, 10.0, 80.0, 80.0]).to_vec();
    six.push(Some(80.0));
    assert_eq!(state(&a, O, &six), Some(O));
}

#[test]
fn each_operator_compares_as_named() {
    use Comparison::*;
    let cases = [
        (GreaterThanThreshold, 70.0, O),
        (GreaterThanThreshold, 70.5, A),
        (GreaterThanOrEqualToThreshold, 70.0, A),
        (GreaterThanOrEqualToThreshold, 69.9, O),
        (LessThanThreshold, 70.0, O),
        (LessThanThreshold, 69.9, A),
        (LessThanOrEqualToThreshold, 70.0, A),
        (LessThanOrEqualToThreshold, 70.1, O),
    ];
    for (op, value, want) in cases {
        let a = alarm(1, None, op, None);
        let d = evaluate(&a, I, &series(&[Some(value)]), window(&a)).unwrap();
        assert_eq!(d.state, want, "{op:?} {value}");
        assert!(d.reason.contains(op.words()), "{}", d.reason);
    }
}

#[test]
fn all_missing_follows_treat_missing_data() {
    let none = [None, None, None];
    assert_eq!(state(&alarm(3, None, GT, None), O, &none), Some(I));
    assert_eq!(
        state(&alarm(3, None, GT, Some("missing")), A, &none),
        Some(I)
    );
    assert_eq!(state(&alarm(3, None, GT, Some("ignore")), A, &none), None);
    assert_eq!(
        state(&alarm(3, None, GT, Some("breaching")), O, &none),
        Some(A)
    );
    assert_eq!(
        state(&alarm(3, None, GT, Some("notBreaching")), A, &none),
        Some(O)
    );
    let a = alarm(3, None, GT, None);
    let d = evaluate(&a, O, &[], window(&a)).unwrap();
    assert_eq!(d.reason, "Insufficient Data: 3 datapoints were unknown.");
    let a = alarm(3, None, GT, Some("breaching"));
    let d = evaluate(&a, O, &[], window(&a)).unwrap();
    assert_eq!(
        d.reason,
        "Threshold Crossed: no datapoints were received for 3 periods and 3 missing datapoints \
         were treated as [Breaching]."
    );
}

#[test]
fn some_missing_are_filled_only_when_fewer_than_n_are_real() {
    // CloudWatch's documented example: one breaching point and two missing, 3 of 3.
    let one = [None, None, Some(90.0), None, None];
    assert_eq!(
        state(&alarm(3, None, GT, Some("missing")), O, &one),
        Some(A)
    );
    assert_eq!(state(&alarm(3, None, GT, Some("ignore")), O, &one), None);
    assert_eq!(
        state(&alarm(3, None, GT, Some("breaching")), O, &one),
        Some(A)
    );
    assert_eq!(
        state(&alarm(3, None, GT, Some("notBreaching")), A, &one),
        Some(O)
    );
    // N real points in the range (some periods missing between them): the treatment
    // plays no part.
    let gaps = [Some(10.0), None, Some(90.0), Some(90.0), None, Some(90.0)];
    for t in ["missing", "ignore", "breaching", "notBreaching"] {
        let a = alarm(3, None, GT, Some(t));
        assert_eq!(state(&a, A, &gaps), Some(O), "{t}");
    }
    // ignore decides when the real points alone decide: one non-breaching of 3 of 3.
    let decided = [Some(10.0), None, None];
    assert_eq!(
        state(&alarm(3, None, GT, Some("ignore")), A, &decided),
        Some(O)
    );
}

#[test]
fn percentiles_of_few_samples_keep_the_state_when_ignored() {
    let mut a = alarm(1, None, GT, None);
    a.statistic = None;
    a.extended_statistic = Some("p90".into());
    let few = [Point {
        time: NEWEST,
        value: 95.0,
        sample_count: Some(5.0),
    }];
    let many = [Point {
        sample_count: Some(50.0),
        ..few[0]
    }];
    // evaluate (the default) evaluates them.
    assert_eq!(evaluate(&a, O, &few, window(&a)).map(|d| d.state), Some(A));
    a.evaluate_low_sample_count_percentile = Some("evaluate".into());
    assert_eq!(evaluate(&a, O, &few, window(&a)).map(|d| d.state), Some(A));
    a.evaluate_low_sample_count_percentile = Some("ignore".into());
    assert_eq!(evaluate(&a, O, &few, window(&a)), None);
    let d = evaluate(&a, O, &many, window(&a)).unwrap();
    assert_eq!(d.state, A);
    assert_eq!(d.reason_data["extendedStatistic"], "p90");
    assert!(d.reason_data.get("statistic").is_none());
}

#[test]
fn points_outside_the_window_and_non_finite_values_are_not_read() {
    let a = alarm(1, None, GT, None);
    let future = [Point {
        time: NEWEST + 60,
        value: 99.0,
        sample_count: Some(1.0),
    }];
    assert_eq!(
        evaluate(&a, O, &future, window(&a)).map(|d| d.state),
        Some(I)
    );
    let nan = [Point {
        time: NEWEST,
        value: f64::NAN,
        sample_count: Some(1.0),
    }];
    assert_eq!(evaluate(&a, O, &nan, window(&a)).map(|d| d.state), Some(I));
}

#[test]
fn numbers_and_times_are_shown_as_cloudwatch_shows_them() {
    assert_eq!(number(70.0), "70.0");
    assert_eq!(number(85.25), "85.25");
    assert_eq!(number(-1.0), "-1.0");
    assert_eq!(reason_time(NEWEST), "07/12/26 14:03:00");
    assert_eq!(json_time(NEWEST * 1000 + 5), "2026-12-07T14:03:00.005+0000");
}
