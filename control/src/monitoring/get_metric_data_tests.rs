//! GetMetricData: its checks with CloudWatch's codes, two metrics read at once, and pages.

use super::*;
use crate::monitoring::put_metric_data::{Datum, PutMetricData, put_metric_data};
use crate::monitoring::test_store;

const NOW: i64 = 1_796_688_000;

fn stat(name: &str, stat: &str) -> MetricStat {
    MetricStat {
        namespace: Some("MyApp".into()),
        metric_name: Some(name.into()),
        dimensions: vec![],
        period: 60,
        stat: stat.into(),
        unit: None,
    }
}

fn query(id: &str, s: MetricStat) -> MetricDataQuery {
    MetricDataQuery {
        id: id.into(),
        metric_stat: Some(s),
        expression: None,
        label: None,
        return_data: None,
    }
}

fn request(queries: Vec<MetricDataQuery>) -> MetricDataRequest {
    MetricDataRequest {
        queries,
        start: NOW - 600,
        end: NOW,
        ascending: false,
        max_datapoints: None,
        next_token: None,
    }
}

/// Ten minutes of `Hits` (1 to 10, one a minute) and `Misses` (10 times each).
fn fill(s: &MetricsStore) {
    let data = (0..10)
        .flat_map(|m| {
            let at = NOW - 600 + 60 * m;
            let datum = |name: &str, v: f64| Datum {
                metric_name: name.into(),
                timestamp: Some(at),
                value: Some(v),
                ..Default::default()
            };
            [
                datum("Hits", (m + 1) as f64),
                datum("Misses", (10 * (m + 1)) as f64),
            ]
        })
        .collect();
    let r = PutMetricData {
        namespace: "MyApp".into(),
        data,
    };
    put_metric_data(s, &r, NOW).unwrap();
}

fn code(r: &MetricDataRequest) -> &'static str {
    let (_d, s) = test_store();
    get_metric_data(&s, r, NOW).unwrap_err().code().unwrap()
}

#[test]
fn malformed_queries_are_validation_errors() {
    assert_eq!(code(&request(vec![])), "ValidationError");
    assert_eq!(
        code(&request(vec![query("M1", stat("Hits", "Sum"))])),
        "ValidationError"
    );
    assert_eq!(
        code(&request(vec![query("1m", stat("Hits", "Sum"))])),
        "ValidationError"
    );
    let twice = vec![
        query("a", stat("Hits", "Sum")),
        query("a", stat("Misses", "Sum")),
    ];
    assert_eq!(code(&request(twice)), "ValidationError");
    assert_eq!(
        code(&request(vec![query("a", stat("Hits", "Median"))])),
        "ValidationError"
    );
    let mut bad_period = stat("Hits", "Sum");
    bad_period.period = 90;
    assert_eq!(
        code(&request(vec![query("a", bad_period)])),
        "ValidationError"
    );
    let mut math = query("e", stat("Hits", "Sum"));
    math.metric_stat = None;
    math.expression = Some("m1 * 2".into());
    assert_eq!(code(&request(vec![math])), "ValidationError");
    let mut r = request(vec![query("a", stat("Hits", "Sum"))]);
    r.max_datapoints = Some(0);
    assert_eq!(code(&r), "ValidationError");
    r.max_datapoints = None;
    r.next_token = Some("forged".into());
    assert_eq!(code(&r), "InvalidNextToken");
}

#[test]
fn two_metrics_are_read_at_once_newest_first_by_default() {
    let (_d, s) = test_store();
    fill(&s);
    let mut hidden = query("hidden", stat("Hits", "Sum"));
    hidden.return_data = Some(false);
    let mut labelled = query("misses", stat("Misses", "Average"));
    labelled.label = Some("Cache misses".into());
    let r = request(vec![query("hits", stat("Hits", "Sum")), labelled, hidden]);
    let page = get_metric_data(&s, &r, NOW).unwrap();
    assert_eq!(page.next_token, None);
    assert_eq!(page.results.len(), 2);
    let hits = &page.results[0];
    assert_eq!((hits.id.as_str(), hits.label.as_str()), ("hits", "Hits"));
    assert_eq!(
        hits.values,
        (1..=10).rev().map(f64::from).collect::<Vec<_>>()
    );
    assert_eq!(hits.timestamps[0], NOW - 60);
    assert_eq!(hits.status, Status::Complete);
    assert_eq!(page.results[1].label, "Cache misses");
    assert_eq!(page.results[1].values[0], 100.0);
    let mut ascending = r.clone();
    ascending.ascending = true;
    let page = get_metric_data(&s, &ascending, NOW).unwrap();
    assert_eq!(page.results[0].timestamps[0], NOW - 600);
}

#[test]
fn pages_of_max_datapoints_cover_every_datapoint_once() {
    let (_d, s) = test_store();
    fill(&s);
    let mut r = request(vec![
        query("hits", stat("Hits", "Sum")),
        query("misses", stat("Misses", "Sum")),
    ]);
    r.max_datapoints = Some(7);
    let mut got: Vec<(String, i64)> = Vec::new();
    let mut pages = 0;
    loop {
        let page = get_metric_data(&s, &r, NOW).unwrap();
        pages += 1;
        let n: usize = page.results.iter().map(|x| x.values.len()).sum();
        assert!(n <= 7);
        for x in &page.results {
            got.extend(x.timestamps.iter().map(|t| (x.id.clone(), *t)));
        }
        match page.next_token {
            Some(t) => {
                assert!(page.results.iter().any(|x| x.status == Status::PartialData));
                r.next_token = Some(t);
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(got.len(), 20);
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 20);
    // A token is refused on another request.
    let other = MetricDataRequest {
        next_token: Some("gmd1-7-0000000000000000".into()),
        ..request(vec![query("hits", stat("Hits", "Sum"))])
    };
    assert_eq!(code(&other), "InvalidNextToken");
}

fn expression(id: &str, text: &str) -> MetricDataQuery {
    MetricDataQuery {
        id: id.into(),
        metric_stat: None,
        expression: Some(text.into()),
        label: None,
        return_data: None,
    }
}

#[test]
fn expressions_compute_over_other_queries_hidden_ones_included() {
    let (_d, s) = test_store();
    fill(&s);
    let hidden = |mut q: MetricDataQuery| {
        q.return_data = Some(false);
        q
    };
    let r = request(vec![
        // Named before it is defined: the order of evaluation follows the references.
        expression("twice", "ratio * 2"),
        expression("ratio", "hits / misses * 100"),
        expression("total", "SUM(METRICS())"),
        hidden(query("hits", stat("Hits", "Sum"))),
        hidden(query("misses", stat("Misses", "Sum"))),
    ]);
    let page = get_metric_data(&s, &r, NOW).unwrap();
    let by_id = |id: &str| page.results.iter().find(|x| x.id == id).unwrap();
    assert_eq!(page.results.len(), 3);
    assert_eq!(by_id("ratio").values, vec![10.0; 10]);
    assert_eq!(by_id("twice").values, vec![20.0; 10]);
    assert_eq!(by_id("ratio").label, "ratio");
    let total = &by_id("total").values;
    assert_eq!(total[0], 110.0);
    assert_eq!(total[9], 11.0);
    assert_eq!(by_id("total").timestamps[0], NOW - 60);
    // Unknown ids, cycles and syntax errors are validation errors.
    let unknown = request(vec![expression("e", "m1 * 2")]);
    assert_eq!(code(&unknown), "ValidationError");
    let cycle = request(vec![expression("a", "b + 1"), expression("b", "a + 1")]);
    assert_eq!(code(&cycle), "ValidationError");
    let syntax = request(vec![expression("a", "SUM(")]);
    assert_eq!(code(&syntax), "ValidationError");
}
