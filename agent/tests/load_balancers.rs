//! Elastic Load Balancing v2 end to end: a real agent, probe instances as targets, one HAProxy
//! per load balancer in the agent's network namespace, and HTTP clients in that namespace
//! (the only addresses reached are the test's own). The API is driven signed over awsQuery
//! here; `load_balancers.py` drives it with boto3 and the `aws` CLI.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use cli::client::{CallError, ELBV2};
use common::network::{first, texts};
use common::{Agent, eventually, tail};

const BOOT: Duration = Duration::from_secs(30);

fn elb(agent: &Agent, action: &str, params: &[(&str, &str)]) -> String {
    agent.call_service(ELBV2, action, params)
}

fn elb_err(agent: &Agent, action: &str, params: &[(&str, &str)]) -> String {
    let p: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match agent.client().call_service(ELBV2, action, &p) {
        Err(CallError::Api { code, .. }) => code,
        Err(e) => panic!("{action}: expected ELB's error, got {e}"),
        Ok(xml) => panic!("{action}: expected ELB's error, got success:\n{xml}"),
    }
}

/// An HTTP/1.0 GET of `path` on `ip:80` from the agent's namespace, with `host` as the
/// Host header: the status code and the body.
fn get(agent: &Agent, ip: &str, host: &str, path: &str) -> Result<(u16, String), String> {
    let addr: SocketAddr = format!("{ip}:80").parse().unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    agent.ns.run(move || {
        let mut s =
            TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).map_err(|e| e.to_string())?;
        let status = reply
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("no status in {reply:?}"))?;
        let body = reply.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        Ok((status, body))
    })
}

/// Each target's (state, reason) from DescribeTargetHealth.
fn health(agent: &Agent, tg: &str) -> HashMap<String, (String, String)> {
    let xml = elb(agent, "DescribeTargetHealth", &[("TargetGroupArn", tg)]);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("member") && n.children().any(|c| c.has_tag_name("Target")))
        .map(|m| {
            let text = |parent: &str, name: &str| {
                m.descendants()
                    .find(|n| n.has_tag_name(parent))
                    .and_then(|p| p.children().find(|c| c.has_tag_name(name)))
                    .and_then(|c| c.text())
                    .unwrap_or("")
                    .to_string()
            };
            (
                text("Target", "Id"),
                (
                    text("TargetHealth", "State"),
                    text("TargetHealth", "Reason"),
                ),
            )
        })
        .collect()
}

fn wait_health(agent: &Agent, tg: &str, id: &str, state: &str, timeout: Duration) {
    let ok = eventually(timeout, || {
        health(agent, tg).get(id).is_some_and(|(s, _)| s == state)
    });
    assert!(
        ok,
        "{id} not {state} in {timeout:?}: {:?}\nagent log:\n{}",
        health(agent, tg),
        tail(&agent.log(), 30)
    );
}

fn launch(agent: &Agent, ami: &str) -> String {
    agent.run_one(ami)
}

/// The probes' pages (instance ids) of `n` requests through the load balancer.
fn pages(agent: &Agent, ip: &str, dns: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let (status, body) = get(agent, ip, dns, "/").expect("the load balancer answers");
            assert_eq!(status, 200, "{body}");
            body.trim().to_string()
        })
        .collect()
}

#[test]
fn an_application_load_balancer_spreads_requests_checks_health_drains_and_routes() {
    let agent = Agent::start(&[]);
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

    // initial, then healthy.
    let first_states = health(&agent, &tg);
    assert!(
        first_states
            .values()
            .all(|(s, _)| s == "initial" || s == "healthy"),
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
        assert_eq!((status, body.trim()), (200, a.as_str()));
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
                eprintln!("failed request: {other:?}");
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(failures, 0, "no request failed");
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
    for part in ["traffic", "attributes", "tags", "rules", "errors", "cli"] {
        assert!(out.contains(&format!("elbv2 {part}: ok")), "{out}");
    }
}
