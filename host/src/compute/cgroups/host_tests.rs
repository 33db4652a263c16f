//! The host's real cgroups: a process started with `join_in_child` lands in its instance's
//! cgroup in every hierarchy, under the limits written. Needs root and a cgroup filesystem;
//! without them the test says why and returns.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use super::*;

/// Kills the child and removes the cgroup even when an assertion fails.
struct Cleanup<'a> {
    cg: &'a Cgroups,
    id: String,
    child: Option<Child>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            _ = child.kill();
            _ = child.wait();
        }
        _ = self.cg.remove(&self.id);
    }
}

/// Whether this host can run the test, or why not.
fn usable_host() -> Result<(), String> {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root".to_string());
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let has_cgroups = parse_mountinfo(&mountinfo)
        .iter()
        .any(|m| m.fstype == "cgroup" || m.fstype == "cgroup2");
    match has_cgroups {
        true => Ok(()),
        false => Err("no cgroup filesystem is mounted".to_string()),
    }
}

/// The cgroup `/proc/<pid>/cgroup` gives for `controller` (v2: the unified line).
fn cgroup_of(pid: u32, controller: &str, version: Version) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let lines = parse_own_cgroups(&text);
    let line = lines.iter().find(|l| match version {
        Version::V1 => l.controllers.iter().any(|c| c == controller),
        Version::V2 => l.controllers.is_empty(),
    });
    line.unwrap_or_else(|| panic!("no {controller} line in {text}"))
        .path
        .clone()
}

#[test]
fn a_child_joins_its_instance_cgroup_under_the_kernels_limits() {
    if let Err(why) = usable_host() {
        eprintln!("skipped: {why}");
        return;
    }
    let cg = Cgroups::detect().expect("this host mounts cgroups, so detection must succeed");
    let id = format!("i-cgtest{:08x}", std::process::id());
    let mut cleanup = Cleanup {
        cg: &cg,
        id: id.clone(),
        child: None,
    };

    // A first cgroup with large limits, then the same one again with the instance's: the
    // kernel must hold the second.
    cg.create(&id, &Limits::for_instance(2, 1024)).unwrap();
    let limits = Limits::for_instance(1, 128);
    let made = cg.create(&id, &limits).unwrap();
    assert_eq!(cg.limits(&id).unwrap(), limits);
    assert!(cg.instances().contains(&id));

    let paths = made.join_paths();
    let mut cmd = Command::new("sleep");
    cmd.arg("30");
    // SAFETY: the closure only calls `join_in_child`, which is async-signal-safe (open,
    // write, close on paths made before the fork).
    unsafe { cmd.pre_exec(move || join_in_child(&paths)) };
    let child = cleanup.child.insert(cmd.spawn().unwrap());
    let pid = child.id();

    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    for controller in ["memory", "cpu", "pids"] {
        let inside = cgroup_of(pid, controller, cg.version());
        let expected = match cg.version() {
            Version::V2 => format!("/kec2/{id}"),
            Version::V1 => {
                let mine = cgroup_of(std::process::id(), controller, Version::V1);
                format!("{}/kec2/{id}", mine.trim_end_matches('/'))
            }
        };
        assert_eq!(
            inside, expected,
            "{controller}; the test's own cgroups: {own}"
        );
    }
    assert!(cg.cpu_usage_ns(&id).is_some());
    let current = cg.memory_current_bytes(&id).unwrap();
    assert!(current > 0, "sleep's pages are charged to its new cgroup");
    assert!(cg.memory_peak_bytes(&id).unwrap_or(current) >= current);

    let err = cg.remove(&id).unwrap_err();
    assert!(matches!(err, RemoveError::Rmdir { .. }), "{err:?}");

    let mut child = cleanup.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    cg.remove(&id).unwrap();
    assert!(made.dirs().iter().all(|d| !d.exists()), "{:?}", made.dirs());
    assert!(!cg.instances().contains(&id));
}

#[test]
fn a_busy_child_is_held_to_its_cpu_quota() {
    if let Err(why) = usable_host() {
        eprintln!("skipped: {why}");
        return;
    }
    let cg = Cgroups::detect().expect("this host mounts cgroups, so detection must succeed");
    let id = format!("i-cgquota{:08x}", std::process::id());
    let mut cleanup = Cleanup {
        cg: &cg,
        id: id.clone(),
        child: None,
    };
    // A fifth of a CPU: 20 ms in every 100 ms period.
    let limits = Limits {
        cpu_quota_us: Some(20_000),
        ..Limits::for_instance(1, 128)
    };
    let made = cg.create(&id, &limits).unwrap();
    let paths = made.join_paths();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "while :; do :; done"]);
    // SAFETY: the closure only calls `join_in_child`, which is async-signal-safe.
    unsafe { cmd.pre_exec(move || join_in_child(&paths)) };
    let started = std::time::Instant::now();
    cleanup.child = Some(cmd.spawn().unwrap());
    std::thread::sleep(Duration::from_secs(1));
    let used = Duration::from_nanos(cg.cpu_usage_ns(&id).unwrap());
    let wall = started.elapsed();

    // The quota's share of the wall time, plus one period of slack.
    let allowed = wall / 5 + Duration::from_millis(100);
    assert!(used <= allowed, "used {used:?} of CPU in {wall:?}");
    // The first hierarchy serves `cpu` in both versions; its cpu.stat counts throttling.
    let stat = std::fs::read_to_string(made.dirs()[0].join("cpu.stat")).unwrap();
    let throttled: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("nr_throttled "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no nr_throttled in {stat}"));
    assert!(throttled > 0, "never throttled: {stat}");
}
