//! Alarms and their history: kept across a reopen, the state kept by a configuration
//! update, all-or-nothing deletes, pages, and the history's bounds.

use super::*;

fn row(name: &str, kind: &str) -> AlarmRow {
    AlarmRow {
        name: name.into(),
        kind: kind.into(),
        config: "{}".into(),
        metric: Some(MetricKey::new(
            "MyApp",
            "Load",
            vec![("Host".into(), "a".into())],
        )),
        actions: vec!["arn:aws:sns:local-1:123456789012:ops".into()],
        actions_enabled: true,
        state: "INSUFFICIENT_DATA".into(),
        reason: "Unchecked: Initial alarm creation".into(),
        reason_data: None,
        state_updated_ms: 1000,
        state_transitioned_ms: 1000,
        config_updated_ms: 1000,
        next_eval: 1,
    }
}

fn item(name: &str, ms: i64, kind: &str) -> HistoryRow {
    HistoryRow {
        alarm_name: name.into(),
        alarm_type: "MetricAlarm".into(),
        time_ms: ms,
        item_type: kind.into(),
        summary: format!("{kind} at {ms}"),
        data: "{}".into(),
    }
}

#[test]
fn alarms_and_history_survive_a_reopen_and_updates_keep_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.db");
    {
        let s = MetricsStore::open(&path).unwrap();
        assert!(
            s.put_alarm(
                &row("a", "MetricAlarm"),
                &item("a", 1000, "ConfigurationUpdate"),
                10
            )
            .unwrap()
        );
        let update = StateUpdate {
            state: "ALARM",
            reason: "crossed",
            reason_data: Some("{}"),
            now_ms: 2000,
            config_seen_ms: Some(1000),
        };
        assert_eq!(
            s.set_alarm_state("a", &update, &[item("a", 2000, "StateUpdate")])
                .unwrap(),
            Some("INSUFFICIENT_DATA".into())
        );
        // An evaluation of an older configuration is not written.
        let stale = StateUpdate {
            config_seen_ms: Some(999),
            ..update
        };
        assert_eq!(s.set_alarm_state("a", &stale, &[]).unwrap(), None);
        let mut again = row("a", "MetricAlarm");
        again.config = r#"{"v": 2}"#.into();
        again.config_updated_ms = 3000;
        s.put_alarm(&again, &item("a", 3000, "ConfigurationUpdate"), 10)
            .unwrap();
    }
    let s = MetricsStore::open(&path).unwrap();
    let a = s.alarm("a").unwrap().unwrap();
    assert_eq!((a.state.as_str(), a.reason.as_str()), ("ALARM", "crossed"));
    assert_eq!((a.state_transitioned_ms, a.config_updated_ms), (2000, 3000));
    assert_eq!(a.config, r#"{"v": 2}"#);
    assert_eq!(
        a.metric.unwrap().dimensions,
        vec![("Host".to_string(), "a".to_string())]
    );
    let h = s
        .alarm_history(
            &HistoryFilter {
                alarm_name: Some("a".into()),
                ..Default::default()
            },
            None,
            10,
        )
        .unwrap();
    let times: Vec<i64> = h.items.iter().map(|i| i.time_ms).collect();
    assert_eq!(times, [3000, 2000, 1000]);
}

#[test]
fn puts_are_capped_deletes_are_all_or_nothing_and_pages_follow_names() {
    let dir = tempfile::tempdir().unwrap();
    let s = MetricsStore::open(&dir.path().join("m.db")).unwrap();
    for n in ["a", "b", "c"] {
        assert!(
            s.put_alarm(
                &row(n, "MetricAlarm"),
                &item(n, 1, "ConfigurationUpdate"),
                3
            )
            .unwrap()
        );
    }
    assert!(
        !s.put_alarm(
            &row("d", "MetricAlarm"),
            &item("d", 1, "ConfigurationUpdate"),
            3
        )
        .unwrap()
    );
    assert!(s.alarm("d").unwrap().is_none());
    let (page, more) = s.alarms(&AlarmFilter::default(), None, 2).unwrap();
    assert_eq!(
        (
            page.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            more
        ),
        (vec!["a", "b"], true)
    );
    let (page, more) = s.alarms(&AlarmFilter::default(), Some("b"), 2).unwrap();
    assert_eq!((page.len(), more), (1, false));
    let sns = AlarmFilter {
        action_prefix: Some("arn:aws:sns:".into()),
        ..Default::default()
    };
    assert_eq!(s.alarms(&sns, None, 10).unwrap().0.len(), 3);
    let ec2 = AlarmFilter {
        action_prefix: Some("arn:aws:automate:".into()),
        ..Default::default()
    };
    assert!(s.alarms(&ec2, None, 10).unwrap().0.is_empty());
    assert_eq!(
        s.delete_alarms(&["a".into(), "x".into(), "x".into()])
            .unwrap(),
        vec!["x".to_string()]
    );
    assert!(s.alarm("a").unwrap().is_some(), "nothing deleted");
    assert!(
        s.delete_alarms(&["a".into(), "a".into(), "b".into()])
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.alarms(&AlarmFilter::default(), None, 10).unwrap().0.len(),
        1
    );
    assert_eq!(
        s.set_alarm_actions(&["c".into(), "zz".into()], false)
            .unwrap(),
        1
    );
    assert!(!s.alarm("c").unwrap().unwrap().actions_enabled);
}

#[test]
fn history_pages_and_ages_out_after_thirty_days() {
    let dir = tempfile::tempdir().unwrap();
    let s = MetricsStore::open(&dir.path().join("m.db")).unwrap();
    let day = 86_400_000;
    let items: Vec<HistoryRow> = (0..40).map(|d| item("a", d * day, "StateUpdate")).collect();
    s.add_alarm_history(&items).unwrap();
    let filter = HistoryFilter {
        ascending: true,
        ..Default::default()
    };
    let first = s.alarm_history(&filter, None, 25).unwrap();
    assert_eq!(first.items.len(), 25);
    let second = s.alarm_history(&filter, first.next, 25).unwrap();
    assert_eq!((second.items.len(), second.next), (15, None));
    assert_eq!(second.items[0].time_ms, 25 * day);
    assert_eq!(s.prune_alarm_history(40 * day).unwrap(), 10);
    let left = s.alarm_history(&filter, None, 100).unwrap().items;
    assert_eq!(left.first().map(|i| i.time_ms), Some(10 * day));
}
