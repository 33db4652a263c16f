//! Launch cost at scale: `total` probe instances launched in batches of `batch` (one
//! RunInstances call each, MinCount = MaxCount = batch), each batch timed until all of its
//! instances are running, so one can see whether the 1,000th launch costs what the first did.
//! The agent's public pool is a /16, so every instance gets a public address.

use std::time::{Duration, Instant};

use super::{AgentProc, count, field};

/// Raises this process's open-file limit to its hard limit (the agent and its VMMs inherit
/// it): a thousand instances hold several descriptors each in the agent.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// CPU seconds process `pid` and its reaped children (the `ip`, `iptables` and other tools
/// the agent runs) have used, from `/proc/PID/stat`.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name in parentheses: fields 14 to 17 are utime, stime, cutime, cstime.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: f64 = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|t| t.parse::<f64>().ok())
        .sum();
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks / hz.max(1) as f64
}

/// The ids in a RunInstances answer.
fn instance_ids(xml: &str) -> Vec<String> {
    xml.split("<instanceId>")
        .skip(1)
        .filter_map(|r| r.split('<').next())
        .map(str::to_owned)
        .collect()
}

/// Launches `total` instances in batches of `batch`; one JSON object with every batch.
pub fn run(manifest: &std::path::Path, total: u32, batch: u32) -> serde_json::Value {
    raise_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--max-vcpus",
        "100000",
        "--max-memory-mib",
        "100000000",
        "--public-pool",
        "198.18.0.0/16",
    ];
    let mut a = AgentProc::start(dir.path(), &flags);
    let c = a.client();
    let manifest = std::path::absolute(manifest).unwrap().display().to_string();
    let xml = c
        .call(
            "RegisterImage",
            &[
                ("Name".into(), "bench".into()),
                ("ImageLocation".into(), manifest),
            ],
        )
        .unwrap();
    let ami = field(&xml, "imageId");
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get()) as f64;
    let mut batches = Vec::new();
    let mut launched = 0;
    while launched < total {
        let n = batch.min(total - launched);
        let params = [
            ("ImageId".to_string(), ami.clone()),
            ("MinCount".into(), n.to_string()),
            ("MaxCount".into(), n.to_string()),
            ("InstanceType".into(), "t2.nano".into()),
        ];
        let cpu0 = cpu_secs(a.pid());
        let t0 = Instant::now();
        let xml = c.call("RunInstances", &params).unwrap();
        let api_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let ids = instance_ids(&xml);
        assert_eq!(ids.len(), n as usize, "RunInstances answered: {xml}");
        let query: Vec<(String, String)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (format!("InstanceId.{}", i + 1), id.clone()))
            .collect();
        // Until none is pending: an instance whose vmm never answered (an overloaded host)
        // is stopped by the agent, and counted as failed.
        let running = loop {
            let xml = c.call("DescribeInstances", &query).unwrap();
            if count(&xml, "<name>pending</name>") == 0 {
                break count(&xml, "<name>running</name>");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(600),
                "batch after {launched}: still pending after 600 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let secs = t0.elapsed().as_secs_f64();
        let agent_cpu_ms = (cpu_secs(a.pid()) - cpu0) * 1000.0;
        launched += n;
        let rate = n as f64 / secs;
        eprintln!(
            "scale: {launched} launched, last {n} at {rate:.1}/s ({running} running), agent CPU {:.1} ms each",
            agent_cpu_ms / n as f64
        );
        batches.push(serde_json::json!({
            "launched_after": launched,
            "instances": n,
            "failed": n as usize - running,
            "run_instances_call_ms": api_ms,
            "all_running_s": secs,
            "instances_per_s": rate,
            "instances_per_s_per_core": rate / cores,
            "ms_per_instance": secs * 1000.0 / n as f64,
            // The agent's own work (and its tools'), apart from the guests' CPU load.
            "agent_cpu_ms_per_instance": agent_cpu_ms / n as f64,
        }));
    }
    // What an agent restart with all of them running costs (the full rebuild).
    a.stop();
    let t0 = Instant::now();
    let mut b = AgentProc::start_in(dir.path(), &flags, a.netns.clone());
    let restart_s = t0.elapsed().as_secs_f64();
    b.stop();
    drop(b);
    drop(a);
    let per = |b: &serde_json::Value| b["ms_per_instance"].as_f64().unwrap_or(f64::NAN);
    let first = batches.first().map(per).unwrap_or(f64::NAN);
    let last = batches.last().map(per).unwrap_or(f64::NAN);
    let min_rate = batches
        .iter()
        .filter_map(|b| b["instances_per_s_per_core"].as_f64())
        .fold(f64::INFINITY, f64::min);
    serde_json::json!({
        "instances": total,
        "batch": batch,
        "cores": cores,
        "batches": batches,
        "last_over_first_ms_per_instance": last / first,
        "min_instances_per_s_per_core": min_rate,
        "agent_restart_s": restart_s,
    })
}
