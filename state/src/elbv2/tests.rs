use super::*;

fn conn() -> Connection {
    let mut conn = Connection::open_in_memory().unwrap();
    crate::migrations::migrate(&mut conn).unwrap();
    conn
}

fn tg_row(arn: &str) -> TargetGroupRow {
    TargetGroupRow {
        seq: 0,
        arn: arn.into(),
        name: "web".into(),
        protocol: "HTTP".into(),
        port: 80,
        vpc_id: "vpc-1".into(),
        target_type: "instance".into(),
        health_check: "{}".into(),
        attributes: "{}".into(),
        created_ms: 1,
    }
}

#[test]
fn targets_drain_then_leave_and_registering_again_stops_the_drain() {
    let conn = conn();
    targets::insert_tg(&conn, &tg_row("tg1")).unwrap();
    let t = |id: &str| TargetRow {
        tg_arn: "tg1".into(),
        target_id: id.into(),
        port: 80,
        registered_ms: 10,
        drain_until_ms: None,
    };
    targets::register(&conn, &t("i-1")).unwrap();
    targets::register(&conn, &t("i-2")).unwrap();
    assert!(targets::start_draining(&conn, "tg1", "i-1", 80, 100).unwrap());
    assert!(
        !targets::start_draining(&conn, "tg1", "i-1", 80, 200).unwrap(),
        "once"
    );
    assert!(!targets::start_draining(&conn, "tg1", "i-9", 80, 200).unwrap());
    assert_eq!(
        targets::end_draining(&conn, 99).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(targets::end_draining(&conn, 100).unwrap(), vec!["tg1"]);
    let left: Vec<String> = targets::targets_of(&conn, "tg1")
        .unwrap()
        .into_iter()
        .map(|t| t.target_id)
        .collect();
    assert_eq!(left, ["i-2"]);
    targets::start_draining(&conn, "tg1", "i-2", 80, 100).unwrap();
    targets::register(
        &conn,
        &TargetRow {
            registered_ms: 50,
            ..t("i-2")
        },
    )
    .unwrap();
    let back = &targets::targets_of(&conn, "tg1").unwrap()[0];
    assert_eq!((back.drain_until_ms, back.registered_ms), (None, 50));
}

#[test]
fn forwards_tie_target_groups_to_load_balancers_until_their_listener_goes() {
    let conn = conn();
    put_listener(
        &conn,
        &ListenerRow {
            seq: 0,
            arn: "l1".into(),
            lb_arn: "lb1".into(),
            protocol: "HTTP".into(),
            port: 80,
            certificates: "[]".into(),
            default_actions: "[]".into(),
        },
    )
    .unwrap();
    set_forwards(&conn, "l1", "lb1", &["tg1".into(), "tg2".into()]).unwrap();
    assert_eq!(lbs_of_tg(&conn, "tg1").unwrap(), ["lb1"]);
    assert_eq!(tgs_of_lb(&conn, "lb1").unwrap(), ["tg1", "tg2"]);
    delete_listener(&conn, "l1").unwrap();
    assert!(lbs_of_tg(&conn, "tg1").unwrap().is_empty());
}
