//! `agent-bench`: the agent's benchmarks, printed as one JSON object.
//!
//! - launch: RunInstances of N probe instances (one call), time until all are running.
//! - describe: DescribeInstances latency (p50, p99) with R instance rows in the database.
//! - network: metadata requests from a probe (rate, p50, p99), and the time a security-group
//!   change takes to reach a running instance.
//! - scale (`--scale N`): N probe launches in batches of `--scale-batch` (RunInstances of
//!   the whole batch, timed until none is pending): each batch's rate, wall and agent CPU
//!   cost per instance, and an agent restart with all of them running.
//! - ebs: a full snapshot of a volume of random data, a second one after 5% of it changed
//!   (time and new bytes stored), a restore, and the pause of a running instance.
//!
//! It starts its own agents (the `agent` and `vmm` binaries beside this one, or in
//! `--bin-dir`, e.g. an older build's) in temporary state dirs and kills every VMM it started.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use cli::client::Client;
use state::instances::{self, InstanceRow, InstanceState};

#[path = "agent-bench/agent_proc.rs"]
mod agent_proc;
#[path = "agent-bench/network.rs"]
mod network;
#[path = "agent-bench/scale.rs"]
mod scale;
use agent_proc::{AgentProc, BIN_DIR};

/// Flags.
#[derive(Debug, Parser)]
struct Args {
    /// The probe manifest.
    #[arg(long, default_value = "images/out/probe/manifest.json")]
    manifest: PathBuf,
    /// Instances to launch.
    #[arg(long, default_value_t = 100)]
    launch: u32,
    /// Instance rows for the DescribeInstances benchmark.
    #[arg(long, default_value_t = 10_000)]
    rows: u32,
    /// Requests per DescribeInstances variant.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Metadata requests the probe makes (0 skips the network benchmarks).
    #[arg(long, default_value_t = 2000)]
    imds_requests: u32,
    /// Security-group changes timed.
    #[arg(long, default_value_t = 10)]
    sg_changes: usize,
    /// Size in GiB of the EBS snapshot benchmark's volume (0 skips it).
    #[arg(long, default_value_t = 1)]
    ebs_gib: u64,
    /// Instances the scale benchmark launches (0 skips it).
    #[arg(long, default_value_t = 0)]
    scale: u32,
    /// Instances per RunInstances call in the scale benchmark.
    #[arg(long, default_value_t = 100)]
    scale_batch: u32,
    /// The directory of the `agent` and `vmm` binaries to measure (default: beside this
    /// one), e.g. an older build's.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

/// Launches one t2.nano of `ami` with `extra` RunInstances parameters; returns its id.
fn run_one(c: &Client, ami: String, extra: &[(String, String)]) -> String {
    let mut params = vec![
        ("ImageId".into(), ami),
        ("MinCount".into(), "1".into()),
        ("MaxCount".into(), "1".into()),
        ("InstanceType".into(), "t2.nano".into()),
    ];
    params.extend_from_slice(extra);
    let xml = c.call("RunInstances", &params).unwrap();
    let id = field(&xml, "instanceId");
    assert!(!id.is_empty(), "RunInstances answered no instanceId: {xml}");
    id
}

/// Registers the probe program at `probe` with `boot_args`; returns the AMI id.
fn register(c: &Client, probe: &Path, boot_args: &str) -> String {
    let probe = std::path::absolute(probe).unwrap().display().to_string();
    let name = format!("bench-{}", state::new_id("n"));
    let xml = c
        .call(
            "RegisterImage",
            &[
                ("Name".into(), name),
                ("KernelPath".into(), probe),
                ("EntryMode".into(), "user".into()),
                ("BootArgs".into(), boot_args.into()),
            ],
        )
        .unwrap();
    let ami = field(&xml, "imageId");
    assert!(!ami.is_empty(), "RegisterImage answered no imageId: {xml}");
    ami
}

fn p(v: &[f64], q: f64) -> f64 {
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

fn count(xml: &str, needle: &str) -> usize {
    xml.matches(needle).count()
}

/// Launches `args.launch` instances in one call with an agent started with `extra` flags.
fn launch(args: &Args, extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let n = args.launch;
    let mut flags = vec!["--max-vcpus", "100000", "--max-memory-mib", "100000000"];
    flags.extend_from_slice(extra);
    let mut a = AgentProc::start(dir.path(), &flags);
    let c = a.client();
    let manifest = std::path::absolute(&args.manifest)
        .unwrap()
        .display()
        .to_string();
    let xml = c
        .call(
            "RegisterImage",
            &[
                ("Name".into(), "bench".into()),
                ("ImageLocation".into(), manifest),
            ],
        )
        .unwrap();
    let ami = xml
        .split("<imageId>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    let params = [
        ("ImageId".to_string(), ami),
        ("MinCount".into(), n.to_string()),
        ("MaxCount".into(), n.to_string()),
        ("InstanceType".into(), "t2.nano".into()),
    ];
    let t0 = Instant::now();
    c.call("RunInstances", &params).unwrap();
    let api_ms = t0.elapsed().as_secs_f64() * 1000.0;
    loop {
        let xml = c.call("DescribeInstances", &[]).unwrap();
        if count(&xml, "<name>running</name>") == n as usize {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "instances not running after 120 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let secs = t0.elapsed().as_secs_f64();
    a.stop();
    drop(a);
    serde_json::json!({
        "instances": n,
        "run_instances_call_ms": api_ms,
        "all_running_s": secs,
        "instances_per_s": n as f64 / secs,
        "instances_per_s_per_core": n as f64 / secs
            / std::thread::available_parallelism().map_or(1, |c| c.get()) as f64,
    })
}

/// Request parameters for the i-th sample.
type ParamsFor<'a> = Box<dyn Fn(usize) -> Vec<(String, String)> + 'a>;

fn describe(args: &Args) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    // Let an agent create the schema and credentials, then fill the table directly.
    let mut a = AgentProc::start(dir.path(), &[]);
    let c = a.client();
    let manifest = std::path::absolute(&args.manifest)
        .unwrap()
        .display()
        .to_string();
    c.call(
        "RegisterImage",
        &[
            ("Name".into(), "bench".into()),
            ("ImageLocation".into(), manifest),
        ],
    )
    .unwrap();
    a.stop();
    let db = state::Db::open(&dir.path().join("state.db")).unwrap();
    let mut ids = Vec::new();
    {
        let mut conn = db.lock();
        let tx = conn.transaction().unwrap();
        for i in 0..args.rows {
            let row = InstanceRow {
                seq: 0,
                id: state::new_id("i"),
                reservation_id: state::new_id("r"),
                launch_index: 0,
                image_id: "ami-00000000000000000".into(),
                instance_type: "t2.micro".into(),
                key_name: None,
                state: InstanceState::Stopped,
                state_reason_code: None,
                state_reason_message: None,
                transition_reason: String::new(),
                launch_time: state::now_iso(),
                user_data: None,
                shutdown_behavior: "stop".into(),
                client_token: None,
                vcpus: 1,
                memory_mib: 1024,
                kernel: "/nonexistent".into(),
                initrd: None,
                boot_args: String::new(),
                entry: "user".into(),
                architecture: "x86_64".into(),
                pid: None,
                pid_start: None,
                rebooting: false,
                terminated_at: None,
                detailed_monitoring: false,
            };
            instances::insert(&tx, &row).unwrap();
            state::tags::put(&tx, &row.id, &[("n".into(), (i % 100).to_string())]).unwrap();
            ids.push(row.id);
        }
        tx.commit().unwrap();
    }
    drop(db);
    let a = AgentProc::start(dir.path(), &[]);
    let c = a.client();
    let mut out = serde_json::Map::new();
    out.insert("rows".into(), args.rows.into());
    let variants: Vec<(&str, ParamsFor<'_>)> = vec![
        (
            "by_instance_id",
            Box::new(|i| vec![("InstanceId.1".into(), ids[i * 37 % ids.len()].clone())]),
        ),
        (
            "page_of_1000",
            Box::new(|_| vec![("MaxResults".into(), "1000".into())]),
        ),
        (
            "tag_filter_1pct",
            Box::new(|i| {
                vec![
                    ("Filter.1.Name".into(), "tag:n".into()),
                    ("Filter.1.Value.1".into(), (i % 100).to_string()),
                ]
            }),
        ),
        ("all_10000", Box::new(|_| vec![])),
    ];
    for (name, params) in variants {
        let samples = if name == "all_10000" {
            args.samples.min(20)
        } else {
            args.samples
        };
        let mut lat = Vec::new();
        for i in 0..samples {
            let t = Instant::now();
            c.call("DescribeInstances", &params(i)).unwrap();
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        lat.sort_by(|a, b| a.total_cmp(b));
        out.insert(
            name.into(),
            serde_json::json!({"samples": samples, "p50_ms": p(&lat, 0.5), "p99_ms": p(&lat, 0.99)}),
        );
    }
    serde_json::Value::Object(out)
}

/// The text of the first `<tag>` in `xml`.
fn field(xml: &str, tag: &str) -> String {
    xml.split(&format!("<{tag}>"))
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap_or_default()
        .to_string()
}

/// Writes pseudo-random bytes over `[at, at + len)` of `path`.
fn scribble(path: &Path, at: u64, len: u64, seed: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let mut x = seed | 1;
    let mut buf = vec![0u8; 1 << 20];
    for off in (at..at + len).step_by(buf.len()) {
        for w in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        let n = (at + len - off).min(buf.len() as u64) as usize;
        f.write_all_at(&buf[..n], off).unwrap();
    }
    f.sync_all().unwrap();
}

/// Polls `describe` until its first `<tag>` reads `want`; returns the seconds since `t0`.
fn until(
    c: &Client,
    action: &str,
    p: &[(String, String)],
    tag: &str,
    want: &str,
    t0: Instant,
) -> f64 {
    while field(&c.call(action, p).unwrap(), tag) != want {
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "{action}: never {want}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    t0.elapsed().as_secs_f64()
}

fn snapshot(c: &Client, vol: &str) -> (String, f64) {
    let t0 = Instant::now();
    let xml = c
        .call("CreateSnapshot", &[("VolumeId".into(), vol.into())])
        .unwrap();
    let id = field(&xml, "snapshotId");
    let p = [("SnapshotId.1".to_string(), id.clone())];
    let s = until(c, "DescribeSnapshots", &p, "status", "completed", t0);
    (id, s)
}

fn ebs(args: &Args) -> serde_json::Value {
    let gib = args.ebs_gib;
    let bytes = gib << 30;
    let dir = tempfile::tempdir().unwrap();
    let a = AgentProc::start(dir.path(), &[]);
    let c = a.client();
    let stored = || -> u64 {
        let db = state::Db::open(&dir.path().join("state.db")).unwrap();
        state::snapshots::stored_bytes(&db.lock()).unwrap()
    };
    let xml = c
        .call(
            "CreateVolume",
            &[
                ("AvailabilityZone".into(), "local-1a".into()),
                ("Size".into(), gib.to_string()),
                ("VolumeType".into(), "gp3".into()),
            ],
        )
        .unwrap();
    let vol = field(&xml, "volumeId");
    let file = host::storage::volume_path(dir.path(), &vol);
    scribble(&file, 0, bytes, 7);
    let (_, full_s) = snapshot(&c, &vol);
    let full_stored = stored();
    // 5%: one MiB in every 20, spread over the volume.
    let mut changed = 0;
    for mib in (0..bytes >> 20).step_by(20) {
        scribble(&file, mib << 20, 1 << 20, 1000 + mib);
        changed += 1 << 20;
    }
    let (snap2, incr_s) = snapshot(&c, &vol);
    let new_bytes = stored() - full_stored;
    let t0 = Instant::now();
    let xml = c
        .call(
            "CreateVolume",
            &[
                ("AvailabilityZone".into(), "local-1a".into()),
                ("SnapshotId".into(), snap2),
            ],
        )
        .unwrap();
    let p = [("VolumeId.1".to_string(), field(&xml, "volumeId"))];
    let restore_s = until(&c, "DescribeVolumes", &p, "status", "available", t0);

    // A running probe instance with a volume full of data: how long it is paused.
    let manifest = std::path::absolute(&args.manifest)
        .unwrap()
        .display()
        .to_string();
    let ami = field(
        &c.call(
            "RegisterImage",
            &[
                ("Name".into(), "bench".into()),
                ("ImageLocation".into(), manifest),
            ],
        )
        .unwrap(),
        "imageId",
    );
    let id = run_one(
        &c,
        ami,
        &[
            ("BlockDeviceMapping.1.DeviceName".into(), "/dev/sdf".into()),
            (
                "BlockDeviceMapping.1.Ebs.VolumeSize".into(),
                gib.to_string(),
            ),
        ],
    );
    let p = [("InstanceId.1".to_string(), id)];
    until(
        &c,
        "DescribeInstances",
        &p,
        "name",
        "running",
        Instant::now(),
    );
    let running_vol = field(&c.call("DescribeInstances", &p).unwrap(), "volumeId");
    scribble(
        &host::storage::volume_path(dir.path(), &running_vol),
        0,
        bytes,
        9,
    );
    let (snap3, running_s) = snapshot(&c, &running_vol);
    let db = state::Db::open(&dir.path().join("state.db")).unwrap();
    let pause_us = state::snapshots::get(&db.lock(), &snap3)
        .unwrap()
        .and_then(|s| s.pause_micros)
        .unwrap_or(0);
    drop(a);
    serde_json::json!({
        "volume_gib": gib,
        "full_snapshot_s": full_s,
        "full_stored_bytes": full_stored,
        "changed_bytes": changed,
        "changed_pct": changed as f64 * 100.0 / bytes as f64,
        "incremental_snapshot_s": incr_s,
        "incremental_new_bytes": new_bytes,
        "incremental_new_pct": new_bytes as f64 * 100.0 / bytes as f64,
        "restore_s": restore_s,
        "running_snapshot_s": running_s,
        "running_pause_ms": pause_us as f64 / 1000.0,
    })
}

fn main() {
    let args = Args::parse();
    if let Some(dir) = &args.bin_dir {
        BIN_DIR
            .set(std::path::absolute(dir).expect("a path"))
            .expect("set once");
    }
    let scale = if args.scale > 0 {
        scale::run(&args.manifest, args.scale, args.scale_batch.max(1))
    } else {
        serde_json::Value::Null
    };
    // The same launch with VMMs unconfined, then jailed (own uid, mount namespace, cgroup,
    // seccomp), so one run shows what the confinement costs.
    let (launch_unjailed, launch) = if args.launch > 0 {
        (launch(&args, &["--no-jail"]), launch(&args, &[]))
    } else {
        (serde_json::Value::Null, serde_json::Value::Null)
    };
    let describe = if args.rows > 0 {
        describe(&args)
    } else {
        serde_json::Value::Null
    };
    let network = if args.imds_requests > 0 {
        network::run(&args.manifest, args.imds_requests, args.sg_changes)
    } else {
        serde_json::Value::Null
    };
    let ebs = if args.ebs_gib > 0 {
        ebs(&args)
    } else {
        serde_json::Value::Null
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "launch": launch,
            "launch_unjailed": launch_unjailed,
            "describe_instances": describe,
            "network": network,
            "ebs": ebs,
            "scale": scale,
        }))
        .unwrap()
    );
}
