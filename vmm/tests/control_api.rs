//! The control socket against a running probe: status, pause, resume, Ctrl-Alt-Del, the
//! power button, stop.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{api, counts, eventually, probe_elf, vmm, wait_with_timeout};

struct CountingProbe {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl CountingProbe {
    /// Starts the probe in count mode with a control socket and a console log.
    fn start(vcpus: u32) -> Self {
        Self::start_with(vcpus, &[])
    }

    /// The same, with more vmm flags.
    fn start_with(vcpus: u32, flags: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let child = vmm()
            .arg("--kernel")
            .arg(probe_elf())
            .args(["--mem-mib", "64", "--vcpus", &vcpus.to_string()])
            .args(flags)
            .args(["--cmdline", "probe.mode=count"])
            .arg("--api-sock")
            .arg(dir.path().join("api.sock"))
            .arg("--serial-log")
            .arg(dir.path().join("console.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let probe = CountingProbe {
            child: Some(child),
            dir,
        };
        assert!(
            eventually(Duration::from_secs(10), || probe.sock().exists()),
            "api socket appears"
        );
        probe
    }

    fn sock(&self) -> std::path::PathBuf {
        self.dir.path().join("api.sock")
    }

    fn console(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    fn wait_for_count(&self, n: u64) {
        assert!(
            eventually(Duration::from_secs(10), || counts(&self.console())
                .last()
                .is_some_and(|c| *c >= n)),
            "count reaches {n}: {}",
            self.console()
        );
    }

    fn finish(mut self) -> (std::process::Output, String, bool) {
        let out = wait_with_timeout(self.child.take().unwrap(), Duration::from_secs(10));
        let sock_left = self.sock().exists();
        (out, self.console(), sock_left)
    }
}

impl Drop for CountingProbe {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn state(sock: &Path) -> String {
    api(sock, "status")["status"]["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn status_reports_the_vm() {
    let probe = CountingProbe::start(2);
    probe.wait_for_count(1);
    let answer = api(&probe.sock(), "status");
    assert_eq!(answer["ok"], true);
    let status = &answer["status"];
    assert_eq!(status["state"], "running");
    assert_eq!(status["vcpus"], 2);
    assert_eq!(status["memory_mib"], 64);
    assert_eq!(status["entry"], "user");
    assert!(status["uptime_ms"].as_u64().unwrap() >= 500, "{status}");
    assert!(
        status["exits"]["io"].as_u64().unwrap() > 20,
        "console bytes are port exits"
    );
    assert!(status["exits"]["waits"].as_u64().unwrap() >= 1, "{status}");
    let bad = api(&probe.sock(), "explode");
    assert_eq!(bad["ok"], false);
    assert!(
        bad["error"].as_str().unwrap().contains("ctrl-alt-del"),
        "{bad}"
    );
}

#[test]
fn pause_stops_the_count_and_resume_continues_it() {
    let probe = CountingProbe::start(1);
    probe.wait_for_count(2);
    let paused = api(&probe.sock(), "pause");
    assert_eq!(paused["ok"], true, "{paused}");
    assert_eq!(state(&probe.sock()), "paused");
    let at_pause = counts(&probe.console());
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(counts(&probe.console()), at_pause, "no count while paused");
    let again = api(&probe.sock(), "pause");
    assert_eq!(again["ok"], false);
    assert_eq!(api(&probe.sock(), "resume")["ok"], true);
    let last = *at_pause.last().unwrap();
    probe.wait_for_count(last + 2);
    let after = counts(&probe.console());
    let expected: Vec<u64> = (1..=*after.last().unwrap()).collect();
    assert_eq!(
        after, expected,
        "the count continues without gaps or repeats"
    );
}

#[test]
fn stop_ends_the_process_and_removes_the_socket() {
    let probe = CountingProbe::start(2);
    probe.wait_for_count(1);
    assert_eq!(api(&probe.sock(), "stop")["ok"], true);
    let (out, _, sock_left) = probe.finish();
    assert_eq!(out.status.code(), Some(0));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("vmm: exit: stopped through the control API"),
        "{log}"
    );
    assert!(!sock_left, "the control socket is removed");
}

#[test]
fn ctrl_alt_del_reaches_the_guest() {
    let probe = CountingProbe::start(1);
    probe.wait_for_count(1);
    assert_eq!(api(&probe.sock(), "ctrl-alt-del")["ok"], true);
    let (out, console, _) = probe.finish();
    assert!(
        console.contains("probe: ctrl-alt-del received"),
        "{console}"
    );
    assert!(console.ends_with("probe: power off 0\n"), "{console}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn power_button_powers_the_guest_off() {
    // With the identity the agent gives an instance (a value with a space included).
    let probe = CountingProbe::start_with(
        2,
        &[
            "--smbios",
            "manufacturer=Amazon EC2,product=t3.micro,serial=ec2e1916-9099-7caf-fd21-012345abcdef,\
             uuid=ec2e1916-9099-7caf-fd21-012345abcdef,asset-tag=i-0123456789abcdef0",
        ],
    );
    probe.wait_for_count(1);
    let pressed = std::process::Command::new(env!("CARGO_BIN_EXE_vmm-ctl"))
        .arg("--api-sock")
        .arg(probe.sock())
        .arg("power-button")
        .output()
        .unwrap();
    assert!(pressed.status.success(), "{pressed:?}");
    let (out, console, _) = probe.finish();
    assert!(console.contains("probe: power button pressed"), "{console}");
    assert!(console.ends_with("probe: power off 0\n"), "{console}");
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("vmm: exit: guest powered off"), "{stderr}");
}

#[test]
fn power_button_pressed_while_paused_is_read_on_resume() {
    let probe = CountingProbe::start(1);
    probe.wait_for_count(1);
    assert_eq!(api(&probe.sock(), "pause")["ok"], true);
    // Paused, the guest cannot read the press yet; the press is still accepted.
    assert_eq!(api(&probe.sock(), "power-button")["ok"], true);
    assert_eq!(api(&probe.sock(), "resume")["ok"], true);
    let (out, console, _) = probe.finish();
    assert!(console.contains("probe: power button pressed"), "{console}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn stop_works_while_paused() {
    let probe = CountingProbe::start(2);
    probe.wait_for_count(1);
    assert_eq!(api(&probe.sock(), "pause")["ok"], true);
    assert_eq!(api(&probe.sock(), "stop")["ok"], true);
    let (out, _, _) = probe.finish();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn vmm_ctl_drives_the_socket() {
    let probe = CountingProbe::start(1);
    probe.wait_for_count(1);
    let sock = probe.sock();
    let ctl = |action: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vmm-ctl"))
            .arg("--api-sock")
            .arg(&sock)
            .arg(action)
            .output()
            .unwrap()
    };
    let status = ctl("status");
    assert!(status.status.success());
    let answer: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(answer["status"]["state"], "running");
    assert!(ctl("pause").status.success());
    assert_eq!(
        ctl("pause").status.code(),
        Some(1),
        "a refused request exits 1"
    );
    assert!(ctl("stop").status.success());
    let (out, _, _) = probe.finish();
    assert_eq!(out.status.code(), Some(0));
    let gone = ctl("status");
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("cannot reach"));
}
