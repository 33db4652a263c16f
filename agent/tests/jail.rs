//! Every instance's vmm as the agent starts it: its own unprivileged uid, no capabilities,
//! seccomp filtering, a mount namespace holding only its jail, and a cgroup with the instance
//! type's limits; a forbidden system call fails the instance with that reason; a guest that
//! touches all its memory stays inside its cgroup.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{Agent, eventually, tail};

const RUNNING: Duration = Duration::from_secs(30);

/// One field of `/proc/PID/status`, its words joined by single spaces.
fn status_field(pid: i32, name: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The cgroup v1 path of `pid` in the hierarchy holding `controller`.
fn cgroup_v1(pid: i32, controller: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == controller)
            .then(|| path.to_owned())
    })
}

/// The value in a file of `pid`'s cgroup for `controller`, from the v1 mount or the v2 one.
fn cgroup_file(pid: i32, controller: &str, v1_file: &str, v2_file: &str) -> String {
    let (dir, file) = match cgroup_v1(pid, controller) {
        Some(path) => (format!("/sys/fs/cgroup/{controller}{path}"), v1_file),
        None => {
            let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
            let path = text.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
            (format!("/sys/fs/cgroup{path}"), v2_file)
        }
    };
    std::fs::read_to_string(PathBuf::from(dir).join(file))
        .unwrap()
        .trim()
        .to_owned()
}

/// Calls `expr` inside process `pid` through a debugger; returns what the debugger printed.
fn call_in(pid: i32, expr: &str) -> String {
    // A call that ends the process trips an internal error in gdb, which would then dump its
    // own core into the working directory: no core, and a scratch directory all the same.
    let scratch = tempfile::tempdir().unwrap();
    let out = Command::new("gdb")
        .args(["-q", "-nx", "-batch", "-iex", "set sysroot /"])
        .args(["-iex", "maint set internal-error corefile no"])
        .args(["-p", &pid.to_string(), "-ex", &format!("call {expr}")])
        .current_dir(scratch.path())
        .output()
        .expect("gdb runs (scripts/install-deps.sh installs it)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn running_instance(agent: &Agent, ami: &str) -> (String, i32) {
    let id = agent.run_one(ami);
    agent.wait_state(&id, "running", RUNNING);
    let pid = agent.vmm_pid(&id).expect("a running instance has a vmm");
    (id, pid)
}

#[test]
fn every_vmm_runs_jailed_in_a_cgroup_of_its_own() {
    let agent = Agent::start(&[]);
    let ami = agent.register_probe();
    let (a, pid_a) = running_instance(&agent, &ami);
    let (b, pid_b) = running_instance(&agent, &ami);
    for (id, pid) in [(&a, pid_a), (&b, pid_b)] {
        let uid = status_field(pid, "Uid");
        let first: u32 = uid.split(' ').next().unwrap().parse().unwrap();
        assert!(first >= 1_000_000_000, "{id}: uid {uid}");
        assert_eq!(uid, vec![first.to_string(); 4].join(" "), "{id}");
        assert_eq!(status_field(pid, "Gid"), uid, "{id}");
        assert_eq!(status_field(pid, "CapEff"), "0000000000000000", "{id}");
        assert_eq!(status_field(pid, "CapPrm"), "0000000000000000", "{id}");
        assert_eq!(status_field(pid, "NoNewPrivs"), "1", "{id}");
        assert_eq!(status_field(pid, "Seccomp"), "2", "{id}");
        let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/mnt")).unwrap();
        assert_ne!(
            ns(&pid.to_string()),
            ns("self"),
            "{id}: own mount namespace"
        );
        // Its root is its jail directory: the host's files are not in it.
        let root = PathBuf::from(format!("/proc/{pid}/root"));
        assert!(!root.join("etc").exists(), "{id}");
        assert!(!root.join("dev/kvm").exists(), "{id}");
        // t2.nano: 1 vCPU, 512 MiB; the cgroup allows 512 + 64 MiB, one CPU, 64 + 1 tasks.
        let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        assert!(membership.contains(&format!("/kec2/{id}")), "{membership}");
        let memory = cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max");
        assert_eq!(memory, ((512u64 + 64) << 20).to_string(), "{id}");
        let quota = cgroup_file(pid, "cpu", "cpu.cfs_quota_us", "cpu.max");
        assert!(
            quota == "100000" || quota == "100000 100000",
            "{id}: {quota}"
        );
        assert_eq!(cgroup_file(pid, "pids", "pids.max", "pids.max"), "65");
    }
    assert_ne!(
        status_field(pid_a, "Uid"),
        status_field(pid_b, "Uid"),
        "two instances never share a uid"
    );
    // The kernel resolves every path the vmm opens from its root, `/proc/PID/root`: a host
    // file is not there, and its mount table holds the jail's root alone, none of the host's.
    assert!(std::path::Path::new("/etc/passwd").exists());
    for pid in [pid_a, pid_b] {
        let root = PathBuf::from(format!("/proc/{pid}/root"));
        assert!(!root.join("etc/passwd").exists(), "{pid}");
        let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
        let points: Vec<&str> = mounts
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .collect();
        assert_eq!(points, ["/"], "{pid}'s mounts:\n{mounts}");
    }
    assert_eq!(agent.instance(&a).state, "running");

    agent.call(
        "TerminateInstances",
        &[("InstanceId.1", &a), ("InstanceId.2", &b)],
    );
    agent.wait_state(&a, "terminated", RUNNING);
    agent.wait_state(&b, "terminated", RUNNING);
    let log = agent.log();
    for id in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(5), || !cgroup_dir_exists(id)),
            "{id}'s cgroup is removed after it ends:\n{}",
            tail(&log, 20)
        );
    }
}

/// Whether a cgroup named after instance `id` exists in any hierarchy.
fn cgroup_dir_exists(id: &str) -> bool {
    let out = Command::new("find")
        .args([
            "/sys/fs/cgroup",
            "-maxdepth",
            "6",
            "-type",
            "d",
            "-name",
            id,
        ])
        .output()
        .unwrap();
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

#[test]
fn a_forbidden_system_call_kills_the_vmm_and_fails_the_instance_with_that_reason() {
    let agent = Agent::start(&[]);
    let ami = agent.register_probe();
    let (id, pid) = running_instance(&agent, &ami);
    let (other, other_pid) = running_instance(&agent, &ami);
    // socket(AF_INET, SOCK_STREAM, 0): not on the allowlist.
    let out = call_in(pid, "(int)syscall(41, 2, 1, 0)");
    assert!(
        eventually(Duration::from_secs(10), || !common::pid_alive(pid)),
        "the vmm is gone after a forbidden call: {out}"
    );
    agent.wait_state(&id, "stopped", RUNNING);
    let view = agent.instance(&id);
    assert_eq!(view.reason_code, "Server.InternalError", "{view:?}");
    assert!(
        view.reason_message.contains("SIGSYS") && view.reason_message.contains("seccomp"),
        "{view:?}"
    );
    // The other instance is untouched.
    assert_eq!(agent.instance(&other).state, "running");
    assert!(common::pid_alive(other_pid));
}

#[test]
fn a_guest_touching_all_its_memory_stays_within_its_cgroup() {
    let agent = Agent::start(&[]);
    // The selftest writes and checks every byte of free guest memory, then powers off.
    let ami = agent.register_probe_with("selftest", "probe.mode=selftest");
    let id = agent.run_one(&ami);
    agent.wait_state(&id, "stopped", RUNNING);
    let console = agent.console(&id);
    assert!(console.contains("probe: selftest ok"), "{console}");
    let view = agent.instance(&id);
    assert_eq!(
        view.reason_code, "Client.InstanceInitiatedShutdown",
        "the guest powered off by itself, the vmm was not killed: {view:?}"
    );
    // The agent logs the cgroup's peak against its limit when it removes it.
    let log = agent.log();
    let line = log
        .lines()
        .find(|l| l.contains("vmm cgroup released") && l.contains(&id))
        .unwrap_or_else(|| panic!("no cgroup release for {id}:\n{}", tail(&log, 30)));
    let field = |name: &str| -> u64 {
        let start = line
            .find(&format!("{name}=Some("))
            .unwrap_or_else(|| panic!("no {name} in {line}"))
            + name.len()
            + 6;
        line[start..].split(')').next().unwrap().parse().unwrap()
    };
    let (peak, limit) = (field("memory_peak_mib"), field("memory_limit_mib"));
    assert_eq!(limit, 512 + 64, "{line}");
    assert!(peak >= 500, "the guest really touched its 512 MiB: {line}");
    assert!(peak <= limit, "{line}");
}

#[test]
fn an_agent_leaves_the_cgroups_of_instances_it_does_not_know_alone() {
    // Another agent's instance on the same host (its own state dir, same cgroup parent).
    let cgroups = host::compute::cgroups::Cgroups::detect().unwrap();
    let foreign = "i-0f0e0d0c0b0a09080";
    let limits = host::compute::cgroups::Limits::for_instance(1, 64);
    let made = cgroups.create(foreign, &limits).unwrap();
    let agent = Agent::start(&[]);
    let ami = agent.register_probe();
    let (_, _) = running_instance(&agent, &ami);
    let still_there = made.dirs().iter().all(|d| d.is_dir());
    cgroups.remove(foreign).unwrap();
    assert!(
        still_there,
        "the start-up sweep removed another agent's cgroup"
    );
}
