//! A jailed vmm as `ps` and `/proc` show it: an unprivileged uid and gid with no
//! capabilities, seccomp filtering, its own mount namespace whose root is the jail directory,
//! snapshots written only inside the jail, and a guest that still runs and stops normally.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{api, api_json, counts, eventually, probe_elf, vmm, wait_with_timeout};

/// A uid and gid no account on a test host uses.
const JAIL_ID: u32 = 1_999_000_001;

struct JailedProbe {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl JailedProbe {
    /// Starts the counting probe jailed in `<tmp>/jail`, its socket and console outside.
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("jail");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::chown(&root, Some(JAIL_ID), Some(JAIL_ID)).unwrap();
        std::fs::write(root.join("marker"), "inside").unwrap();
        let child = vmm()
            .arg("--kernel")
            .arg(probe_elf())
            .args(["--mem-mib", "64", "--cmdline", "probe.mode=count"])
            .arg("--api-sock")
            .arg(dir.path().join("api.sock"))
            .arg("--serial-log")
            .arg(dir.path().join("console.log"))
            .arg("--jail")
            .arg(format!("{},uid={JAIL_ID},gid={JAIL_ID}", root.display()))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let probe = JailedProbe {
            child: Some(child),
            dir,
        };
        assert!(
            eventually(Duration::from_secs(10), || probe.sock().exists()),
            "api socket appears"
        );
        assert!(
            eventually(Duration::from_secs(10), || counts(&probe.console()).len()
                > 1),
            "the guest runs jailed: {}",
            probe.console()
        );
        probe
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("api.sock")
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("jail")
    }

    fn console(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    fn status_field(&self, name: &str) -> String {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("{name} in /proc/PID/status"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn stop(mut self) -> std::process::Output {
        api(&self.sock(), "stop");
        wait_with_timeout(self.child.take().unwrap(), Duration::from_secs(10))
    }
}

impl Drop for JailedProbe {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn mount_ns(pid: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap()
}

#[test]
fn a_jailed_vmm_is_unprivileged_filtered_and_confined() {
    let probe = JailedProbe::start(&[]);
    let id = JAIL_ID.to_string();
    assert_eq!(probe.status_field("Uid"), [id.as_str(); 4].join(" "));
    assert_eq!(probe.status_field("Gid"), [id.as_str(); 4].join(" "));
    assert_eq!(probe.status_field("Groups"), "");
    assert_eq!(probe.status_field("CapEff"), "0000000000000000");
    assert_eq!(probe.status_field("CapPrm"), "0000000000000000");
    assert_eq!(probe.status_field("NoNewPrivs"), "1");
    assert_eq!(probe.status_field("Seccomp"), "2");
    assert_ne!(mount_ns(&probe.pid().to_string()), mount_ns("self"));
    // Its `/` is the jail: the marker is there, the host's files are not.
    let its_root = PathBuf::from(format!("/proc/{}/root", probe.pid()));
    assert_eq!(
        std::fs::read_to_string(its_root.join("marker")).unwrap(),
        "inside"
    );
    assert!(!its_root.join("etc/passwd").exists());
    assert!(!its_root.join("dev/kvm").exists());
    let out = probe.stop();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn snapshots_are_written_inside_the_jail_only() {
    let probe = JailedProbe::start(&[]);
    let outside = probe.dir.path().join("outside.snap");
    let answer = api_json(
        &probe.sock(),
        &serde_json::json!({"action": "snapshot", "path": outside}),
    );
    assert_eq!(answer["ok"], false, "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(error.contains("outside the vmm's jail"), "{error}");
    assert!(!outside.exists());
    let sneaky = probe.root().join("../sneaky.snap");
    let answer = api_json(
        &probe.sock(),
        &serde_json::json!({"action": "snapshot", "path": sneaky}),
    );
    assert_eq!(answer["ok"], false, "{answer}");
    assert!(!probe.dir.path().join("sneaky.snap").exists());

    let inside = probe.root().join("vm.snap");
    let answer = api_json(
        &probe.sock(),
        &serde_json::json!({"action": "snapshot", "path": inside}),
    );
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["snapshot"]["path"], inside.display().to_string());
    let meta = std::fs::metadata(&inside).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (JAIL_ID, JAIL_ID));
    assert!(meta.len() > 64 << 20, "the whole 64 MiB guest is in it");
    api(&probe.sock(), "resume");
    assert!(probe.stop().status.success());
}

#[test]
fn without_seccomp_the_vmm_is_still_jailed_but_unfiltered() {
    let probe = JailedProbe::start(&["--no-seccomp"]);
    assert_eq!(probe.status_field("Seccomp"), "0");
    assert_eq!(probe.status_field("CapEff"), "0000000000000000");
    assert!(probe.stop().status.success());
}

#[test]
fn a_missing_jail_root_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = common::assert_refused(
        &[
            "--kernel".into(),
            probe_elf().display().to_string(),
            "--jail".into(),
            format!("{},uid={JAIL_ID},gid={JAIL_ID}", missing.display()),
        ],
        "cannot confine the vmm",
    );
    assert!(err.contains(&missing.display().to_string()), "{err}");
    common::assert_refused(
        &["--kernel", "x", "--jail", "/j,uid=0,gid=0"],
        "uid and gid are both required",
    );
}

#[test]
fn a_restored_vm_runs_jailed_too() {
    let probe = JailedProbe::start(&[]);
    let snap = probe.root().join("vm.snap");
    let answer = api_json(
        &probe.sock(),
        &serde_json::json!({"action": "snapshot", "path": snap}),
    );
    assert_eq!(answer["ok"], true, "{answer}");
    let seen = counts(&probe.console()).last().copied().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("vm.snap");
    std::fs::copy(&snap, &kept).unwrap();
    drop(probe.stop());
    let snap = kept;
    let root = dir.path().join("jail");
    std::fs::create_dir(&root).unwrap();
    std::os::unix::fs::chown(&root, Some(JAIL_ID), Some(JAIL_ID)).unwrap();
    let console = dir.path().join("console.log");
    let sock = dir.path().join("api.sock");
    let child = vmm()
        .arg("--restore")
        .arg(&snap)
        .args(["--mem-mib", "64"])
        .arg("--serial-log")
        .arg(&console)
        .arg("--api-sock")
        .arg(&sock)
        .arg("--jail")
        .arg(format!("{},uid={JAIL_ID},gid={JAIL_ID}", root.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let resumed = eventually(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&console).unwrap_or_default();
        counts(&text).last().is_some_and(|c| *c > seen)
    });
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    api(Path::new(&sock), "stop");
    let out = wait_with_timeout(child, Duration::from_secs(10));
    assert!(resumed, "the restored guest counts on: {out:?}");
    assert!(status.contains("Seccomp:\t2"), "{status}");
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_vmm_stopped_and_continued_runs_on_under_its_filter() {
    // Interrupted sleeps and waits resume through restart_syscall, which the filter must allow.
    let probe = JailedProbe::start(&[]);
    let pid = probe.pid() as i32;
    for _ in 0..3 {
        // SAFETY: kill(2) on our own child with plain integers.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGCONT) };
    }
    let seen = counts(&probe.console()).last().copied().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || counts(&probe.console())
            .last()
            .is_some_and(|c| *c > seen + 1)),
        "the guest counts on after SIGSTOP/SIGCONT: {}",
        probe.console()
    );
    let out = probe.stop();
    assert!(out.status.success(), "{out:?}");
}
