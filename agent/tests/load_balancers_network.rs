//! Network load balancers end to end (a TCP listener, connections that finish on a draining
//! target, a killed HAProxy started again, an agent restart) and the `ec2` CLI's
//! load-balancing commands, with probe instances as targets and clients in the agent's
//! namespace.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::elb::*;
use common::network::first;
use common::{Agent, eventually, tail};

/// A connection through the load balancer that sends nothing yet.
fn hold(agent: &Agent, ip: &str) -> TcpStream {
    let addr: SocketAddr = format!("{ip}:80").parse().unwrap();
    agent
        .ns
        .run(move || TcpStream::connect_timeout(&addr, Duration::from_secs(3)))
        .expect("the load balancer accepts")
}

/// The page a held connection gets once it asks.
fn finish(mut s: TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.0 200"), "{reply}");
    reply
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or("")
        .trim()
        .to_string()
}

#[test]
fn a_network_load_balancer_lets_connections_finish_while_draining_and_survives_restarts() {
    let mut agent = Agent::start(&[]);
    let ami = agent.register_probe();
    let a = launch(&agent, &ami);
    let b = launch(&agent, &ami);
    agent.wait_state(&a, "running", BOOT);
    agent.wait_state(&b, "running", BOOT);
    let vpc = first(&agent.call("DescribeVpcs", &[]), "vpcId");
    let subnet = first(&agent.call("DescribeSubnets", &[]), "subnetId");
    let group = common::network::default_group(&agent);
    let tg = first(
        &elb(
            &agent,
            "CreateTargetGroup",
            &[
                ("Name", "tcp"),
                ("Protocol", "TCP"),
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
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &tg),
            (
                "Attributes.member.1.Key",
                "deregistration_delay.timeout_seconds",
            ),
            ("Attributes.member.1.Value", "30"),
        ],
    );
    elb(
        &agent,
        "RegisterTargets",
        &[
            ("TargetGroupArn", &tg),
            ("Targets.member.1.Id", &a),
            ("Targets.member.2.Id", &b),
        ],
    );
    let lb_xml = elb(
        &agent,
        "CreateLoadBalancer",
        &[
            ("Name", "tcp-front"),
            ("Type", "network"),
            ("Subnets.member.1", &subnet),
            ("SecurityGroups.member.1", &group),
        ],
    );
    let lb = first(&lb_xml, "LoadBalancerArn");
    assert!(lb.contains(":loadbalancer/net/tcp-front/"), "{lb}");
    let ip = first(&lb_xml, "IpAddress");
    assert_eq!(
        elb_err(
            &agent,
            "CreateListener",
            &[
                ("LoadBalancerArn", &lb),
                ("Protocol", "HTTP"),
                ("Port", "80"),
                ("DefaultActions.member.1.Type", "forward"),
                ("DefaultActions.member.1.TargetGroupArn", &tg),
            ],
        ),
        "IncompatibleProtocols"
    );
    elb(
        &agent,
        "CreateListener",
        &[
            ("LoadBalancerArn", &lb),
            ("Protocol", "TCP"),
            ("Port", "80"),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.TargetGroupArn", &tg),
        ],
    );
    wait_health(&agent, &tg, &a, "healthy", BOOT);
    wait_health(&agent, &tg, &b, "healthy", BOOT);
    let seen = pages(&agent, &ip, "tcp-front", 4);
    assert!(seen.contains(&a) && seen.contains(&b), "{seen:?}");

    // Connections made before b is deregistered finish on it; new ones go to a only.
    let held: Vec<TcpStream> = (0..4).map(|_| hold(&agent, &ip)).collect();
    elb(
        &agent,
        "DeregisterTargets",
        &[("TargetGroupArn", &tg), ("Targets.member.1.Id", &b)],
    );
    assert_eq!(health(&agent, &tg)[&b].0, "draining");
    std::thread::sleep(Duration::from_millis(1500));
    let fresh = pages(&agent, &ip, "tcp-front", 4);
    assert!(fresh.iter().all(|p| *p == a), "new connections: {fresh:?}");
    let finished: Vec<String> = held.into_iter().map(finish).collect();
    assert!(
        finished.contains(&b),
        "an in-flight connection to the draining target finished: {finished:?}"
    );

    // A HAProxy that dies is started again by the agent.
    elb(
        &agent,
        "RegisterTargets",
        &[("TargetGroupArn", &tg), ("Targets.member.1.Id", &b)],
    );
    let id = lb.rsplit('/').next().unwrap().to_string();
    let pid_file = agent.dir.path().join("elb").join(&id).join("haproxy.pid");
    let master: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) on the HAProxy master this test's agent started.
    unsafe {
        libc::kill(master, libc::SIGKILL);
    }
    let back = eventually(Duration::from_secs(15), || {
        std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
            .is_some_and(|p| p != master && common::pid_alive(p))
            && get(&agent, &ip, "tcp-front", "/").is_ok()
    });
    assert!(back, "haproxy restarted:\n{}", tail(&agent.log(), 30));

    // The agent restarting leaves the load balancer serving, and takes it up again.
    agent.restart();
    let seen = pages(&agent, &ip, "tcp-front", 2);
    assert!(seen.iter().all(|p| *p == a || *p == b), "{seen:?}");
    let described = elb(
        &agent,
        "DescribeLoadBalancers",
        &[("LoadBalancerArns.member.1", &lb)],
    );
    assert_eq!(first(&described, "Code"), "active");
    wait_health(&agent, &tg, &b, "healthy", BOOT);
}

#[test]
fn the_ec2_cli_makes_a_load_balancer_that_serves() {
    let agent = Agent::start(&[]);
    let ami = agent.register_probe();
    let a = launch(&agent, &ami);
    agent.wait_state(&a, "running", BOOT);
    let vpc = first(&agent.call("DescribeVpcs", &[]), "vpcId");
    let subnet = first(&agent.call("DescribeSubnets", &[]), "subnetId");
    let tg = agent
        .ec2_ok(&[
            "create-target-group",
            "--name",
            "cli-web",
            "--vpc-id",
            &vpc,
            "--health-check-interval-seconds",
            "10",
            "--healthy-threshold-count",
            "2",
        ])
        .trim()
        .to_string();
    assert!(tg.contains(":targetgroup/cli-web/"), "{tg}");
    agent.ec2_ok(&[
        "register-targets",
        "--target-group-arn",
        &tg,
        "--targets",
        &a,
    ]);
    let out = agent.ec2_ok(&[
        "create-load-balancer",
        "--name",
        "cli-lb",
        "--subnets",
        &subnet,
    ]);
    let row: Vec<&str> = out.lines().nth(1).unwrap().split('\t').collect();
    let (lb, dns, ip) = (row[0].to_string(), row[1].to_string(), row[2].to_string());
    agent.ec2_ok(&[
        "create-listener",
        "--load-balancer-arn",
        &lb,
        "--target-group-arn",
        &tg,
    ]);
    let healthy = eventually(BOOT, || {
        agent
            .ec2_ok(&["describe-target-health", "--target-group-arn", &tg])
            .contains(&format!("{a}\t80\thealthy"))
    });
    assert!(
        healthy,
        "{}",
        agent.ec2_ok(&["describe-target-health", "--target-group-arn", &tg])
    );
    assert_eq!(pages(&agent, &ip, &dns, 2), [a.clone(), a]);
    let listed = agent.ec2_ok(&["describe-load-balancers"]);
    assert!(listed.contains(&format!("{dns}\t{ip}\tactive")), "{listed}");
    let bad = agent.ec2(&[
        "create-load-balancer",
        "--name",
        "cli-lb",
        "--subnets",
        &subnet,
        "--type",
        "network",
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("DuplicateLoadBalancerName"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
