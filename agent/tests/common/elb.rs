//! What the load balancer tests share: signed ELB calls, HTTP through the load balancer
//! from the agent's namespace, target health, CloudWatch sums.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use cli::client::{CLOUDWATCH, CallError, ELBV2};

use super::network::texts;
use super::{Agent, eventually, tail};

/// How long a probe may take to boot and pass its checks.
pub const BOOT: Duration = Duration::from_secs(30);

pub fn elb(agent: &Agent, action: &str, params: &[(&str, &str)]) -> String {
    agent.call_service(ELBV2, action, params)
}

pub fn elb_err(agent: &Agent, action: &str, params: &[(&str, &str)]) -> String {
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
pub fn get(agent: &Agent, ip: &str, host: &str, path: &str) -> Result<(u16, String), String> {
    get_with_cookie(agent, ip, host, path, None).map(|(status, body, _)| (status, body))
}

/// As [`get`], sending `cookie` (`NAME=VALUE`) if given; also gives the `Set-Cookie`
/// header's `NAME=VALUE`, if any.
pub fn get_with_cookie(
    agent: &Agent,
    ip: &str,
    host: &str,
    path: &str,
    cookie: Option<&str>,
) -> Result<(u16, String, Option<String>), String> {
    let addr: SocketAddr = format!("{ip}:80").parse().unwrap();
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n{cookie}\r\n");
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
        let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
        let set_cookie = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("Set-Cookie: ")
                    .or_else(|| l.strip_prefix("set-cookie: "))
            })
            .and_then(|v| v.split(';').next())
            .map(str::to_string);
        Ok((status, body.to_string(), set_cookie))
    })
}

/// Each target's (state, reason) from DescribeTargetHealth.
pub fn health(agent: &Agent, tg: &str) -> HashMap<String, (String, String)> {
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

/// The agent's log lines about HAProxy and load balancers (for failure messages).
pub fn haproxy_log(agent: &Agent) -> String {
    agent
        .log()
        .lines()
        .filter(|l| {
            (l.contains("haproxy") || l.contains("load balancer") || l.contains("target"))
                && !l.contains("api::front")
                && !l.contains("sampled")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every load balancer's servers as HAProxy sees them now (for failure messages).
pub fn haproxy_stats(agent: &Agent) -> String {
    use std::os::unix::net::UnixStream;
    let mut out = String::new();
    for e in std::fs::read_dir(agent.dir.path().join("elb"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(mut s) = UnixStream::connect(e.path().join("stats.sock")) else {
            continue;
        };
        let _ = s.write_all(b"show stat\n");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        for line in text.lines() {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() > 37 {
                out.push_str(&format!(
                    "{} {} {} {} {}\n",
                    f[0], f[1], f[17], f[36], f[23]
                ));
            }
        }
    }
    out
}

/// Every load balancer's HAProxy configuration (for failure messages).
pub fn haproxy_configs(agent: &Agent) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(agent.dir.path().join("elb"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let cfg = std::fs::read_to_string(e.path().join("haproxy.cfg")).unwrap_or_default();
        out.push_str(&format!("{}:\n{cfg}\n", e.path().display()));
    }
    out
}

pub fn wait_health(agent: &Agent, tg: &str, id: &str, state: &str, timeout: Duration) {
    let ok = eventually(timeout, || {
        health(agent, tg).get(id).is_some_and(|(s, _)| s == state)
    });
    assert!(
        ok,
        "{id} not {state} in {timeout:?}: {:?}\nhaproxy:\n{}\nagent log:\n{}",
        health(agent, tg),
        haproxy_configs(agent),
        tail(&agent.log(), 30)
    );
}

/// The sum of a load balancer metric over the last ten minutes.
pub fn metric_sum(agent: &Agent, name: &str, dims: &[(&str, &str)]) -> f64 {
    let now = chrono::Utc::now();
    let start = (now - chrono::Duration::minutes(10)).to_rfc3339();
    let end = (now + chrono::Duration::minutes(1)).to_rfc3339();
    let mut params = vec![
        ("Namespace", "AWS/ApplicationELB".to_string()),
        ("MetricName", name.to_string()),
        ("StartTime", start),
        ("EndTime", end),
        ("Period", "60".to_string()),
        ("Statistics.member.1", "Sum".to_string()),
    ];
    let keys: Vec<(String, String)> = (1..=dims.len())
        .map(|i| {
            (
                format!("Dimensions.member.{i}.Name"),
                format!("Dimensions.member.{i}.Value"),
            )
        })
        .collect();
    for (i, (k, v)) in dims.iter().enumerate() {
        params.push((keys[i].0.as_str(), k.to_string()));
        params.push((keys[i].1.as_str(), v.to_string()));
    }
    let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let xml = agent.call_service(CLOUDWATCH, "GetMetricStatistics", &p);
    texts(&xml, "Sum")
        .iter()
        .filter_map(|s| s.parse::<f64>().ok())
        .sum()
}

/// Launches a probe and waits until it serves its own instance id (it serves
/// `imds-pending` until it has read the metadata).
pub fn launch(agent: &Agent, ami: &str) -> String {
    let id = agent.run_one(ami);
    let ready = eventually(BOOT, || agent.console(&id).contains("probe: imds done"));
    assert!(ready, "{id} did not boot:\n{}", agent.console(&id));
    id
}

/// The probes' pages (instance ids) of `n` requests through the load balancer.
pub fn pages(agent: &Agent, ip: &str, dns: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let (status, body) = get(agent, ip, dns, "/").expect("the load balancer answers");
            assert_eq!(status, 200, "{body}");
            body.trim().to_string()
        })
        .collect()
}
