use super::*;

fn row(proxy: &str, name: &str) -> StatRow {
    StatRow {
        proxy: proxy.into(),
        name: name.into(),
        ..StatRow::default()
    }
}

fn value(obs: &[Observation], name: &str, dims: usize) -> f64 {
    obs.iter()
        .find(|o| o.key.name == name && o.key.dimensions.len() == dims)
        .map(|o| o.aggregate.sum / o.aggregate.count)
        .unwrap_or_else(|| panic!("no {name} with {dims} dimensions"))
}

fn reading(rows: Vec<StatRow>) -> Reading<'static> {
    Reading {
        lb_dimension: "app/web/1",
        http: true,
        groups: vec![("tg-2".into(), "targetgroup/tg/2".into())],
        rows,
    }
}

#[test]
fn counts_are_per_interval_and_elb_errors_are_what_targets_did_not_answer() {
    let mut fe = row("listener_80", "FRONTEND");
    fe.requests = 10;
    fe.responses = [0, 7, 0, 0, 3, 0];
    let mut be = row("tg-2", "BACKEND");
    be.responses = [0, 7, 0, 0, 1, 0];
    be.response_ms = 20;
    let mut up = row("tg-2", "i-a_80");
    up.status = "UP".into();
    let mut down = row("tg-2", "i-b_80");
    down.status = "DOWN".into();
    let mut last = Counters::new();
    let obs = observations(
        &reading(vec![fe.clone(), be.clone(), up.clone(), down.clone()]),
        &mut last,
        60,
    );
    assert!(
        obs.iter()
            .all(|o| o.key.namespace == "AWS/ApplicationELB" && o.time == 60)
    );
    assert_eq!(value(&obs, "RequestCount", 1), 10.0);
    assert_eq!(value(&obs, "RequestCount", 2), 8.0);
    assert_eq!(value(&obs, "HTTPCode_Target_2XX_Count", 1), 7.0);
    assert_eq!(value(&obs, "HTTPCode_Target_5XX_Count", 2), 1.0);
    assert_eq!(value(&obs, "HTTPCode_ELB_5XX_Count", 1), 2.0);
    assert_eq!(value(&obs, "HealthyHostCount", 2), 1.0);
    assert_eq!(value(&obs, "UnHealthyHostCount", 2), 1.0);
    assert_eq!(value(&obs, "RequestCountPerTarget", 1), 8.0);
    assert!((value(&obs, "TargetResponseTime", 2) - 0.02).abs() < 1e-9);
    let tg = obs
        .iter()
        .find(|o| o.key.name == "RequestCountPerTarget" && o.key.dimensions.len() == 1)
        .unwrap();
    assert_eq!(
        tg.key.dimensions,
        [("TargetGroup".to_string(), "targetgroup/tg/2".to_string())]
    );

    // The next interval counts only what is new; a counter that went down (a reload) counts
    // from zero.
    fe.requests = 14;
    fe.responses = [0, 11, 0, 0, 3, 0];
    be.responses = [0, 2, 0, 0, 0, 0];
    let obs = observations(&reading(vec![fe, be, up, down]), &mut last, 120);
    assert_eq!(value(&obs, "RequestCount", 1), 4.0);
    assert_eq!(value(&obs, "RequestCount", 2), 2.0);
    assert_eq!(value(&obs, "HTTPCode_ELB_5XX_Count", 1), 0.0);
}

#[test]
fn network_load_balancers_count_flows_and_bytes() {
    let mut fe = row("listener_22", "FRONTEND");
    fe.sessions = 5;
    fe.current = 2;
    fe.bytes = (100, 300);
    let mut last = Counters::new();
    let r = Reading {
        lb_dimension: "net/n/1",
        http: false,
        groups: vec![],
        rows: vec![fe],
    };
    let obs = observations(&r, &mut last, 60);
    assert!(obs.iter().all(|o| o.key.namespace == "AWS/NetworkELB"));
    assert_eq!(value(&obs, "NewFlowCount", 1), 5.0);
    assert_eq!(value(&obs, "ActiveFlowCount", 1), 2.0);
    assert_eq!(value(&obs, "ProcessedBytes", 1), 400.0);
}
