//! Each of PutMetricData's checks, with CloudWatch's code, and what a good request records.

use super::*;
use crate::monitoring::test_store;
use state::metrics::Resolution;

const NOW: i64 = 1_796_688_000;

fn datum(value: f64) -> Datum {
    Datum {
        metric_name: "Requests".into(),
        dimensions: vec![("Host".into(), "web-1".into())],
        value: Some(value),
        ..Default::default()
    }
}

fn request(data: Vec<Datum>) -> PutMetricData {
    PutMetricData {
        namespace: "MyApp".into(),
        data,
    }
}

fn code(r: &PutMetricData) -> &'static str {
    let (_d, s) = test_store();
    put_metric_data(&s, r, NOW).unwrap_err().code().unwrap()
}

fn with(f: impl FnOnce(&mut Datum)) -> PutMetricData {
    let mut d = datum(1.0);
    f(&mut d);
    request(vec![d])
}

#[test]
fn aws_namespaces_are_reserved() {
    let mut r = request(vec![datum(1.0)]);
    r.namespace = "AWS/EC2".into();
    assert_eq!(code(&r), "InvalidParameterValue");
    r.namespace = ":starts-with-colon".into();
    assert_eq!(code(&r), "InvalidParameterValue");
}

#[test]
fn a_request_has_one_to_a_thousand_datums() {
    assert_eq!(code(&request(vec![])), "MissingParameter");
    assert_eq!(
        code(&request(vec![datum(1.0); 1001])),
        "InvalidParameterValue"
    );
    let (_d, s) = test_store();
    put_metric_data(&s, &request(vec![datum(1.0); 1000]), NOW).unwrap();
}

#[test]
fn dimensions_are_at_most_thirty_and_named_once() {
    let many = (0..31)
        .map(|i| (format!("D{i}"), "v".to_string()))
        .collect();
    assert_eq!(
        code(&with(|d| d.dimensions = many)),
        "InvalidParameterValue"
    );
    let twice = vec![("Host".into(), "a".into()), ("Host".into(), "b".into())];
    assert_eq!(
        code(&with(|d| d.dimensions = twice)),
        "InvalidParameterValue"
    );
}

#[test]
fn value_statistic_values_and_values_are_mutually_exclusive() {
    let set = StatisticSet {
        sample_count: 2.0,
        sum: 3.0,
        minimum: 1.0,
        maximum: 2.0,
    };
    assert_eq!(
        code(&with(|d| d.statistic_values = Some(set))),
        "InvalidParameterCombination"
    );
    assert_eq!(
        code(&with(|d| d.values = Some(vec![1.0]))),
        "InvalidParameterCombination"
    );
    let counts_alone = with(|d| d.counts = Some(vec![1.0]));
    assert_eq!(code(&counts_alone), "InvalidParameterCombination");
    assert_eq!(
        code(&with(|d| d.value = None)),
        "InvalidParameterCombination"
    );
}

#[test]
fn values_and_counts_have_the_same_length_up_to_150() {
    let arrays = |values: Vec<f64>, counts: Option<Vec<f64>>| {
        with(|d| {
            d.value = None;
            d.values = Some(values);
            d.counts = counts;
        })
    };
    assert_eq!(code(&arrays(vec![1.0; 151], None)), "InvalidParameterValue");
    assert_eq!(code(&arrays(vec![], None)), "InvalidParameterValue");
    assert_eq!(
        code(&arrays(vec![1.0, 2.0], Some(vec![1.0]))),
        "InvalidParameterValue"
    );
    assert_eq!(
        code(&arrays(vec![1.0], Some(vec![-1.0]))),
        "InvalidParameterValue"
    );
    let (_d, s) = test_store();
    put_metric_data(&s, &arrays(vec![1.0; 150], Some(vec![2.0; 150])), NOW).unwrap();
}

#[test]
fn numbers_that_are_not_finite_or_too_large_are_refused() {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e109, -1e109] {
        assert_eq!(
            code(&request(vec![datum(bad)])),
            "InvalidParameterValue",
            "{bad}"
        );
    }
    let bad_set = with(|d| {
        d.value = None;
        d.statistic_values = Some(StatisticSet {
            sample_count: 1.0,
            sum: f64::NAN,
            minimum: 1.0,
            maximum: 1.0,
        });
    });
    assert_eq!(code(&bad_set), "InvalidParameterValue");
    let min_above_max = with(|d| {
        d.value = None;
        d.statistic_values = Some(StatisticSet {
            sample_count: 2.0,
            sum: 3.0,
            minimum: 2.0,
            maximum: 1.0,
        });
    });
    assert_eq!(code(&min_above_max), "InvalidParameterValue");
}

#[test]
fn timestamps_are_within_two_weeks_back_and_two_hours_ahead() {
    assert_eq!(
        code(&with(|d| d.timestamp = Some(NOW - MAX_AGE - 1))),
        "InvalidParameterValue"
    );
    assert_eq!(
        code(&with(|d| d.timestamp = Some(NOW + MAX_AHEAD + 1))),
        "InvalidParameterValue"
    );
    let (_d, s) = test_store();
    put_metric_data(&s, &with(|d| d.timestamp = Some(NOW - MAX_AGE)), NOW).unwrap();
    put_metric_data(&s, &with(|d| d.timestamp = Some(NOW + MAX_AHEAD)), NOW).unwrap();
}

#[test]
fn storage_resolution_is_1_or_60() {
    assert_eq!(
        code(&with(|d| d.storage_resolution = Some(10))),
        "InvalidParameterValue"
    );
    let (_d, s) = test_store();
    put_metric_data(&s, &with(|d| d.storage_resolution = Some(1)), NOW).unwrap();
    let key = MetricKey::new("MyApp", "Requests", vec![("Host".into(), "web-1".into())]);
    let seconds = s
        .points(&key, Resolution::Second, NOW - 10, NOW + 10, None)
        .unwrap();
    assert_eq!(seconds.len(), 1);
}

#[test]
fn a_good_request_records_every_form_of_datum() {
    let (_d, s) = test_store();
    let r = request(vec![
        datum(4.0),
        Datum {
            value: None,
            statistic_values: Some(StatisticSet {
                sample_count: 10.0,
                sum: 100.0,
                minimum: 1.0,
                maximum: 20.0,
            }),
            ..datum(0.0)
        },
        Datum {
            value: None,
            values: Some(vec![1.0, 2.0, 3.0]),
            counts: Some(vec![1.0, 0.0, 3.0]),
            unit: Some("Count".into()),
            ..datum(0.0)
        },
    ]);
    put_metric_data(&s, &r, NOW).unwrap();
    let key = MetricKey::new("MyApp", "Requests", vec![("Host".into(), "web-1".into())]);
    let points = s
        .points(&key, Resolution::Minute, NOW - 60, NOW + 60, None)
        .unwrap();
    let by_unit: Vec<_> = points
        .iter()
        .map(|p| {
            (
                p.unit.as_str(),
                p.aggregate.count,
                p.aggregate.sum,
                p.aggregate.min,
                p.aggregate.max,
            )
        })
        .collect();
    assert_eq!(
        by_unit,
        [
            ("Count", 4.0, 10.0, 1.0, 3.0),
            ("None", 11.0, 104.0, 1.0, 20.0)
        ]
    );
}

#[test]
fn past_the_cap_on_distinct_metrics_the_answer_is_limit_exceeded() {
    let dir = tempfile::tempdir().unwrap();
    let s = MetricsStore::open_with_cap(&dir.path().join("m.db"), 1).unwrap();
    put_metric_data(&s, &request(vec![datum(1.0)]), NOW).unwrap();
    let other = with(|d| d.metric_name = "Other".into());
    let e = put_metric_data(&s, &other, NOW).unwrap_err();
    assert_eq!(e.code(), Some("LimitExceeded"));
}
