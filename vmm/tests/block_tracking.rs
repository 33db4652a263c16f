//! Snapshots of a running disk, as the agent takes them: a probe rewrites random blocks
//! without end (`probe.disk=churn`), the test copies the disk file while it runs with the
//! vmm tracking writes, copies again the blocks written meanwhile, pauses the vmm and copies
//! the last written blocks: the copy is then the disk at the pause, byte for byte, and the
//! disk does not change until the vmm resumes. With both engines, and jailed (seccomp).

mod common;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{api, api_json, eventually, probe_elf, vmm, wait_with_timeout};
use serde_json::json;

/// A uid and gid no account on a test host uses.
const JAIL_ID: u32 = 1_999_000_002;
const DISK_BYTES: u64 = 64 << 20;

struct Churning {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Churning {
    fn start(engine: &str, jailed: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("disk.img");
        File::create(&disk).unwrap().set_len(DISK_BYTES).unwrap();
        let mut cmd = vmm();
        cmd.arg("--kernel")
            .arg(probe_elf())
            .args(["--mem-mib", "64", "--cmdline", "probe.disk=churn"])
            .arg("--disk")
            .arg(format!("{},id=vol1,engine={engine}", disk.display()))
            .arg("--api-sock")
            .arg(dir.path().join("api.sock"))
            .arg("--serial-log")
            .arg(dir.path().join("console.log"));
        if jailed {
            let root = dir.path().join("jail");
            std::fs::create_dir(&root).unwrap();
            std::os::unix::fs::chown(&root, Some(JAIL_ID), Some(JAIL_ID)).unwrap();
            cmd.arg("--jail")
                .arg(format!("{},uid={JAIL_ID},gid={JAIL_ID}", root.display()));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let vm = Churning {
            child: Some(child),
            dir,
        };
        assert!(
            eventually(Duration::from_secs(10), || vm
                .console()
                .contains("disk churn started")),
            "the probe writes: {}",
            vm.console()
        );
        vm
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("api.sock")
    }

    fn disk(&self) -> PathBuf {
        self.dir.path().join("disk.img")
    }

    fn console(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    fn request(&self, request: serde_json::Value) -> serde_json::Value {
        api_json(&self.sock(), &request)
    }

    /// The written ranges the vmm reports (asserting it answers).
    fn written(&self, stop: bool) -> Vec<(u64, u64)> {
        let answer =
            self.request(json!({"action": "written-blocks", "drive": "vol1", "stop": stop}));
        assert_eq!(answer["ok"], true, "{answer}");
        assert_eq!(answer["written"]["block_bytes"], 65536, "{answer}");
        serde_json::from_value(answer["written"]["ranges"].clone()).unwrap()
    }
}

impl Drop for Churning {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn copy_ranges(from: &Path, to: &Path, ranges: &[(u64, u64)]) {
    let (from, to) = (
        File::open(from).unwrap(),
        OpenOptions::new().write(true).open(to).unwrap(),
    );
    for &(at, len) in ranges {
        let mut buf = vec![0u8; len as usize];
        from.read_exact_at(&mut buf, at).unwrap();
        to.write_all_at(&buf, at).unwrap();
    }
}

/// The first offset where two files differ, if any.
fn first_difference(a: &Path, b: &Path) -> Option<usize> {
    let (a, b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert_eq!(a.len(), b.len());
    a.iter().zip(&b).position(|(x, y)| x != y)
}

fn the_copy_is_the_disk_at_the_pause(engine: &str, jailed: bool) {
    let vm = Churning::start(engine, jailed);
    let started = vm.request(json!({"action": "track-writes", "drive": "vol1"}));
    assert_eq!(started["ok"], true, "{started}");
    let copy = vm.dir.path().join("copy.img");
    std::fs::copy(vm.disk(), &copy).unwrap();
    let meanwhile = vm.written(false);
    assert!(
        !meanwhile.is_empty(),
        "the guest wrote during the copy: {}",
        vm.console()
    );
    copy_ranges(&vm.disk(), &copy, &meanwhile);
    let paused = api(&vm.sock(), "pause");
    assert_eq!(paused["ok"], true, "{paused}");
    let last = vm.written(true);
    copy_ranges(&vm.disk(), &copy, &last);
    assert_eq!(
        first_difference(&vm.disk(), &copy),
        None,
        "the copy is the disk at the pause ({} ranges written during the copy, {} since)",
        meanwhile.len(),
        last.len()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        first_difference(&vm.disk(), &copy),
        None,
        "nothing is written while the vmm is paused"
    );
    assert_eq!(api(&vm.sock(), "resume")["ok"], true);
    assert!(
        eventually(Duration::from_secs(5), || first_difference(
            &vm.disk(),
            &copy
        )
        .is_some()),
        "the guest writes again once resumed"
    );
    let after = vm.request(json!({"action": "written-blocks", "drive": "vol1"}));
    assert_eq!(after["ok"], false, "tracking ended: {after}");
    let stopped = api(&vm.sock(), "stop");
    assert_eq!(stopped["ok"], true);
    let mut vm = vm;
    let out = wait_with_timeout(vm.child.take().unwrap(), Duration::from_secs(10));
    assert!(out.status.success(), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("synchronous engine"),
        "io_uring was used: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_copy_is_the_disk_at_the_pause_with_io_uring_jailed() {
    the_copy_is_the_disk_at_the_pause("io_uring", true);
}

#[test]
fn the_copy_is_the_disk_at_the_pause_with_the_sync_engine() {
    the_copy_is_the_disk_at_the_pause("sync", false);
}

#[test]
fn tracking_an_unknown_disk_is_refused() {
    let vm = Churning::start("io_uring", false);
    let answer = vm.request(json!({"action": "track-writes", "drive": "nope"}));
    assert_eq!(answer["ok"], false);
    assert_eq!(answer["error"], "no disk with id `nope`");
    let answer = vm.request(json!({"action": "written-blocks", "drive": "vol1"}));
    assert_eq!(
        answer["error"], "writes to disk `vol1` are not being tracked",
        "{answer}"
    );
}
