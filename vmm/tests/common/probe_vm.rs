//! A probe VM on a tap of a test's network namespace, with its console log (and, when asked
//! for, its control socket) at hand.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::Duration;

use super::{NetNs, eventually, probe_elf};

/// A `vmm` running the probe with one virtio-net device on a tap inside a [`NetNs`]; killed
/// (and reaped) when dropped, so a failing test leaves no VM behind.
pub struct ProbeVm {
    child: Child,
    dir: tempfile::TempDir,
    /// The `--net` value, kept for a restore on the same tap.
    net: String,
    /// The console log: `console.log`, or `restored.log` after [`ProbeVm::restore`].
    log: PathBuf,
    /// The control socket, if the vmm has one.
    sock: Option<PathBuf>,
}

impl ProbeVm {
    /// Starts the probe (64 MiB) on `tap` with `mac` and the probe options `cmdline`.
    pub fn start(ns: &NetNs, tap: &str, mac: &str, cmdline: &str) -> ProbeVm {
        Self::boot(ns, tap, mac, cmdline, false)
    }

    /// [`ProbeVm::start`] with a control socket at [`ProbeVm::api_sock`].
    pub fn start_with_api(ns: &NetNs, tap: &str, mac: &str, cmdline: &str) -> ProbeVm {
        Self::boot(ns, tap, mac, cmdline, true)
    }

    /// Boots the probe from its image, with or without a control socket.
    fn boot(ns: &NetNs, tap: &str, mac: &str, cmdline: &str, api: bool) -> ProbeVm {
        let dir = tempfile::tempdir().unwrap();
        let net = format!("tap={tap},mac={mac}");
        let log = dir.path().join("console.log");
        let sock = api.then(|| dir.path().join("api.sock"));
        let probe = probe_elf();
        let kernel = ["--kernel", probe.to_str().unwrap(), "--cmdline", cmdline];
        let child = spawn(ns, &kernel, &net, &log, sock.as_deref());
        ProbeVm {
            child,
            dir,
            net,
            log,
            sock,
        }
    }

    /// Once the vmm has ended: restores the snapshot at `snapshot` in a new vmm on the same
    /// tap and control socket, its console in `restored.log` (the log every console method
    /// reads from then on).
    pub fn restore(&mut self, ns: &NetNs, snapshot: &Path) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log = self.dir.path().join("restored.log");
        let restore = ["--restore", snapshot.to_str().unwrap()];
        self.child = spawn(ns, &restore, &self.net, &self.log, self.sock.as_deref());
    }

    /// The VM's own directory (console logs, control socket), for files a test adds.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The control socket; panics if the VM was started without one.
    pub fn api_sock(&self) -> &Path {
        self.sock
            .as_deref()
            .expect("a vmm started with a control socket")
    }

    /// The console log file.
    pub fn console_path(&self) -> &Path {
        &self.log
    }

    /// The vmm's exit status, if it has ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// The console log so far.
    pub fn console(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
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

/// Runs `vmm ARGS --mem-mib 64 --net NET --serial-log LOG [--api-sock SOCK]` inside `ns`, its
/// output discarded.
fn spawn(ns: &NetNs, args: &[&str], net: &str, log: &Path, sock: Option<&Path>) -> Child {
    let mut cmd = vec![env!("CARGO_BIN_EXE_vmm")];
    cmd.extend_from_slice(args);
    cmd.extend(["--mem-mib", "64", "--net", net]);
    cmd.extend(["--serial-log", log.to_str().unwrap()]);
    if let Some(sock) = sock {
        cmd.extend(["--api-sock", sock.to_str().unwrap()]);
    }
    ns.command(&cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}
