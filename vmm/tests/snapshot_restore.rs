//! Hibernation end to end: a running probe is snapshotted through the control socket, its vmm
//! stopped, and a new vmm restores it from the file; the guest goes on where it stopped. Bad or
//! mismatched snapshots are refused with exit code 1 and leave nothing behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{
    api, api_json, assert_refused, counts, eventually, probe_elf, stderr, vmm, wait_with_timeout,
};

/// A vmm process with a control socket and a console log in `dir`, named by `tag`.
struct Vmm {
    child: Option<Child>,
    sock: PathBuf,
    log: PathBuf,
}

impl Vmm {
    /// Starts `vmm ARGS --api-sock DIR/TAG.sock --serial-log DIR/TAG.log`.
    fn start(dir: &Path, tag: &str, args: &[String]) -> Vmm {
        let sock = dir.join(format!("{tag}.sock"));
        let log = dir.join(format!("{tag}.log"));
        let child = vmm()
            .args(args)
            .arg("--api-sock")
            .arg(&sock)
            .arg("--serial-log")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut vmm = Vmm {
            child: Some(child),
            sock,
            log,
        };
        let up = eventually(Duration::from_secs(10), || {
            vmm.sock.exists() || vmm.child.as_mut().unwrap().try_wait().unwrap().is_some()
        });
        assert!(up && vmm.sock.exists(), "vmm {tag} did not start");
        vmm
    }

    fn console(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the console shows `needle`.
    fn wait_for(&self, needle: &str, timeout: Duration) {
        assert!(
            eventually(timeout, || self.console().contains(needle)),
            "no {needle:?} in:\n{}",
            self.console()
        );
    }

    /// Waits until the count reaches `n`.
    fn wait_for_count(&self, n: u64) {
        assert!(
            eventually(Duration::from_secs(15), || counts(&self.console())
                .last()
                .is_some_and(|c| *c >= n)),
            "count reaches {n}:\n{}",
            self.console()
        );
    }

    /// Asks for a snapshot at `path` and returns the answer.
    fn snapshot(&self, path: &Path) -> serde_json::Value {
        api_json(
            &self.sock,
            &serde_json::json!({ "action": "snapshot", "path": path }),
        )
    }

    /// Sends `stop` and waits for the process to end.
    fn stop(mut self) -> Output {
        assert_eq!(api(&self.sock, "stop")["ok"], true);
        self.wait()
    }

    fn wait(&mut self) -> Output {
        wait_with_timeout(self.child.take().unwrap(), Duration::from_secs(60))
    }
}

impl Drop for Vmm {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Boots the counting probe, lets it count to 3, snapshots it to `DIR/vm.snap` and stops it.
/// Returns the snapshot, the console before it, and the machine flags used.
fn counting_snapshot(dir: &Path, vcpus: u32) -> (PathBuf, String, Vec<String>) {
    let machine = strings(&["--mem-mib", "64", "--vcpus", &vcpus.to_string()]);
    let mut boot = strings(&["--kernel", probe_elf().to_str().unwrap()]);
    boot.extend(machine.clone());
    boot.extend(strings(&["--cmdline", "probe.mode=count"]));
    let first = Vmm::start(dir, "boot", &boot);
    first.wait_for_count(3);
    let path = dir.join("vm.snap");
    let answer = first.snapshot(&path);
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["status"]["state"], "paused", "{answer}");
    let info = &answer["snapshot"];
    let bytes = info["bytes"].as_u64().unwrap();
    assert_eq!(bytes, std::fs::metadata(&path).unwrap().len(), "{answer}");
    assert!(
        bytes > 64 << 20,
        "the file holds the 64 MiB of memory: {answer}"
    );
    assert!(
        info["allocated_bytes"].as_u64().unwrap() < 16 << 20,
        "zero pages are holes: {answer}"
    );
    assert!(info["took_ms"].is_u64(), "{answer}");
    assert!(!dir.join("vm.snap.tmp").exists());
    let before = first.console();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(first.console(), before, "the VM stays paused");
    let out = first.stop();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    (path, before, machine)
}

/// Restores through `--restore` and flags, or through the same fields in a JSON config.
fn count_continues_after_restore(vcpus: u32, via_config: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (snap, before, machine) = counting_snapshot(dir.path(), vcpus);
    let last = *counts(&before).last().unwrap();
    let restore = if via_config {
        let config = dir.path().join("restore.json");
        let json = serde_json::json!({ "restore": snap, "vcpus": vcpus, "mem_mib": 64 });
        std::fs::write(&config, json.to_string()).unwrap();
        strings(&["--config", config.to_str().unwrap()])
    } else {
        let mut flags = strings(&["--restore", snap.to_str().unwrap()]);
        flags.extend(machine);
        // Accepted and ignored: the SMBIOS tables are in the saved memory.
        flags.extend(strings(&[
            "--smbios",
            "manufacturer=Amazon EC2,product=t3.nano",
        ]));
        flags
    };
    let mut second = Vmm::start(dir.path(), "restored", &restore);
    second.wait_for_count(last + 3);
    let after = second.console();
    assert!(
        !after.contains(&format!("vcpu 0 of {vcpus} up")),
        "the guest does not boot again:\n{after}"
    );
    let first_after = counts(&after)[0];
    assert!(
        first_after == last + 1 || first_after == last + 2,
        "the count goes on from {last}, not from {first_after}:\n{after}"
    );
    // Across both consoles the count has no gap and no repeat (a line cut by the snapshot
    // ends in the second log).
    let all = counts(&format!("{before}{after}"));
    let expected: Vec<u64> = (1..=*all.last().unwrap()).collect();
    assert_eq!(all, expected, "before:\n{before}\nafter:\n{after}");
    let status = api(&second.sock, "status");
    assert_eq!(status["status"]["state"], "running");
    assert_eq!(status["status"]["vcpus"], vcpus);
    // The restored machine's power button (its GED and interrupt line, rebuilt) works.
    assert_eq!(api(&second.sock, "power-button")["ok"], true);
    let out = second.wait();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        second.console().contains("probe: power button pressed"),
        "{}",
        second.console()
    );
    let log = stderr(&out);
    assert!(
        log.contains(&format!("restored from {}", snap.display())),
        "{log}"
    );
    assert!(log.contains("vmm: exit: guest powered off"), "{log}");
}

#[test]
fn count_continues_after_restore_on_1_vcpu() {
    count_continues_after_restore(1, false);
}

#[test]
fn count_continues_after_restore_from_a_json_config() {
    count_continues_after_restore(1, true);
}

#[test]
fn count_continues_after_restore_on_2_vcpus() {
    count_continues_after_restore(2, false);
}

#[test]
fn a_disk_write_interrupted_by_a_snapshot_completes_after_restore() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("vol.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    // 8 MiB/s: writing and reading back 32 MiB takes about 8 s, so the snapshot lands mid-way.
    let disk_flag = format!("{},id=vol-1,bps=8388608", disk.display());
    let machine = strings(&["--mem-mib", "64", "--disk", &disk_flag]);
    let mut boot = strings(&["--kernel", probe_elf().to_str().unwrap()]);
    boot.extend(machine.clone());
    boot.extend(strings(&["--cmdline", "probe.disk=write"]));
    let first = Vmm::start(dir.path(), "boot", &boot);
    first.wait_for("probe: disk capacity", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1500));
    let snap = dir.path().join("vm.snap");
    let answer = first.snapshot(&snap);
    assert_eq!(answer["ok"], true, "{answer}");
    let served = answer["status"]["devices"][0]["requests"].as_u64().unwrap();
    assert!(served > 0, "the disk was in use: {answer}");
    let before = first.console();
    assert!(
        !before.contains("disk write ok"),
        "still writing:\n{before}"
    );
    assert_eq!(first.stop().status.code(), Some(0));

    let mut restore = strings(&["--restore", snap.to_str().unwrap()]);
    restore.extend(machine);
    let mut second = Vmm::start(dir.path(), "restored", &restore);
    let out = second.wait();
    let after = second.console();
    assert_eq!(out.status.code(), Some(0), "{}\n{after}", stderr(&out));
    assert!(
        after.contains("probe: disk write ok 33554432 bytes checksum "),
        "the write finished and read back intact:\n{after}"
    );
    assert!(after.ends_with("probe: power off 0\n"), "{after}");
    assert!(!after.contains("disk capacity"), "no second boot:\n{after}");
}

/// Runs a restore that must be refused: exit code 1, `expected` in the error, no console log
/// or control socket left behind, and the vmm never started.
fn refused(args: &[String], expected: &str) {
    let err = assert_refused(args, expected);
    assert!(!err.contains("vmm: started"), "{err}");
}

fn copy_with(dir: &Path, snap: &Path, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = std::fs::read(snap).unwrap();
    edit(&mut bytes);
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn bad_and_mismatched_snapshots_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (snap, _, _) = counting_snapshot(dir.path(), 2);
    let args = |path: &Path, extra: &[&str]| {
        let mut a = strings(&["--restore", path.to_str().unwrap()]);
        a.extend(strings(extra));
        a
    };
    let same = ["--mem-mib", "64", "--vcpus", "2"];

    let corrupt = copy_with(dir.path(), &snap, "corrupt.snap", |b| {
        let middle = b.len() / 2;
        b[middle] ^= 0x01;
    });
    refused(
        &args(&corrupt, &same),
        &format!(
            "snapshot {} is corrupt: checksum mismatch",
            corrupt.display()
        ),
    );

    let truncated = copy_with(dir.path(), &snap, "truncated.snap", |b| {
        b.truncate(b.len() - 100_000);
    });
    refused(
        &args(&truncated, &same),
        &format!("snapshot {} is truncated", truncated.display()),
    );

    let old = copy_with(dir.path(), &snap, "version.snap", |b| b[8] = 9);
    refused(
        &args(&old, &same),
        "has format version 9; this vmm reads version 1",
    );

    let other = copy_with(dir.path(), &snap, "magic.snap", |b| {
        b[..8].copy_from_slice(b"ELF\0\0\0\0\0")
    });
    refused(&args(&other, &same), "is not a kec2 snapshot (wrong magic)");

    refused(
        &args(&snap, &["--mem-mib", "128", "--vcpus", "2"]),
        "the snapshot has 64 MiB of memory but the configuration asks for 128 MiB (--mem-mib)",
    );
    refused(
        &args(&snap, &["--mem-mib", "64", "--vcpus", "1"]),
        "the snapshot has 2 vCPUs but the configuration asks for 1 (--vcpus)",
    );
    refused(
        &args(&snap, &["--mem-mib", "64", "--vcpus", "2", "--rng"]),
        "the snapshot has 0 virtio devices [] but the configuration has 1 [rng]",
    );
    let missing = dir.path().join("missing.snap");
    refused(
        &args(&missing, &same),
        &format!("cannot read snapshot {}", missing.display()),
    );
    refused(
        &args(
            &snap,
            &["--mem-mib", "64", "--vcpus", "2", "--cmdline", "x"],
        ),
        "cmdline cannot be used when restoring a snapshot",
    );
    // None of the refusals touched the good snapshot: it still restores.
    let restored = Vmm::start(dir.path(), "restored", &args(&snap, &same));
    restored.wait_for_count(4);
    assert_eq!(restored.stop().status.code(), Some(0));
}

#[test]
fn a_failed_snapshot_request_leaves_the_vm_running() {
    let dir = tempfile::tempdir().unwrap();
    let vm = Vmm::start(
        dir.path(),
        "boot",
        &strings(&[
            "--kernel",
            probe_elf().to_str().unwrap(),
            "--mem-mib",
            "64",
            "--cmdline",
            "probe.mode=count",
        ]),
    );
    vm.wait_for_count(1);
    let relative = vm.snapshot(Path::new("vm.snap"));
    assert_eq!(relative["ok"], false);
    assert_eq!(
        relative["error"],
        "snapshot failed: snapshot path vm.snap must be absolute"
    );
    let nowhere = vm.snapshot(&dir.path().join("no/such/dir/vm.snap"));
    assert_eq!(nowhere["ok"], false);
    assert!(
        nowhere["error"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{nowhere}"
    );
    assert_eq!(api(&vm.sock, "status")["status"]["state"], "running");
    let last = *counts(&vm.console()).last().unwrap();
    vm.wait_for_count(last + 1);

    // vmm-ctl takes a relative file and makes it absolute.
    let ctl = Command::new(env!("CARGO_BIN_EXE_vmm-ctl"))
        .current_dir(dir.path())
        .arg("--api-sock")
        .arg(&vm.sock)
        .args(["snapshot", "ctl.snap"])
        .output()
        .unwrap();
    assert!(
        ctl.status.success(),
        "{}",
        String::from_utf8_lossy(&ctl.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&ctl.stdout).unwrap();
    assert_eq!(
        answer["snapshot"]["path"],
        dir.path().join("ctl.snap").to_str().unwrap()
    );
    assert!(dir.path().join("ctl.snap").exists());
    assert_eq!(vm.stop().status.code(), Some(0));
}
