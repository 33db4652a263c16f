//! The metrics store as a user of it sees it: what is put reads back, at every resolution,
//! for as long as CloudWatch keeps it, across restarts, within its cap.

use super::*;

const DAY: i64 = 86_400;
/// A Monday, 00:00:00 UTC: a multiple of every resolution.
const T0: i64 = 1_796_688_000;

fn store() -> (tempfile::TempDir, MetricsStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = MetricsStore::open(&dir.path().join("metrics.db")).unwrap();
    (dir, s)
}

fn key(name: &str) -> MetricKey {
    MetricKey::new(
        "MyApp",
        name,
        vec![
            ("Host".into(), "web-1".into()),
            ("Env".into(), "prod".into()),
        ],
    )
}

fn obs(name: &str, time: i64, value: f64, high_resolution: bool) -> Observation {
    Observation {
        key: key(name),
        time,
        high_resolution,
        unit: "Count".into(),
        aggregate: Aggregate::of_value(value, 1.0),
    }
}

fn stats(p: &PointRow) -> (i64, f64, f64, f64, f64) {
    let a = &p.aggregate;
    (p.time, a.count, a.sum, a.min, a.max)
}

#[test]
fn values_put_read_back_per_minute_with_their_statistics() {
    let (_d, s) = store();
    let put: Vec<_> = [1.0, 5.0, 3.0]
        .iter()
        .enumerate()
        .map(|(i, &v)| obs("Requests", T0 + 10 * i as i64, v, false))
        .chain([obs("Requests", T0 + 70, 8.0, false)])
        .collect();
    s.put(&put, T0 + 100).unwrap();
    let points = s
        .points(&key("Requests"), Resolution::Minute, T0, T0 + 120, None)
        .unwrap();
    let got: Vec<_> = points.iter().map(stats).collect();
    assert_eq!(
        got,
        [(T0, 3.0, 9.0, 1.0, 5.0), (T0 + 60, 1.0, 8.0, 8.0, 8.0)]
    );
    assert_eq!(points[0].unit, "Count");
    // Dimensions given in another order name the same metric.
    let reordered = MetricKey::new(
        "MyApp",
        "Requests",
        vec![
            ("Env".into(), "prod".into()),
            ("Host".into(), "web-1".into()),
        ],
    );
    assert_eq!(
        s.points(&reordered, Resolution::Minute, T0, T0 + 60, None)
            .unwrap()
            .len(),
        1
    );
    // Another unit is a point of its own; a unit filter reads only its points.
    let mut bytes = obs("Requests", T0 + 5, 100.0, false);
    bytes.unit = "Bytes".into();
    s.put(&[bytes], T0 + 100).unwrap();
    let all = s
        .points(&key("Requests"), Resolution::Minute, T0, T0 + 60, None)
        .unwrap();
    assert_eq!(all.len(), 2);
    let only = s
        .points(
            &key("Requests"),
            Resolution::Minute,
            T0,
            T0 + 60,
            Some("Bytes"),
        )
        .unwrap();
    assert_eq!(
        only.iter().map(stats).collect::<Vec<_>>(),
        [(T0, 1.0, 100.0, 100.0, 100.0)]
    );
}

#[test]
fn a_high_resolution_metric_is_kept_per_second_and_per_minute() {
    let (_d, s) = store();
    let put: Vec<_> = (0..10)
        .map(|i| obs("Latency", T0 + i, i as f64, true))
        .collect();
    s.put(&put, T0 + 10).unwrap();
    let seconds = s
        .points(&key("Latency"), Resolution::Second, T0, T0 + 60, None)
        .unwrap();
    assert_eq!(seconds.len(), 10);
    assert_eq!(stats(&seconds[3]), (T0 + 3, 1.0, 3.0, 3.0, 3.0));
    let minutes = s
        .points(&key("Latency"), Resolution::Minute, T0, T0 + 60, None)
        .unwrap();
    assert_eq!(
        minutes.iter().map(stats).collect::<Vec<_>>(),
        [(T0, 10.0, 45.0, 0.0, 9.0)]
    );
}

#[test]
fn roll_ups_merge_minutes_into_five_minutes_and_hours_percentiles_included() {
    let (_d, s) = store();
    // One value per minute for two hours: 1, 2, ..., 120.
    let put: Vec<_> = (0..120)
        .map(|m| obs("Cpu", T0 + 60 * m, (m + 1) as f64, false))
        .collect();
    s.put(&put, T0 + 7200).unwrap();
    let report = s.prune_and_roll_up(T0 + 7200).unwrap();
    assert_eq!(report.rolled_up, 24 + 2);
    let five = s
        .points(&key("Cpu"), Resolution::FiveMinutes, T0, T0 + 7200, None)
        .unwrap();
    assert_eq!(five.len(), 24);
    assert_eq!(
        stats(&five[1]),
        (T0 + 300, 5.0, 6.0 + 7.0 + 8.0 + 9.0 + 10.0, 6.0, 10.0)
    );
    let hours = s
        .points(&key("Cpu"), Resolution::Hour, T0, T0 + 7200, None)
        .unwrap();
    assert_eq!(
        hours.iter().map(stats).collect::<Vec<_>>(),
        [
            (T0, 60.0, (1..=60).sum::<i32>() as f64, 1.0, 60.0),
            (T0 + 3600, 60.0, (61..=120).sum::<i32>() as f64, 61.0, 120.0),
        ]
    );
    let p90 = hours[1].aggregate.sketch.quantile(0.9).unwrap();
    assert!((p90 - 114.0).abs() <= 1.15, "{p90}");
    // Again at the same time: nothing more.
    assert_eq!(s.prune_and_roll_up(T0 + 7200).unwrap().rolled_up, 0);
    let again = s
        .points(&key("Cpu"), Resolution::Hour, T0, T0 + 7200, None)
        .unwrap();
    assert_eq!(again, hours);
}

#[test]
fn points_not_rolled_up_yet_come_from_the_finer_resolution_and_late_ones_go_straight_in() {
    let (_d, s) = store();
    s.put(&[obs("Cpu", T0 + 10, 1.0, false)], T0 + 20).unwrap();
    s.prune_and_roll_up(T0 + 600).unwrap();
    // After the roll-up: a point in a period still open, and one late, in a rolled period.
    s.put(
        &[
            obs("Cpu", T0 + 610, 2.0, false),
            obs("Cpu", T0 + 20, 4.0, false),
        ],
        T0 + 620,
    )
    .unwrap();
    let five = s
        .points(&key("Cpu"), Resolution::FiveMinutes, T0, T0 + 900, None)
        .unwrap();
    assert_eq!(
        five.iter().map(stats).collect::<Vec<_>>(),
        [(T0, 2.0, 5.0, 1.0, 4.0), (T0 + 600, 1.0, 2.0, 2.0, 2.0),]
    );
    // The hour is not complete: it all comes from below.
    let hour = s
        .points(&key("Cpu"), Resolution::Hour, T0, T0 + 3600, None)
        .unwrap();
    assert_eq!(hour.iter().map(|p| p.aggregate.count).sum::<f64>(), 3.0);
}

#[test]
fn retention_drops_each_resolution_past_its_age_and_keeps_the_coarser_ones() {
    let (_d, s) = store();
    s.put(&[obs("Old", T0, 7.0, true)], T0).unwrap();
    s.prune_and_roll_up(T0 + 3600).unwrap();
    let count = |r| {
        s.points(&key("Old"), r, T0 - DAY, T0 + DAY, None)
            .unwrap()
            .len()
    };
    assert_eq!(Resolution::ALL.map(count), [1, 1, 1, 1]);
    // Just inside three hours, then past it: the second goes, the rest stays.
    s.prune_and_roll_up(T0 + 3 * 3600).unwrap();
    assert_eq!(count(Resolution::Second), 1);
    s.prune_and_roll_up(T0 + 3 * 3600 + 1).unwrap();
    assert_eq!(Resolution::ALL.map(count), [0, 1, 1, 1]);
    s.prune_and_roll_up(T0 + 15 * DAY + 1).unwrap();
    assert_eq!(Resolution::ALL.map(count), [0, 0, 1, 1]);
    s.prune_and_roll_up(T0 + 63 * DAY + 1).unwrap();
    assert_eq!(Resolution::ALL.map(count), [0, 0, 0, 1]);
    let far = T0 + 455 * DAY + 1;
    let report = s.prune_and_roll_up(far).unwrap();
    assert_eq!((report.pruned_points, report.pruned_metrics), (1, 1));
    let listed = s.list(&ListFilter::default(), 0, 10).unwrap();
    assert!(listed.metrics.is_empty());
}

#[test]
fn what_was_put_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.db");
    {
        let s = MetricsStore::open(&path).unwrap();
        s.put(&[obs("Kept", T0, 3.0, false)], T0).unwrap();
        s.prune_and_roll_up(T0 + 600).unwrap();
        s.put_dashboard("ops", "{\"widgets\":[]}", 5, 10).unwrap();
    }
    let s = MetricsStore::open(&path).unwrap();
    let points = s
        .points(&key("Kept"), Resolution::FiveMinutes, T0, T0 + 600, None)
        .unwrap();
    assert_eq!(
        points.iter().map(stats).collect::<Vec<_>>(),
        [(T0, 1.0, 3.0, 3.0, 3.0)]
    );
    assert_eq!(
        s.list(&ListFilter::default(), 0, 10).unwrap().metrics,
        [key("Kept")]
    );
    assert_eq!(s.dashboard("ops").unwrap().unwrap().last_modified_ms, 5);
}

#[test]
fn the_cap_on_distinct_metrics_refuses_a_whole_put() {
    let dir = tempfile::tempdir().unwrap();
    let s = MetricsStore::open_with_cap(&dir.path().join("m.db"), 2).unwrap();
    s.put(&[obs("A", T0, 1.0, false), obs("B", T0, 1.0, false)], T0)
        .unwrap();
    // More points of known metrics are fine.
    s.put(&[obs("A", T0 + 60, 1.0, false)], T0).unwrap();
    let e = s.put(
        &[obs("A", T0 + 120, 1.0, false), obs("C", T0, 1.0, false)],
        T0,
    );
    assert!(
        matches!(e, Err(PutError::TooManyMetrics { limit: 2 })),
        "{e:?}"
    );
    // Nothing of the refused put was kept.
    let a = s
        .points(&key("A"), Resolution::Minute, T0, T0 + 600, None)
        .unwrap();
    assert_eq!(a.len(), 2);
}

#[test]
fn listing_filters_by_namespace_name_dimensions_and_recency_in_pages() {
    let (_d, s) = store();
    let mut put = Vec::new();
    for i in 0..7 {
        let mut o = obs(&format!("M{i}"), T0, 1.0, false);
        if i % 2 == 1 {
            o.key = MetricKey::new("Other", format!("M{i}"), vec![("Host".into(), "db".into())]);
        }
        put.push(o);
    }
    s.put(&put, T0).unwrap();
    s.put(&[obs("M0", T0, 1.0, false)], T0 + 3 * 3600).unwrap();
    let all = |f: &ListFilter| {
        let mut names = Vec::new();
        let mut after = 0;
        loop {
            let page = s.list(f, after, 2).unwrap();
            assert!(page.metrics.len() <= 2);
            names.extend(page.metrics.into_iter().map(|k| k.name));
            match page.next {
                Some(n) => after = n,
                None => return names,
            }
        }
    };
    assert_eq!(all(&ListFilter::default()).len(), 7);
    let my_app = ListFilter {
        namespace: Some("MyApp".into()),
        ..Default::default()
    };
    assert_eq!(all(&my_app), ["M0", "M2", "M4", "M6"]);
    let db = ListFilter {
        dimensions: vec![DimensionFilter {
            name: "Host".into(),
            value: Some("db".into()),
        }],
        ..Default::default()
    };
    assert_eq!(all(&db), ["M1", "M3", "M5"]);
    let any_env = ListFilter {
        dimensions: vec![DimensionFilter {
            name: "Env".into(),
            value: None,
        }],
        name: Some("M2".into()),
        ..Default::default()
    };
    assert_eq!(all(&any_env), ["M2"]);
    let recent = ListFilter {
        put_since: T0 + 3600,
        ..Default::default()
    };
    assert_eq!(all(&recent), ["M0"]);
}

#[test]
fn dashboards_are_put_read_listed_by_prefix_and_deleted_all_or_nothing() {
    let (_d, s) = store();
    for name in ["prod-web", "prod-db", "dev", "prod-cache"] {
        assert!(s.put_dashboard(name, "{}", 1, 4).unwrap());
    }
    assert!(!s.put_dashboard("fifth", "{}", 1, 4).unwrap());
    assert!(s.put_dashboard("dev", "{\"widgets\":[]}", 2, 4).unwrap());
    assert_eq!(
        s.dashboard("dev").unwrap().unwrap().body,
        "{\"widgets\":[]}"
    );
    assert_eq!(s.dashboard("nope").unwrap(), None);
    let page = s.dashboards("prod-", None, 2).unwrap();
    let names: Vec<_> = page.dashboards.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["prod-cache", "prod-db"]);
    let rest = s.dashboards("prod-", page.next.as_deref(), 2).unwrap();
    assert_eq!(rest.dashboards.len(), 1);
    assert_eq!(rest.next, None);
    let missing = s
        .delete_dashboards(&["dev".into(), "ghost".into(), "dev".into()])
        .unwrap();
    assert_eq!(missing, ["ghost"]);
    assert!(s.dashboard("dev").unwrap().is_some());
    assert!(
        s.delete_dashboards(&["dev".into(), "prod-db".into()])
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.dashboards("", None, 10).unwrap().dashboards.len(), 2);
}
