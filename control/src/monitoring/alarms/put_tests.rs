//! PutMetricAlarm's and PutCompositeAlarm's checks, each with CloudWatch's code, and what
//! a put keeps.

use super::*;
use crate::monitoring::alarms::commands::{DescribeAlarms, describe_alarms};
use crate::monitoring::test_store;

const NOW_MS: i64 = 1_796_652_180_000;

pub(crate) fn cpu_alarm(name: &str) -> PutMetricAlarm {
    PutMetricAlarm {
        name: name.into(),
        namespace: Some("AWS/EC2".into()),
        metric_name: Some("CPUUtilization".into()),
        dimensions: vec![("InstanceId".into(), "i-0123456789abcdef0".into())],
        statistic: Some("Average".into()),
        period: Some(60),
        evaluation_periods: Some(3),
        threshold: Some(70.0),
        comparison_operator: Some("GreaterThanThreshold".into()),
        ..Default::default()
    }
}

fn code(p: &PutMetricAlarm) -> &'static str {
    let (_d, s) = test_store();
    let e = put_metric_alarm(&s, p, NOW_MS).unwrap_err();
    let listed = describe_alarms(&s, &DescribeAlarms::default()).unwrap();
    assert!(listed.alarms.is_empty(), "a refused put stores nothing");
    e.code().unwrap()
}

#[test]
fn each_check_has_cloudwatch_code() {
    let with = |f: &dyn Fn(&mut PutMetricAlarm)| {
        let mut p = cpu_alarm("cpu");
        f(&mut p);
        code(&p)
    };
    assert_eq!(with(&|p| p.period = Some(15)), "ValidationError");
    assert_eq!(with(&|p| p.period = Some(5)), "ValidationError");
    assert_eq!(with(&|p| p.period = None), "ValidationError");
    assert_eq!(
        with(&|p| {
            p.period = Some(3600);
            p.evaluation_periods = Some(25);
        }),
        "ValidationError"
    );
    assert_eq!(
        with(&|p| p.datapoints_to_alarm = Some(4)),
        "ValidationError"
    );
    assert_eq!(with(&|p| p.evaluation_periods = None), "ValidationError");
    assert_eq!(with(&|p| p.threshold = None), "ValidationError");
    assert_eq!(with(&|p| p.threshold = Some(f64::NAN)), "ValidationError");
    assert_eq!(with(&|p| p.comparison_operator = None), "ValidationError");
    assert_eq!(
        with(&|p| p.comparison_operator = Some("LessThanLowerThreshold".into())),
        "ValidationError"
    );
    assert_eq!(
        with(&|p| p.extended_statistic = Some("p90".into())),
        "InvalidParameterCombination"
    );
    assert_eq!(with(&|p| p.statistic = None), "ValidationError");
    assert_eq!(
        with(&|p| {
            p.statistic = None;
            p.extended_statistic = Some("p101".into());
        }),
        "InvalidParameterValue"
    );
    assert_eq!(with(&|p| p.namespace = None), "ValidationError");
    assert_eq!(
        with(&|p| p.treat_missing_data = Some("sometimes".into())),
        "ValidationError"
    );
    assert_eq!(
        with(&|p| p.evaluate_low_sample_count_percentile = Some("maybe".into())),
        "ValidationError"
    );
    assert_eq!(
        with(&|p| p.alarm_actions = vec!["arn:aws:automate:local-1:ec2:explode".into()]),
        "ValidationError"
    );
    assert_eq!(
        with(&|p| p.alarm_actions = vec!["arn:aws:automate:us-east-1:ec2:stop".into()]),
        "ValidationError"
    );
    assert_eq!(
        with(&|p| {
            p.dimensions.clear();
            p.alarm_actions = vec!["arn:aws:automate:local-1:ec2:stop".into()];
        }),
        "ValidationError"
    );
    assert_eq!(
        with(&|p| p.dimensions.push(("InstanceId".into(), "i-2".into()))),
        "InvalidParameterValue"
    );
    assert_eq!(with(&|p| p.name = "bad\nname".into()), "ValidationError");
    assert_eq!(
        with(&|p| p.unsupported = Some("EvaluationCriteria")),
        "ValidationError"
    );
    // Metrics exclude the single-metric members, and need exactly one ReturnData.
    let query = |id: &str, ret: Option<bool>| AlarmQuery {
        id: id.into(),
        metric: Some(super::super::config::QueryMetric {
            namespace: Some("MyApp".into()),
            metric_name: Some("Load".into()),
            dimensions: vec![],
            period: 60,
            stat: "Sum".into(),
            unit: None,
        }),
        expression: None,
        label: None,
        return_data: ret,
        period: None,
    };
    assert_eq!(
        with(&|p| p.metrics = vec![query("m1", None)]),
        "InvalidParameterCombination"
    );
    let math = |p: &mut PutMetricAlarm, metrics: Vec<AlarmQuery>| {
        *p = PutMetricAlarm {
            metrics,
            ..cpu_alarm("cpu")
        };
        p.namespace = None;
        p.metric_name = None;
        p.dimensions.clear();
        p.statistic = None;
        p.period = None;
    };
    assert_eq!(
        with(&|p| math(p, vec![query("m1", None), query("m2", None)])),
        "ValidationError"
    );
    assert_eq!(
        with(&|p| math(p, vec![query("m1", Some(false)), query("M2", None)])),
        "ValidationError"
    );
    let (_d, s) = test_store();
    let mut p = cpu_alarm("math");
    let mut e = query("e1", None);
    e.metric = None;
    e.expression = Some("m1 * 2".into());
    math(&mut p, vec![query("m1", Some(false)), e]);
    put_metric_alarm(&s, &p, NOW_MS).unwrap();
}

#[test]
fn a_new_alarm_is_unchecked_and_an_update_keeps_its_state() {
    let (_d, s) = test_store();
    let mut p = cpu_alarm("cpu");
    p.alarm_actions = vec!["arn:aws:automate:local-1:ec2:stop".into()];
    put_metric_alarm(&s, &p, NOW_MS).unwrap();
    let a = &describe_alarms(&s, &DescribeAlarms::default())
        .unwrap()
        .alarms[0];
    assert_eq!(a.state, StateValue::InsufficientData);
    assert_eq!(a.reason, INITIAL_REASON);
    assert!(a.actions_enabled);
    crate::monitoring::alarms::commands::set_alarm_state(
        &s,
        "cpu",
        StateValue::Alarm,
        "test",
        None,
        NOW_MS + 1,
    )
    .unwrap();
    p.threshold = Some(90.0);
    p.actions_enabled = Some(false);
    put_metric_alarm(&s, &p, NOW_MS + 2).unwrap();
    let a = &describe_alarms(&s, &DescribeAlarms::default())
        .unwrap()
        .alarms[0];
    assert_eq!((a.state, a.reason.as_str()), (StateValue::Alarm, "test"));
    assert!(!a.actions_enabled);
    assert_eq!(a.config_updated_ms, NOW_MS + 2);
    let AlarmKind::Metric(m) = &a.config.kind else {
        panic!("a metric alarm")
    };
    assert_eq!(m.threshold, 90.0);
}

#[test]
fn composite_rules_name_existing_alarms_without_cycles() {
    let (_d, s) = test_store();
    put_metric_alarm(&s, &cpu_alarm("cpu"), NOW_MS).unwrap();
    let composite = |name: &str, rule: &str| PutCompositeAlarm {
        name: name.into(),
        rule: rule.into(),
        ..Default::default()
    };
    let e = put_composite_alarm(&s, &composite("c", r#"ALARM("ghost")"#), NOW_MS).unwrap_err();
    assert_eq!(e.code(), Some("ValidationError"));
    let e = put_composite_alarm(&s, &composite("c", r#"ALARM("cpu") AND"#), NOW_MS).unwrap_err();
    assert_eq!(e.code(), Some("ValidationError"));
    let e = put_composite_alarm(&s, &composite("c", r#"ALARM("c")"#), NOW_MS).unwrap_err();
    assert_eq!(e.code(), Some("ValidationError"));
    put_composite_alarm(&s, &composite("c1", r#"ALARM("cpu")"#), NOW_MS).unwrap();
    put_composite_alarm(&s, &composite("c2", r#"ALARM("c1") OR OK(cpu)"#), NOW_MS).unwrap();
    // c1 naming c2 would make c1 -> c2 -> c1.
    let e = put_composite_alarm(&s, &composite("c1", r#"ALARM("c2")"#), NOW_MS).unwrap_err();
    assert_eq!(e.code(), Some("ValidationError"));
    let mut ec2 = composite("c3", r#"ALARM("cpu")"#);
    ec2.alarm_actions = vec!["arn:aws:automate:local-1:ec2:stop".into()];
    assert_eq!(
        put_composite_alarm(&s, &ec2, NOW_MS).unwrap_err().code(),
        Some("ValidationError")
    );
    // A metric alarm's name cannot be reused by a composite alarm.
    let e = put_composite_alarm(&s, &composite("cpu", "TRUE"), NOW_MS).unwrap_err();
    assert_eq!(e.code(), Some("ValidationError"));
}
