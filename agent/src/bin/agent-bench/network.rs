//! Network benchmarks: the metadata service measured from inside a probe instance
//! (`probe.imds_bench=N`), and how long a security-group change takes to reach a running
//! instance (from the API call until a new connection to its public address succeeds, or
//! fails again after a revoke).

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use host::netns::NetNs;

use super::{AgentProc, p, register, run_one};

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    text.split(start).nth(1)?.split(end).next()
}

fn number(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Whether a new TCP connection to `addr` succeeds within `timeout`, from namespace `ns`.
fn connects(ns: &NetNs, addr: SocketAddr, timeout: Duration) -> bool {
    ns.run(|| TcpStream::connect_timeout(&addr, timeout).is_ok())
        .unwrap_or(false)
}

/// Runs the network benchmarks with `requests` metadata GETs and `changes` rule changes.
pub fn run(manifest: &std::path::Path, requests: u32, changes: usize) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let a = AgentProc::start(dir.path(), &[]);
    let c = a.client();
    let probe = manifest.with_file_name("probe.elf");
    let args = format!("probe.net=dhcp probe.imds=v2 probe.http=imds probe.imds_bench={requests}");
    let ami = register(&c, &probe, &args);
    let id = run_one(&c, ami, &[]);
    let console = dir.path().join("instances").join(&id).join("console.log");
    let t0 = Instant::now();
    let line = loop {
        let text = std::fs::read_to_string(&console).unwrap_or_default();
        // Only a whole line: the probe may be writing it while it is read.
        let whole = text.split_inclusive('\n').filter(|l| l.ends_with('\n'));
        if let Some(line) = whole
            .map(str::trim_end)
            .find(|l| l.starts_with("probe: imds bench "))
        {
            break line.to_owned();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no imds bench line:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let imds = serde_json::json!({
        "requests": number(&line, "n"),
        "ok": number(&line, "ok"),
        "requests_per_s": number(&line, "rps"),
        "p50_ms": number(&line, "p50_us") / 1000.0,
        "p99_ms": number(&line, "p99_us") / 1000.0,
        "connection": "new TCP connection per request (HTTP/1.0, IMDSv2 token)",
    });

    // Security-group changes against the instance's public address.
    let xml = c
        .call("DescribeInstances", &[("InstanceId.1".into(), id.clone())])
        .unwrap();
    let public = between(&xml, "<ipAddress>", "<").unwrap().to_owned();
    let addr: SocketAddr = format!("{public}:80").parse().unwrap();
    let xml = c
        .call(
            "DescribeSecurityGroups",
            &[("GroupName.1".into(), "default".into())],
        )
        .unwrap();
    let group = between(&xml, "<groupId>", "<").unwrap().to_owned();
    let ns = NetNs::named(&a.netns).unwrap();
    let rule = |action: &str| {
        c.call(
            action,
            &[
                ("GroupId".into(), group.clone()),
                ("IpPermissions.1.IpProtocol".into(), "tcp".into()),
                ("IpPermissions.1.FromPort".into(), "80".into()),
                ("IpPermissions.1.ToPort".into(), "80".into()),
                (
                    "IpPermissions.1.IpRanges.1.CidrIp".into(),
                    "0.0.0.0/0".into(),
                ),
            ],
        )
        .unwrap();
    };
    let (mut open, mut close, mut api) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..changes {
        let t = Instant::now();
        rule("AuthorizeSecurityGroupIngress");
        api.push(t.elapsed().as_secs_f64() * 1000.0);
        while !connects(&ns, addr, Duration::from_millis(200)) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "authorize never took effect"
            );
        }
        open.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        rule("RevokeSecurityGroupIngress");
        while connects(&ns, addr, Duration::from_millis(50)) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "revoke never took effect"
            );
        }
        close.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    for v in [&mut open, &mut close, &mut api] {
        v.sort_by(|a, b| a.total_cmp(b));
    }
    serde_json::json!({
        "imds": imds,
        "security_group_change": {
            "changes": changes,
            "authorize_api_ms_p50": p(&api, 0.5),
            "authorize_to_first_connection_ms_p50": p(&open, 0.5),
            "authorize_to_first_connection_ms_max": p(&open, 1.0),
            "revoke_to_refused_connection_ms_p50": p(&close, 0.5),
            "revoke_to_refused_connection_ms_max": p(&close, 1.0),
        },
    })
}
