//! A probe VM on a tap of a test's network namespace, with its console log at hand.

use std::process::{Child, Stdio};
use std::time::Duration;

use super::{NetNs, eventually, probe_elf};

/// A `vmm` running the probe with one virtio-net device on a tap inside a [`NetNs`]; killed
/// (and reaped) when dropped, so a failing test leaves no VM behind.
pub struct ProbeVm {
    child: Child,
    dir: tempfile::TempDir,
}

impl ProbeVm {
    /// Starts the probe (64 MiB) on `tap` with `mac` and the probe options `cmdline`.
    pub fn start(ns: &NetNs, tap: &str, mac: &str, cmdline: &str) -> ProbeVm {
        let dir = tempfile::tempdir().unwrap();
        let probe = probe_elf();
        let log = dir.path().join("console.log");
        let net = format!("tap={tap},mac={mac}");
        let child = ns
            .command(&[
                env!("CARGO_BIN_EXE_vmm"),
                "--kernel",
                probe.to_str().unwrap(),
                "--mem-mib",
                "64",
                "--net",
                &net,
                "--cmdline",
                cmdline,
                "--serial-log",
                log.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        ProbeVm { child, dir }
    }

    /// The console log so far.
    pub fn console(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    /// The complete console lines so far (a line being written is left out).
    pub fn lines(&self) -> Vec<String> {
        let console = self.console();
        let complete = console.rfind('\n').map_or("", |end| &console[..end]);
        complete
            .lines()
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect()
    }

    /// Waits for a console line starting with `prefix` and returns it; panics with the
    /// console after `timeout`.
    pub fn wait_for_line(&self, prefix: &str, timeout: Duration) -> String {
        let mut found = None;
        eventually(timeout, || {
            found = self.lines().into_iter().find(|l| l.starts_with(prefix));
            found.is_some()
        });
        found.unwrap_or_else(|| panic!("no {prefix:?} line; console:\n{}", self.console()))
    }

    /// The index of the first console line starting with `prefix`; panics with the console
    /// if there is none.
    pub fn line_index(&self, prefix: &str) -> usize {
        self.lines()
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line; console:\n{}", self.console()))
    }

    /// Asserts that the console has exactly `line`.
    pub fn assert_line(&self, line: &str) {
        assert!(
            self.lines().iter().any(|l| l == line),
            "no line {line:?}; console:\n{}",
            self.console()
        );
    }
}

impl Drop for ProbeVm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
