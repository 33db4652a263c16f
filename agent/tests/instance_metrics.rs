//! CloudWatch's instance metrics and EC2's status checks on a real agent sampling every
//! second (`--metrics-interval 1`) with probe instances as guests: the metrics move as the
//! guest's traffic does, detailed and basic monitoring publish at their cadence, and
//! DescribeInstanceStatus shows the three checks. Metrics are read back with boto3's
//! cloudwatch client (`metric_reader.py`).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::network::{create_group, first, texts};
use common::{Agent, eventually, instance_ids, tail};

const BOOT: Duration = Duration::from_secs(30);

/// A group open to TCP from anywhere on `ports`.
fn open_group(agent: &Agent, ports: &[&str]) -> String {
    let g = create_group(agent, "metrics", None);
    for port in ports {
        agent.call(
            "AuthorizeSecurityGroupIngress",
            &[
                ("GroupId", &g),
                ("IpPermissions.1.IpProtocol", "tcp"),
                ("IpPermissions.1.FromPort", port),
                ("IpPermissions.1.ToPort", port),
                ("IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0"),
            ],
        );
    }
    g
}

/// Launches one t2.nano of `ami` in `group` with a 1 GiB data volume, with detailed
/// monitoring when `detailed`.
fn launch(agent: &Agent, ami: &str, group: &str, detailed: bool) -> String {
    let on = if detailed { "true" } else { "false" };
    let xml = agent.call(
        "RunInstances",
        &[
            ("ImageId", ami),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("InstanceType", "t2.nano"),
            ("SecurityGroupId.1", group),
            ("Monitoring.Enabled", on),
            ("BlockDeviceMapping.1.DeviceName", "/dev/sdf"),
            ("BlockDeviceMapping.1.Ebs.VolumeSize", "1"),
        ],
    );
    let id = instance_ids(&xml)[0].clone();
    agent.wait_state(&id, "running", BOOT);
    let state = if detailed { "enabled" } else { "disabled" };
    assert_eq!(monitoring(agent, &id), state);
    id
}

/// The instance's monitoring state in DescribeInstances.
fn monitoring(agent: &Agent, id: &str) -> String {
    let xml = agent.call("DescribeInstances", &[("InstanceId.1", id)]);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    doc.descendants()
        .find(|n| n.has_tag_name("monitoring"))
        .map(|n| common::child_text(n, "state"))
        .unwrap()
}

/// The instance's public address, once the probe has its network up.
fn public_ip(agent: &Agent, id: &str) -> String {
    assert!(
        eventually(BOOT, || agent.console(id).contains("probe: imds done")),
        "the probe's network never came up:\n{}",
        agent.console(id)
    );
    first(
        &agent.call("DescribeInstances", &[("InstanceId.1", id)]),
        "ipAddress",
    )
}

/// Reads all of what the probe's source (port 19) sends, from the agent's namespace.
fn download(agent: &Agent, ip: &str) -> usize {
    let addr: SocketAddr = format!("{ip}:19").parse().unwrap();
    agent.ns.run(move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got.len()
    })
}

/// Sends `n` bytes to the probe's discard sink (port 9).
fn upload(agent: &Agent, ip: &str, n: usize) {
    let addr: SocketAddr = format!("{ip}:9").parse().unwrap();
    agent.ns.run(move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).unwrap();
        s.write_all(&vec![b'x'; n]).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    })
}

/// One metric's datapoints over the last `seconds` at `period`, and the metric names of
/// that dimension, from boto3.
fn read(
    agent: &Agent,
    ns: &str,
    metric: &str,
    dim: (&str, &str),
    seconds: u32,
    period: u32,
) -> serde_json::Value {
    let out = common::run_python(
        agent,
        "metric_reader.py",
        &[
            ns,
            metric,
            dim.0,
            dim.1,
            &seconds.to_string(),
            &period.to_string(),
        ],
        "metric reader: ok",
    );
    serde_json::from_str(out.lines().next().unwrap()).unwrap()
}

fn sum(v: &serde_json::Value) -> f64 {
    v["datapoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sum"].as_f64().unwrap())
        .sum()
}

/// The instance's `(systemStatus, instanceStatus, attachedEbsStatus)` summaries and its
/// instance check's reachability detail.
fn checks(agent: &Agent, id: &str) -> (String, String, String, String) {
    let xml = agent.call("DescribeInstanceStatus", &[("InstanceId.1", id)]);
    let statuses = texts(&xml, "status");
    // systemStatus: status, details…; instanceStatus: …; attachedEbsStatus: …
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let summary = |tag: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name(tag))
            .map(|n| common::child_text(n, "status"))
            .unwrap_or_default()
    };
    let detail = doc
        .descendants()
        .find(|n| n.has_tag_name("instanceStatus"))
        .and_then(|n| n.descendants().find(|d| d.has_tag_name("details")))
        .map(|d| {
            d.descendants()
                .filter(|x| x.has_tag_name("status"))
                .filter_map(|x| x.text())
                .collect::<String>()
        })
        .unwrap_or_default();
    assert!(!statuses.is_empty(), "{xml}");
    (
        summary("systemStatus"),
        summary("instanceStatus"),
        summary("attachedEbsStatus"),
        detail,
    )
}

#[test]
fn instance_metrics_follow_the_guests_traffic_and_the_checks_pass() {
    let agent = Agent::start(&["--metrics-interval", "1"]);
    let ami = agent.register_probe();
    let group = open_group(&agent, &["9", "19"]);
    let id = launch(&agent, &ami, &group, true);
    assert!(
        eventually(BOOT, || checks(&agent, &id).0 == "ok"
            && checks(&agent, &id).1 == "ok"),
        "status checks never passed: {:?}\n{}",
        checks(&agent, &id),
        tail(&agent.log(), 30)
    );
    let (system, instance, ebs, detail) = checks(&agent, &id);
    assert_eq!(
        (system.as_str(), instance.as_str(), ebs.as_str()),
        ("ok", "ok", "ok")
    );
    assert_eq!(detail, "passed");
    // Filters on the checks.
    let xml = agent.call(
        "DescribeInstanceStatus",
        &[
            ("Filter.1.Name", "instance-status.reachability"),
            ("Filter.1.Value.1", "failed"),
        ],
    );
    assert!(texts(&xml, "instanceId").is_empty(), "{xml}");
    let xml = agent.call(
        "DescribeInstanceStatus",
        &[
            ("Filter.1.Name", "system-status.status"),
            ("Filter.1.Value.1", "ok"),
        ],
    );
    assert_eq!(texts(&xml, "instanceId"), vec![id.clone()]);

    let ip = public_ip(&agent, &id);
    let got = download(&agent, &ip);
    upload(&agent, &ip, 3 << 20);
    assert!(got >= 1 << 20, "the probe's source sent only {got} bytes");
    // Two more samples, so the windows that saw the transfers are recorded.
    std::thread::sleep(Duration::from_secs(3));
    let dim = ("InstanceId", id.as_str());
    let out = read(&agent, "AWS/EC2", "NetworkOut", dim, 120, 1);
    let sent = sum(&out);
    // Each way: the bytes moved, plus headers, plus the ACKs of the other way's transfer
    // (a 66-byte frame per one or two segments: under 5 % of it).
    let up = (3 << 20) as f64;
    let down = got as f64;
    assert!(
        sent >= down && sent < down * 1.1 + up * 0.05 + 100_000.0,
        "NetworkOut {sent} for a {got}-byte download and a 3 MiB upload: {out}"
    );
    let received = sum(&read(&agent, "AWS/EC2", "NetworkIn", dim, 120, 1));
    assert!(
        received >= up && received < up * 1.1 + down * 0.05 + 100_000.0,
        "NetworkIn {received} for a 3 MiB upload and a {got}-byte download"
    );
    let names: Vec<String> = serde_json::from_value(out["metrics"].clone()).unwrap();
    for m in [
        "CPUUtilization",
        "NetworkIn",
        "NetworkOut",
        "NetworkPacketsIn",
        "NetworkPacketsOut",
        "DiskReadOps",
        "EBSWriteBytes",
        "StatusCheckFailed",
        "StatusCheckFailed_Instance",
        "StatusCheckFailed_System",
        "StatusCheckFailed_AttachedEBS",
        "CPUCreditUsage",
        "CPUCreditBalance",
    ] {
        assert!(names.iter().any(|n| n == m), "no {m} in {names:?}");
    }
    let cpu = read(&agent, "AWS/EC2", "CPUUtilization", dim, 60, 1);
    let points = cpu["datapoints"].as_array().unwrap();
    let log = agent.log();
    let sampled: String = log
        .lines()
        .filter(|l| l.contains("sampl"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        points.len() >= 3,
        "one CPUUtilization point a second: {cpu}\n{sampled}"
    );
    assert!(
        points
            .iter()
            .all(|p| (0.0..=100.0).contains(&p["max"].as_f64().unwrap()) && p["unit"] == "Percent"),
        "{cpu}"
    );
    // An idle probe's vCPU waits on the wait port: it uses little CPU.
    let idle = points.last().unwrap()["avg"].as_f64().unwrap();
    assert!(idle < 20.0, "an idle probe at {idle} % CPU: {cpu}");
    let failed = read(&agent, "AWS/EC2", "StatusCheckFailed", dim, 5, 1);
    assert!(
        !failed["datapoints"].as_array().unwrap().is_empty() && sum(&failed) == 0.0,
        "{failed}"
    );
    // A t2.nano starts with 30 launch credits and earns 3 an hour.
    let balance = read(&agent, "AWS/EC2", "CPUCreditBalance", dim, 60, 60);
    let b = balance["datapoints"][0]["max"].as_f64().unwrap_or(-1.0);
    assert!((29.0..=31.0).contains(&b), "{balance}");
    // The root volume's own metrics.
    let vol = first(
        &agent.call(
            "DescribeVolumes",
            &[
                ("Filter.1.Name", "attachment.instance-id"),
                ("Filter.1.Value.1", &id),
            ],
        ),
        "volumeId",
    );
    let idle = read(
        &agent,
        "AWS/EBS",
        "VolumeIdleTime",
        ("VolumeId", &vol),
        60,
        60,
    );
    assert!(sum(&idle) > 0.0, "{idle}");
}

#[test]
fn basic_monitoring_publishes_every_five_intervals_and_monitor_instances_switches() {
    let agent = Agent::start(&["--metrics-interval", "1"]);
    let ami = agent.register_probe();
    let group = open_group(&agent, &["9"]);
    let id = launch(&agent, &ami, &group, false);
    assert_eq!(monitoring(&agent, &id), "disabled");
    std::thread::sleep(Duration::from_secs(12));
    let dim = ("InstanceId", id.as_str());
    let basic = read(&agent, "AWS/EC2", "NetworkIn", dim, 30, 1);
    let n = basic["datapoints"].as_array().unwrap().len();
    // Windows of 5 s over 12 s: two or three points, not one a second.
    assert!(
        (1..=3).contains(&n),
        "basic monitoring gave {n} points in 12 s: {basic}"
    );
    let xml = agent.call("MonitorInstances", &[("InstanceId.1", &id)]);
    assert_eq!(first(&xml, "state"), "pending", "{xml}");
    assert_eq!(monitoring(&agent, &id), "enabled");
    std::thread::sleep(Duration::from_secs(8));
    let detailed = read(&agent, "AWS/EC2", "NetworkIn", dim, 6, 1);
    let n = detailed["datapoints"].as_array().unwrap().len();
    assert!(
        n >= 4,
        "detailed monitoring gave {n} points in 6 s: {detailed}"
    );
    let xml = agent.call("UnmonitorInstances", &[("InstanceId.1", &id)]);
    assert_eq!(first(&xml, "state"), "disabling", "{xml}");
    assert_eq!(monitoring(&agent, &id), "disabled");
    // Bad input changes nothing.
    let (code, _) = agent.call_err(
        "MonitorInstances",
        &[
            ("InstanceId.1", &id),
            ("InstanceId.2", "i-0000000000000dead"),
        ],
    );
    assert_eq!(code, "InvalidInstanceID.NotFound");
    assert_eq!(monitoring(&agent, &id), "disabled");
    let (code, _) = agent.call_err("MonitorInstances", &[]);
    assert_eq!(code, "MissingParameter");
    let (code, _) = agent.call_err(
        "DescribeInstanceStatus",
        &[("Filter.1.Name", "no-such"), ("Filter.1.Value.1", "x")],
    );
    assert_eq!(code, "InvalidParameterValue");
}

/// `GET path` on the probe's port 80 from the agent's namespace; the body.
fn probe_get(agent: &Agent, ip: &str, path: &str) -> String {
    let addr: SocketAddr = format!("{ip}:80").parse().unwrap();
    let request = format!("GET {path} HTTP/1.0\r\n\r\n");
    agent.ns.run(move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        reply
    })
}

/// The average CPUUtilization of the last `n` one-second points.
fn recent_cpu(agent: &Agent, id: &str, n: usize) -> f64 {
    let cpu = read(
        agent,
        "AWS/EC2",
        "CPUUtilization",
        ("InstanceId", id),
        30,
        1,
    );
    let points = cpu["datapoints"].as_array().unwrap();
    assert!(points.len() >= n, "{cpu}");
    let last = &points[points.len() - n..];
    last.iter().map(|p| p["avg"].as_f64().unwrap()).sum::<f64>() / n as f64
}

#[test]
fn a_burning_guest_shows_in_cpu_and_a_silent_one_fails_its_instance_check() {
    let agent = Agent::start(&["--metrics-interval", "1"]);
    let ami = agent.register_probe();
    let group = open_group(&agent, &["80"]);
    let id = launch(&agent, &ami, &group, true);
    let ip = public_ip(&agent, &id);
    assert!(
        eventually(BOOT, || checks(&agent, &id).1 == "ok"),
        "{:?}",
        checks(&agent, &id)
    );

    // probe.burn at 60 %: the vCPU thread's share follows, within what a loaded host gives.
    assert!(probe_get(&agent, &ip, "/burn/60").contains("burn 60"));
    std::thread::sleep(Duration::from_secs(6));
    let busy = recent_cpu(&agent, &id, 4);
    assert!(
        (25.0..=90.0).contains(&busy),
        "CPUUtilization {busy} % under a 60 % burn"
    );
    assert!(probe_get(&agent, &ip, "/burn/0").contains("burn 0"));
    std::thread::sleep(Duration::from_secs(4));
    let idle = recent_cpu(&agent, &id, 2);
    assert!(
        idle < 15.0 && idle < busy / 2.0,
        "CPUUtilization {idle} % after the burn stopped (was {busy} %)"
    );
    // Credits were spent faster than a t2.nano earns them (3 an hour).
    let usage = read(
        &agent,
        "AWS/EC2",
        "CPUCreditUsage",
        ("InstanceId", &id),
        60,
        60,
    );
    assert!(sum(&usage) > 0.02, "{usage}");

    // The guest stops answering ARP: the instance check fails, the system check does not.
    assert!(probe_get(&agent, &ip, "/arp/off").contains("arp off"));
    assert!(
        eventually(Duration::from_secs(10), || checks(&agent, &id).1
            == "impaired"),
        "{:?}",
        checks(&agent, &id)
    );
    let (system, instance, _, detail) = checks(&agent, &id);
    assert_eq!(
        (system.as_str(), instance.as_str(), detail.as_str()),
        ("ok", "impaired", "failed")
    );
    let xml = agent.call("DescribeInstanceStatus", &[("InstanceId.1", &id)]);
    assert!(xml.contains("<impairedSince>"), "{xml}");
    let xml = agent.call(
        "DescribeInstanceStatus",
        &[
            ("Filter.1.Name", "instance-status.reachability"),
            ("Filter.1.Value.1", "failed"),
        ],
    );
    assert_eq!(texts(&xml, "instanceId"), vec![id.clone()]);
    std::thread::sleep(Duration::from_secs(2));
    let failed = read(
        &agent,
        "AWS/EC2",
        "StatusCheckFailed_Instance",
        ("InstanceId", &id),
        2,
        1,
    );
    assert!(
        failed["datapoints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["max"] == 1.0),
        "{failed}"
    );
    let system = read(
        &agent,
        "AWS/EC2",
        "StatusCheckFailed_System",
        ("InstanceId", &id),
        3,
        1,
    );
    assert_eq!(sum(&system), 0.0, "{system}");
}

#[test]
fn a_guests_disk_writes_show_in_its_volume_and_ebs_metrics() {
    let agent = Agent::start(&["--metrics-interval", "1"]);
    // The probe writes a pattern over the first 64 MiB of its disk and reads it back, then
    // brings its network up.
    let ami = agent.register_probe_with(
        "probe-disk",
        "probe.disk=write probe.net=dhcp probe.http=disk",
    );
    let group = open_group(&agent, &["80"]);
    let id = launch(&agent, &ami, &group, true);
    assert!(
        eventually(BOOT, || agent.console(&id).contains("probe: disk write ok")),
        "{}",
        agent.console(&id)
    );
    // Two more samples, so the windows of the writes are recorded.
    std::thread::sleep(Duration::from_secs(3));
    let vol = first(
        &agent.call(
            "DescribeVolumes",
            &[
                ("Filter.1.Name", "attachment.instance-id"),
                ("Filter.1.Value.1", &id),
            ],
        ),
        "volumeId",
    );
    let written = (64u64 << 20) as f64;
    let by_volume =
        |metric: &str| sum(&read(&agent, "AWS/EBS", metric, ("VolumeId", &vol), 120, 1));
    let by_instance = |metric: &str| {
        sum(&read(
            &agent,
            "AWS/EC2",
            metric,
            ("InstanceId", &id),
            120,
            1,
        ))
    };
    // The 64 MiB written and read back, with the guest's few other reads (its partition
    // probe reads none: the probe reads only what it wrote).
    for (metric, bytes) in [
        (by_volume("VolumeWriteBytes"), written),
        (by_volume("VolumeReadBytes"), written),
        (by_instance("EBSWriteBytes"), written),
        (by_instance("EBSReadBytes"), written),
    ]
    .iter()
    .zip([
        "VolumeWriteBytes",
        "VolumeReadBytes",
        "EBSWriteBytes",
        "EBSReadBytes",
    ])
    .map(|((got, want), name)| ((name, *got), *want))
    {
        assert!(
            metric.1 >= bytes && metric.1 < bytes * 1.05,
            "{} {} for {bytes} bytes moved",
            metric.0,
            metric.1
        );
    }
    let ops = by_volume("VolumeWriteOps");
    assert!(
        ops >= 64.0,
        "{ops} write ops for 64 MiB in requests of at most 1 MiB"
    );
    // A t2.nano has no instance store: nothing on the Disk* metrics.
    assert_eq!(by_instance("DiskWriteBytes"), 0.0);
}
