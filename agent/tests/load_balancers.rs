//! Elastic Load Balancing v2 end to end: a real agent, probe instances as targets, one HAProxy
//! per load balancer in the agent's network namespace, and HTTP clients in that namespace
//! (the only addresses reached are the test's own). Application load balancers here, driven
//! signed over awsQuery and by `load_balancers.py` (boto3 and the `aws` CLI); network load
//! balancers and the `ec2` CLI in `load_balancers_network.rs`.

mod common;

use std::time::{Duration, Instant};

use cli::client::CLOUDWATCH;
use common::elb::*;
use common::network::{first, texts};
use common::{Agent, eventually};

#[test]
fn an_application_load_balancer_spreads_requests_checks_health_drains_and_routes() {
    let agent = Agent::start(&["--metrics-interval", "2"]);
    let ami = agent.register_probe();
    let a = launch(&agent, &ami);
    let b = launch(&agent, &ami);
    agent.wait_state(&a, "running", BOOT);
    agent.wait_state(&b, "running", BOOT);
    let vpc = first(&agent.call("DescribeVpcs", &[]), "vpcId");
    let subnet = first(&agent.call("DescribeSubnets", &[]), "subnetId");

    let created = elb(
        &agent,
        "CreateTargetGroup",
        &[
            ("Name", "web"),
            ("Protocol", "HTTP"),
            ("Port", "80"),
            ("VpcId", &vpc),
            ("HealthCheckIntervalSeconds", "5"),
            ("HealthCheckTimeoutSeconds", "2"),
            ("HealthyThresholdCount", "2"),
            ("UnhealthyThresholdCount", "2"),
        ],
    );
    let tg = first(&created, "TargetGroupArn");
    assert!(tg.contains(":targetgroup/web/"), "{tg}");
    elb(
        &agent,
        "RegisterTargets",
        &[
            ("TargetGroupArn", &tg),
            ("Targets.member.1.Id", &a),
            ("Targets.member.2.Id", &b),
        ],
    );
    let unused = health(&agent, &tg);
    assert_eq!(
        unused.get(&a).map(|h| h.1.as_str()),
        Some("Target.NotInUse"),
        "{unused:?}"
    );

    let lb_xml = elb(
        &agent,
        "CreateLoadBalancer",
        &[("Name", "front"), ("Subnets.member.1", &subnet)],
    );
    let lb = first(&lb_xml, "LoadBalancerArn");
    let dns = first(&lb_xml, "DNSName");
    assert!(
        dns.starts_with("front-") && dns.ends_with(".local-1.elb.localhost"),
        "{dns}"
    );
    let ip = first(&lb_xml, "IpAddress");
    // Its interface is an ENI of the subnet, as ELB's are.
    let enis = agent.call("DescribeNetworkInterfaces", &[]);
    assert!(enis.contains("ELB app/front/"), "{enis}");

    let listener_xml = elb(
        &agent,
        "CreateListener",
        &[
            ("LoadBalancerArn", &lb),
            ("Protocol", "HTTP"),
            ("Port", "80"),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.TargetGroupArn", &tg),
        ],
    );
    let listener = first(&listener_xml, "ListenerArn");
    // The hosts file names the load balancer's address.
    assert!(eventually(Duration::from_secs(10), || {
        std::fs::read_to_string(agent.dir.path().join("elb/hosts"))
            .is_ok_and(|h| h.contains(&format!("{ip} {dns}")))
    }));

    // initial (registration, then the first checks; HAProxy may have checked them already),
    // then healthy.
    let first_states = health(&agent, &tg);
    assert!(
        first_states.values().all(|(s, r)| (s == "initial"
            && (r == "Elb.RegistrationInProgress" || r == "Elb.InitialHealthChecking"))
            || s == "healthy"),
        "{first_states:?}"
    );
    wait_health(&agent, &tg, &a, "healthy", BOOT);
    wait_health(&agent, &tg, &b, "healthy", BOOT);
    let state = elb(
        &agent,
        "DescribeLoadBalancers",
        &[("Names.member.1", "front")],
    );
    assert_eq!(first(&state, "Code"), "active");

    // Requests go to both probes in turn.
    let seen = pages(&agent, &ip, &dns, 6);
    assert!(seen.contains(&a) && seen.contains(&b), "{seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] != w[1]),
        "round robin: {seen:?}"
    );

    // HAProxy's counters reach CloudWatch with ELB's dimensions.
    let lb_dim = lb.split(":loadbalancer/").nth(1).unwrap().to_string();
    let tg_dim = format!("targetgroup/{}", tg.split(":targetgroup/").nth(1).unwrap());
    let counted = eventually(Duration::from_secs(20), || {
        metric_sum(&agent, "RequestCount", &[("LoadBalancer", &lb_dim)]) >= 6.0
            && metric_sum(
                &agent,
                "HTTPCode_Target_2XX_Count",
                &[("LoadBalancer", &lb_dim), ("TargetGroup", &tg_dim)],
            ) >= 6.0
    });
    assert!(
        counted,
        "RequestCount {}",
        metric_sum(&agent, "RequestCount", &[("LoadBalancer", &lb_dim)])
    );
    let listed = agent.call_service(
        CLOUDWATCH,
        "ListMetrics",
        &[
            ("Namespace", "AWS/ApplicationELB"),
            ("MetricName", "HealthyHostCount"),
        ],
    );
    assert!(listed.contains(&tg_dim), "{listed}");

    // lb_cookie stickiness: a client that sends back the AWSALB cookie stays on one target.
    let stickiness = |on: &str| {
        elb(
            &agent,
            "ModifyTargetGroupAttributes",
            &[
                ("TargetGroupArn", &tg),
                ("Attributes.member.1.Key", "stickiness.enabled"),
                ("Attributes.member.1.Value", on),
                (
                    "Attributes.member.2.Key",
                    "stickiness.lb_cookie.duration_seconds",
                ),
                ("Attributes.member.2.Value", "60"),
            ],
        )
    };
    stickiness("true");
    let cookie = eventually(Duration::from_secs(10), || {
        get_with_cookie(&agent, &ip, &dns, "/", None).is_ok_and(|(_, _, c)| c.is_some())
    });
    assert!(cookie, "no AWSALB cookie once stickiness is on");
    let (_, page, cookie) = get_with_cookie(&agent, &ip, &dns, "/", None).unwrap();
    let cookie = cookie.unwrap();
    assert!(cookie.starts_with("AWSALB="), "{cookie}");
    for _ in 0..4 {
        let (_, again, _) = get_with_cookie(&agent, &ip, &dns, "/", Some(&cookie)).unwrap();
        assert_eq!(again, page, "sticky");
    }
    stickiness("false");

    // Bad inputs get ELB's codes and change nothing.
    assert_eq!(
        elb_err(
            &agent,
            "CreateTargetGroup",
            &[
                ("Name", "web"),
                ("Protocol", "TCP"),
                ("Port", "81"),
                ("VpcId", &vpc)
            ]
        ),
        "DuplicateTargetGroupName"
    );
    assert_eq!(
        elb_err(
            &agent,
            "CreateLoadBalancer",
            &[
                ("Name", "front"),
                ("Subnets.member.1", &subnet),
                ("Type", "network")
            ]
        ),
        "DuplicateLoadBalancerName"
    );
    assert_eq!(
        elb_err(
            &agent,
            "CreateTargetGroup",
            &[
                ("Name", "-bad"),
                ("Protocol", "HTTP"),
                ("Port", "80"),
                ("VpcId", &vpc)
            ]
        ),
        "ValidationError"
    );
    let gone_tg = tg.replace("/web/", "/nope/");
    assert_eq!(
        elb_err(
            &agent,
            "DescribeTargetHealth",
            &[("TargetGroupArn", &gone_tg)]
        ),
        "TargetGroupNotFound"
    );
    assert_eq!(
        elb_err(
            &agent,
            "DescribeLoadBalancers",
            &[("Names.member.1", "nope")]
        ),
        "LoadBalancerNotFound"
    );
    assert_eq!(
        elb_err(&agent, "DeleteTargetGroup", &[("TargetGroupArn", &tg)]),
        "ResourceInUse"
    );
    assert_eq!(
        elb_err(
            &agent,
            "RegisterTargets",
            &[
                ("TargetGroupArn", &tg),
                ("Targets.member.1.Id", "i-0123456789abcdef0")
            ]
        ),
        "InvalidTarget"
    );
    assert_eq!(
        elb_err(
            &agent,
            "CreateListener",
            &[
                ("LoadBalancerArn", &lb),
                ("Protocol", "HTTP"),
                ("Port", "80"),
                ("DefaultActions.member.1.Type", "forward"),
                ("DefaultActions.member.1.TargetGroupArn", &tg)
            ]
        ),
        "DuplicateListener"
    );
    let names = texts(&elb(&agent, "DescribeTargetGroups", &[]), "TargetGroupName");
    assert_eq!(names, ["web"], "nothing was made by the refused calls");

    // Rules: a fixed response for /fixed/*, and /only-a/* to a group holding only `a`.
    let only_a = first(
        &elb(
            &agent,
            "CreateTargetGroup",
            &[
                ("Name", "only-a"),
                ("Protocol", "HTTP"),
                ("Port", "80"),
                ("VpcId", &vpc),
                ("HealthCheckIntervalSeconds", "5"),
                ("HealthCheckTimeoutSeconds", "2"),
                ("HealthyThresholdCount", "2"),
            ],
        ),
        "TargetGroupArn",
    );
    elb(
        &agent,
        "RegisterTargets",
        &[("TargetGroupArn", &only_a), ("Targets.member.1.Id", &a)],
    );
    elb(
        &agent,
        "CreateRule",
        &[
            ("ListenerArn", &listener),
            ("Priority", "10"),
            ("Conditions.member.1.Field", "path-pattern"),
            ("Conditions.member.1.Values.member.1", "/fixed/*"),
            ("Actions.member.1.Type", "fixed-response"),
            ("Actions.member.1.FixedResponseConfig.StatusCode", "404"),
            (
                "Actions.member.1.FixedResponseConfig.ContentType",
                "text/plain",
            ),
            (
                "Actions.member.1.FixedResponseConfig.MessageBody",
                "nothing here",
            ),
        ],
    );
    elb(
        &agent,
        "CreateRule",
        &[
            ("ListenerArn", &listener),
            ("Priority", "20"),
            (
                "Conditions.member.1.PathPatternConfig.Values.member.1",
                "/only-a/*",
            ),
            ("Conditions.member.1.Field", "path-pattern"),
            ("Actions.member.1.Type", "forward"),
            ("Actions.member.1.TargetGroupArn", &only_a),
        ],
    );
    assert_eq!(
        elb_err(
            &agent,
            "CreateRule",
            &[
                ("ListenerArn", &listener),
                ("Priority", "10"),
                ("Conditions.member.1.Field", "path-pattern"),
                ("Conditions.member.1.Values.member.1", "/x"),
                ("Actions.member.1.Type", "forward"),
                ("Actions.member.1.TargetGroupArn", &tg)
            ]
        ),
        "PriorityInUse"
    );
    wait_health(&agent, &only_a, &a, "healthy", BOOT);
    let fixed = eventually(Duration::from_secs(10), || {
        get(&agent, &ip, &dns, "/fixed/page").ok() == Some((404, "nothing here".into()))
    });
    assert!(fixed, "{:?}", get(&agent, &ip, &dns, "/fixed/page"));
    for _ in 0..4 {
        let (status, body) = get(&agent, &ip, &dns, "/only-a/x").unwrap();
        assert_eq!(
            (status, body.trim()),
            (200, a.as_str()),
            "{}",
            haproxy_log(&agent)
        );
    }
    let rules = elb(&agent, "DescribeRules", &[("ListenerArn", &listener)]);
    assert_eq!(texts(&rules, "Priority"), ["10", "20", "default"]);

    // A health check whose matcher the probes never answer: unhealthy, with the code seen.
    elb(
        &agent,
        "ModifyTargetGroup",
        &[("TargetGroupArn", &only_a), ("Matcher.HttpCode", "202")],
    );
    wait_health(&agent, &only_a, &a, "unhealthy", BOOT);
    assert_eq!(health(&agent, &only_a)[&a].1, "Target.ResponseCodeMismatch");

    // Draining: b stops getting requests at once, is draining for the delay, then gone.
    elb(
        &agent,
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &tg),
            (
                "Attributes.member.1.Key",
                "deregistration_delay.timeout_seconds",
            ),
            ("Attributes.member.1.Value", "6"),
        ],
    );
    elb(
        &agent,
        "DeregisterTargets",
        &[("TargetGroupArn", &tg), ("Targets.member.1.Id", &b)],
    );
    assert_eq!(
        health(&agent, &tg)[&b],
        (
            "draining".to_string(),
            "Target.DeregistrationInProgress".to_string()
        )
    );
    std::thread::sleep(Duration::from_millis(1500));
    let seen = pages(&agent, &ip, &dns, 4);
    assert!(
        seen.iter().all(|p| *p == a),
        "a draining target gets no new requests: {seen:?}"
    );
    assert!(eventually(Duration::from_secs(15), || !health(&agent, &tg)
        .contains_key(&b)));

    // A target whose vmm dies is taken out within the health-check settings, with no failed
    // request (HAProxy retries a failed connection on another target).
    elb(
        &agent,
        "RegisterTargets",
        &[("TargetGroupArn", &tg), ("Targets.member.1.Id", &b)],
    );
    wait_health(&agent, &tg, &b, "healthy", BOOT);
    let pid = agent.vmm_pid(&a).expect("a's vmm");
    // SAFETY: kill(2) on the vmm this test's agent started for instance `a`.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let started = Instant::now();
    let mut failures = 0;
    let mut last = Vec::new();
    while started.elapsed() < Duration::from_secs(20) {
        match get(&agent, &ip, &dns, "/") {
            Ok((200, body)) => last.push(body.trim().to_string()),
            other => {
                failures += 1;
                eprintln!(
                    "failed request at {:?}: {other:?}\n{}",
                    started.elapsed(),
                    haproxy_stats(&agent)
                );
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(failures, 0, "no request failed:\n{}", haproxy_log(&agent));
    assert!(
        last.iter().rev().take(5).all(|p| *p == b),
        "only b serves now: {last:?}"
    );
    let (state, reason) = health(&agent, &tg)[&a].clone();
    assert!(
        state == "unhealthy" || (state == "unused" && reason == "Target.InvalidState"),
        "{state} {reason}"
    );

    // Deleting the load balancer stops its HAProxy; then the group can go.
    elb(&agent, "DeleteLoadBalancer", &[("LoadBalancerArn", &lb)]);
    assert!(eventually(Duration::from_secs(10), || get(
        &agent, &ip, &dns, "/"
    )
    .is_err()));
    elb(&agent, "DeleteTargetGroup", &[("TargetGroupArn", &tg)]);
    let enis = agent.call("DescribeNetworkInterfaces", &[]);
    assert!(
        !enis.contains("ELB app/front/"),
        "its interface is gone: {enis}"
    );
}

#[test]
fn boto3_and_the_aws_cli_drive_a_load_balancer() {
    let agent = Agent::start(&[]);
    let ami = agent.register_probe();
    let out = common::run_python(
        &agent,
        "load_balancers.py",
        &[&ami, &agent.ns.0],
        "elbv2: ok",
    );
    for part in [
        "traffic",
        "attributes",
        "tags",
        "rules",
        "errors",
        "cli",
        "https",
        "modify listener",
    ] {
        assert!(out.contains(&format!("elbv2 {part}: ok")), "{out}");
    }
}
