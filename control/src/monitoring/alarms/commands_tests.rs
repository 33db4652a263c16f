//! The commands over a real store, and rounds of the evaluator over points put with
//! PutMetricData.

use super::*;
use crate::monitoring::alarms::evaluator::evaluate_round;
use crate::monitoring::alarms::put::{
    PutCompositeAlarm, PutMetricAlarm, put_composite_alarm, put_metric_alarm,
};
use crate::monitoring::put_metric_data::{Datum, PutMetricData, put_metric_data};
use crate::monitoring::test_store;

/// 2026-12-07 14:03:00 UTC.
const T0: i64 = 1_796_652_180;

fn load_alarm(name: &str) -> PutMetricAlarm {
    PutMetricAlarm {
        name: name.into(),
        namespace: Some("MyApp".into()),
        metric_name: Some("Load".into()),
        dimensions: vec![("Host".into(), "a".into())],
        statistic: Some("Maximum".into()),
        period: Some(10),
        evaluation_periods: Some(3),
        threshold: Some(70.0),
        comparison_operator: Some("GreaterThanThreshold".into()),
        ..Default::default()
    }
}

fn put(s: &MetricsStore, t: i64, v: f64) {
    let r = PutMetricData {
        namespace: "MyApp".into(),
        data: vec![Datum {
            metric_name: "Load".into(),
            dimensions: vec![("Host".into(), "a".into())],
            timestamp: Some(t),
            value: Some(v),
            storage_resolution: Some(1),
            ..Default::default()
        }],
    };
    put_metric_data(s, &r, t).unwrap();
}

fn describe(s: &MetricsStore, d: DescribeAlarms) -> Vec<String> {
    describe_alarms(s, &d)
        .unwrap()
        .alarms
        .into_iter()
        .map(|a| a.config.name)
        .collect()
}

#[test]
fn describe_filters_by_name_prefix_state_type_action_and_pages() {
    let (_d, s) = test_store();
    for n in ["web-1", "web-2", "db"] {
        put_metric_alarm(&s, &load_alarm(n), T0 * 1000).unwrap();
    }
    let mut stop = load_alarm("web-3");
    stop.ok_actions = vec!["arn:aws:sns:local-1:123456789012:ops".into()];
    put_metric_alarm(&s, &stop, T0 * 1000).unwrap();
    put_composite_alarm(
        &s,
        &PutCompositeAlarm {
            name: "both".into(),
            rule: r#"ALARM("web-1") AND ALARM(db)"#.into(),
            ..Default::default()
        },
        T0 * 1000,
    )
    .unwrap();
    assert_eq!(
        describe(&s, DescribeAlarms::default()),
        ["db", "web-1", "web-2", "web-3"]
    );
    assert_eq!(
        describe(
            &s,
            DescribeAlarms {
                prefix: Some("web-".into()),
                ..Default::default()
            }
        ),
        ["web-1", "web-2", "web-3"]
    );
    assert_eq!(
        describe(
            &s,
            DescribeAlarms {
                names: vec!["db".into(), "nope".into()],
                ..Default::default()
            }
        ),
        ["db"]
    );
    assert_eq!(
        describe(
            &s,
            DescribeAlarms {
                types: vec!["CompositeAlarm".into()],
                ..Default::default()
            }
        ),
        ["both"]
    );
    assert_eq!(
        describe(
            &s,
            DescribeAlarms {
                action_prefix: Some("arn:aws:sns:".into()),
                ..Default::default()
            }
        ),
        ["web-3"]
    );
    assert_eq!(
        describe(
            &s,
            DescribeAlarms {
                children_of: Some("both".into()),
                ..Default::default()
            }
        ),
        ["db", "web-1"]
    );
    assert_eq!(
        describe(
            &s,
            DescribeAlarms {
                parents_of: Some("db".into()),
                ..Default::default()
            }
        ),
        ["both"]
    );
    set_alarm_state(&s, "web-2", StateValue::Alarm, "by hand", None, T0 * 1000).unwrap();
    assert_eq!(
        describe(
            &s,
            DescribeAlarms {
                state: Some("ALARM".into()),
                ..Default::default()
            }
        ),
        ["web-2"]
    );
    // Pages of two.
    let first = describe_alarms(
        &s,
        &DescribeAlarms {
            max_records: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(first.alarms.len(), 2);
    let second = describe_alarms(
        &s,
        &DescribeAlarms {
            max_records: Some(2),
            next_token: first.next_token,
            ..Default::default()
        },
    )
    .unwrap();
    let names: Vec<_> = second
        .alarms
        .iter()
        .map(|a| a.config.name.as_str())
        .collect();
    assert_eq!((names, second.next_token), (vec!["web-2", "web-3"], None));
    let e = describe_alarms(
        &s,
        &DescribeAlarms {
            next_token: Some("forged".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.code(), Some("InvalidNextToken"));
    let e = describe_alarms(
        &s,
        &DescribeAlarms {
            names: vec!["db".into()],
            prefix: Some("d".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameterCombination"));
    // For a metric: any of its alarms, narrowed by what is given.
    let q = AlarmsForMetric {
        namespace: "MyApp".into(),
        metric_name: "Load".into(),
        ..Default::default()
    };
    assert_eq!(describe_alarms_for_metric(&s, &q).unwrap().len(), 4);
    let q = AlarmsForMetric {
        period: Some(60),
        ..q
    };
    assert!(describe_alarms_for_metric(&s, &q).unwrap().is_empty());
}

#[test]
fn set_state_delete_and_actions_with_cloudwatch_codes() {
    let (_d, s) = test_store();
    put_metric_alarm(&s, &load_alarm("a"), T0 * 1000).unwrap();
    let e = set_alarm_state(&s, "ghost", StateValue::Ok, "r", None, T0 * 1000).unwrap_err();
    assert_eq!(e.code(), Some("ResourceNotFound"));
    let e =
        set_alarm_state(&s, "a", StateValue::Ok, "r", Some("{not json"), T0 * 1000).unwrap_err();
    assert_eq!(e.code(), Some("InvalidFormat"));
    let t = set_alarm_state(
        &s,
        "a",
        StateValue::Alarm,
        "testing",
        Some(r#"{"k": 1}"#),
        T0 * 1000 + 5,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        (t.old_state, t.alarm.state),
        (StateValue::InsufficientData, StateValue::Alarm)
    );
    // The same state again is no transition.
    assert!(
        set_alarm_state(&s, "a", StateValue::Alarm, "again", None, T0 * 1000 + 6)
            .unwrap()
            .is_none()
    );
    set_alarm_actions(&s, &["a".into(), "ghost".into()], false).unwrap();
    let a = &describe_alarms(&s, &DescribeAlarms::default())
        .unwrap()
        .alarms[0];
    assert!(!a.actions_enabled);
    let h = describe_alarm_history(
        &s,
        &DescribeHistory {
            alarm_name: Some("a".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let summaries: Vec<_> = h.items.iter().map(|i| i.summary.as_str()).collect();
    assert_eq!(
        summaries,
        [
            "Alarm updated from INSUFFICIENT_DATA to ALARM",
            "Alarm \"a\" created"
        ]
    );
    let data: Value = serde_json::from_str(&h.items[0].data).unwrap();
    assert_eq!(data["newState"]["stateReasonData"]["k"], 1);
    put_composite_alarm(
        &s,
        &PutCompositeAlarm {
            name: "c".into(),
            rule: "ALARM(a)".into(),
            ..Default::default()
        },
        T0 * 1000,
    )
    .unwrap();
    let e = delete_alarms(&s, &["a".into()]).unwrap_err();
    assert_eq!(e.code(), Some("ResourceConflict"));
    let e = delete_alarms(&s, &["a".into(), "c".into(), "ghost".into()]).unwrap_err();
    assert_eq!(e.code(), Some("ResourceNotFound"));
    assert_eq!(
        describe(
            &s,
            DescribeAlarms {
                types: vec!["MetricAlarm".into(), "CompositeAlarm".into()],
                ..Default::default()
            }
        ),
        ["a", "c"]
    );
    delete_alarms(&s, &["c".into(), "a".into()]).unwrap();
    assert!(describe(&s, DescribeAlarms::default()).is_empty());
}

#[test]
fn rounds_follow_the_metric_and_composites_follow_their_children() {
    let (_d, s) = test_store();
    put_metric_alarm(&s, &load_alarm("load"), T0 * 1000).unwrap();
    put_composite_alarm(
        &s,
        &PutCompositeAlarm {
            name: "any".into(),
            rule: r#"ALARM("load")"#.into(),
            ..Default::default()
        },
        T0 * 1000,
    )
    .unwrap();
    // No data: stays INSUFFICIENT_DATA (no transition).
    assert!(
        evaluate_round(&s, "123456789012", T0 * 1000)
            .unwrap()
            .iter()
            .all(|t| t.alarm.config.name == "any")
    );
    // Three 10-second periods above 70, then the round after them.
    for i in 0..30 {
        put(&s, T0 + i, 90.0);
    }
    let changes = evaluate_round(&s, "123456789012", (T0 + 31) * 1000).unwrap();
    let got: Vec<_> = changes
        .iter()
        .map(|t| (t.alarm.config.name.as_str(), t.alarm.state))
        .collect();
    assert_eq!(
        got,
        [("load", StateValue::Alarm), ("any", StateValue::Alarm)]
    );
    assert!(
        changes[0]
            .alarm
            .reason
            .starts_with("Threshold Crossed: 3 out of the last 3 datapoints [90.0"),
        "{}",
        changes[0].alarm.reason
    );
    assert!(changes[1].alarm.reason.starts_with(
        "arn:aws:cloudwatch:local-1:123456789012:alarm:load transitioned to ALARM at "
    ));
    // Not due again for 10 seconds.
    assert!(
        evaluate_round(&s, "123456789012", (T0 + 35) * 1000)
            .unwrap()
            .is_empty()
    );
    for i in 30..40 {
        put(&s, T0 + i, 10.0);
    }
    let changes = evaluate_round(&s, "123456789012", (T0 + 41) * 1000).unwrap();
    let got: Vec<_> = changes
        .iter()
        .map(|t| (t.alarm.config.name.as_str(), t.old_state, t.alarm.state))
        .collect();
    assert_eq!(
        got,
        [
            ("load", StateValue::Alarm, StateValue::Ok),
            ("any", StateValue::Alarm, StateValue::Ok)
        ]
    );
    let h = describe_alarm_history(
        &s,
        &DescribeHistory {
            alarm_name: Some("load".into()),
            item_type: Some("StateUpdate".into()),
            ascending: true,
            ..Default::default()
        },
    )
    .unwrap();
    let summaries: Vec<_> = h.items.iter().map(|i| i.summary.as_str()).collect();
    assert_eq!(
        summaries,
        [
            "Alarm updated from INSUFFICIENT_DATA to ALARM",
            "Alarm updated from ALARM to OK"
        ]
    );
    // Composite history is asked for by type.
    let h = describe_alarm_history(
        &s,
        &DescribeHistory {
            types: vec!["CompositeAlarm".into()],
            item_type: Some("StateUpdate".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(h.items.len(), 3, "{:?}", h.items);
}

#[test]
fn metric_math_alarms_watch_their_expression() {
    use crate::monitoring::alarms::config::{AlarmQuery, QueryMetric};
    let (_d, s) = test_store();
    let m1 = AlarmQuery {
        id: "m1".into(),
        metric: Some(QueryMetric {
            namespace: Some("MyApp".into()),
            metric_name: Some("Load".into()),
            dimensions: vec![("Host".into(), "a".into())],
            period: 10,
            stat: "Maximum".into(),
            unit: None,
        }),
        expression: None,
        label: None,
        return_data: Some(false),
        period: None,
    };
    let e1 = AlarmQuery {
        id: "e1".into(),
        metric: None,
        expression: Some("m1 * 2".into()),
        label: Some("doubled".into()),
        return_data: Some(true),
        period: None,
    };
    let p = PutMetricAlarm {
        name: "doubled".into(),
        metrics: vec![m1, e1],
        evaluation_periods: Some(2),
        threshold: Some(100.0),
        comparison_operator: Some("GreaterThanThreshold".into()),
        ..Default::default()
    };
    put_metric_alarm(&s, &p, T0 * 1000).unwrap();
    // 60 doubled is 120, above 100; 40 doubled is 80, below.
    for i in 0..20 {
        put(&s, T0 + i, 60.0);
    }
    let changes = evaluate_round(&s, "123456789012", (T0 + 21) * 1000).unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].alarm.state, StateValue::Alarm);
    assert!(
        changes[0].alarm.reason.contains("[120.0 ("),
        "{}",
        changes[0].alarm.reason
    );
    for i in 20..30 {
        put(&s, T0 + i, 40.0);
    }
    let changes = evaluate_round(&s, "123456789012", (T0 + 31) * 1000).unwrap();
    assert_eq!(changes[0].alarm.state, StateValue::Ok);
}

#[test]
fn a_round_of_a_thousand_alarms_changes_each_once() {
    let (_d, s) = test_store();
    let data = (0..1000)
        .flat_map(|h| {
            (0..30).map(move |i| Datum {
                metric_name: "Load".into(),
                dimensions: vec![("Host".into(), format!("h{h}"))],
                timestamp: Some(T0 + i),
                value: Some(90.0),
                storage_resolution: Some(1),
                ..Default::default()
            })
        })
        .collect::<Vec<_>>();
    for chunk in data.chunks(1000) {
        let r = PutMetricData {
            namespace: "MyApp".into(),
            data: chunk.to_vec(),
        };
        put_metric_data(&s, &r, T0 + 30).unwrap();
    }
    for h in 0..1000 {
        let mut p = load_alarm(&format!("load-{h}"));
        p.dimensions = vec![("Host".into(), format!("h{h}"))];
        put_metric_alarm(&s, &p, T0 * 1000).unwrap();
    }
    let started = std::time::Instant::now();
    let changes = evaluate_round(&s, "123456789012", (T0 + 31) * 1000).unwrap();
    let took = started.elapsed();
    assert_eq!(changes.len(), 1000);
    assert!(changes.iter().all(|t| t.alarm.state == StateValue::Alarm));
    // The time is a benchmark figure (docs/BENCHMARKS.md), not a check.
    eprintln!("a round of 1,000 alarms: {took:?}");
    // The next round finds none due.
    let started = std::time::Instant::now();
    assert!(
        evaluate_round(&s, "123456789012", (T0 + 32) * 1000)
            .unwrap()
            .is_empty()
    );
    eprintln!("a round with none due: {:?}", started.elapsed());
}
