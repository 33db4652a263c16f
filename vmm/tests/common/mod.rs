//! Shared helpers for the tests that run the real `vmm` binary on real KVM.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fmt::Debug;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `vmm` binary under test.
pub fn vmm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vmm"))
}

/// The probe image, built by `images/build.sh probe` (which `scripts/test.sh` runs first).
pub fn probe_elf() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/out/probe/probe.elf");
    assert!(
        path.exists(),
        "{} is missing: run `images/build.sh probe` first",
        path.display()
    );
    path
}

/// Runs a command to completion, killing it after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vmm starts");
    wait_with_timeout(child, timeout)
}

/// Waits for a child, killing it (and failing the test) after `timeout`.
pub fn wait_with_timeout(mut child: Child, timeout: Duration) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait works").is_some() {
            return child.wait_with_output().expect("output is readable");
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output is readable");
            panic!(
                "vmm still running after {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the vmm with `args` plus a console log and a control socket in a fresh directory;
/// asserts exit code 1, that stderr contains `expected`, and that neither file was created.
/// Returns stderr.
pub fn assert_refused<S: AsRef<OsStr> + Debug>(args: &[S], expected: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("console.log");
    let sock = dir.path().join("api.sock");
    let out = run_with_timeout(
        vmm()
            .args(args)
            .arg("--serial-log")
            .arg(&log)
            .arg("--api-sock")
            .arg(&sock),
        Duration::from_secs(30),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
    assert!(!log.exists() && !sock.exists(), "nothing left behind");
    err
}

/// Stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Sends one control request and returns the parsed answer.
pub fn api(sock: &Path, action: &str) -> serde_json::Value {
    let mut stream = UnixStream::connect(sock).expect("api socket accepts");
    writeln!(stream, r#"{{"action":"{action}"}}"#).unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad answer {line:?}: {e}"))
}

/// Sends one JSON request object and returns the parsed answer.
pub fn api_json(sock: &Path, request: &serde_json::Value) -> serde_json::Value {
    let mut stream = UnixStream::connect(sock).expect("api socket accepts");
    writeln!(stream, "{request}").unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad answer {line:?}: {e}"))
}

/// The `probe: count N` values in a console log, in order.
pub fn counts(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| l.strip_prefix("probe: count "))
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

/// A minimal x86_64 ELF executable: one loadable segment at `load_addr` holding `code`
/// (entry at its start) and, when `user_note` is set, the note asking for a CPL3 start.
pub fn tiny_elf(code: &[u8], load_addr: u64, user_note: bool) -> tempfile::NamedTempFile {
    const EHDR: usize = 64;
    const PHDR: usize = 56;
    let phnum: usize = if user_note { 2 } else { 1 };
    let note: Vec<u8> = if user_note {
        let mut n = Vec::new();
        n.extend(5u32.to_le_bytes()); // namesz: "kec2\0"
        n.extend(4u32.to_le_bytes()); // descsz
        n.extend(1u32.to_le_bytes()); // type: entry mode
        n.extend(b"kec2\0\0\0\0"); // name, padded to 4
        n.extend(1u32.to_le_bytes()); // desc: user
        n
    } else {
        Vec::new()
    };
    let code_off = EHDR + PHDR * phnum;
    let note_off = code_off + code.len();
    let mut elf = Vec::new();
    elf.extend(b"\x7fELF");
    elf.extend([2, 1, 1, 0]); // 64-bit, little-endian, version 1, System V
    elf.extend([0u8; 8]);
    elf.extend(2u16.to_le_bytes()); // ET_EXEC
    elf.extend(0x3eu16.to_le_bytes()); // x86_64
    elf.extend(1u32.to_le_bytes());
    elf.extend(load_addr.to_le_bytes()); // entry
    elf.extend((EHDR as u64).to_le_bytes()); // program headers
    elf.extend(0u64.to_le_bytes()); // no section headers
    elf.extend(0u32.to_le_bytes());
    elf.extend((EHDR as u16).to_le_bytes());
    elf.extend((PHDR as u16).to_le_bytes());
    elf.extend((phnum as u16).to_le_bytes());
    elf.extend([0u8; 6]);
    let mut phdr = |kind: u32, flags: u32, off: usize, addr: u64, size: usize| {
        elf.extend(kind.to_le_bytes());
        elf.extend(flags.to_le_bytes());
        elf.extend((off as u64).to_le_bytes());
        elf.extend(addr.to_le_bytes());
        elf.extend(addr.to_le_bytes());
        elf.extend((size as u64).to_le_bytes());
        elf.extend((size as u64).to_le_bytes());
        elf.extend(16u64.to_le_bytes());
    };
    phdr(1, 5, code_off, load_addr, code.len()); // PT_LOAD, R+X
    if user_note {
        phdr(4, 4, note_off, 0, note.len()); // PT_NOTE
    }
    elf.extend(code);
    elf.extend(note);
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&elf).unwrap();
    file
}

/// A network namespace the test creates and removes, with a tap device inside it. Nothing
/// touches the host's own interfaces or routes.
pub struct NetNs {
    /// The namespace's name.
    pub name: String,
}

impl NetNs {
    /// Creates namespace `kec2-test-<tag>-<pid>` with loopback up and tap `tap0` at `host_ip`
    /// (CIDR) on the host side.
    pub fn with_tap(tag: &str, host_cidr: &str) -> NetNs {
        let name = format!("kec2-test-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let ns = NetNs { name };
        ns.ip(&["netns", "add", &ns.name]);
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns.exec(&["ip", "tuntap", "add", "dev", "tap0", "mode", "tap"]);
        ns.exec(&["ip", "addr", "add", host_cidr, "dev", "tap0"]);
        ns.exec(&["ip", "link", "set", "tap0", "up"]);
        ns
    }

    fn ip(&self, args: &[&str]) {
        let out = Command::new("ip").args(args).output().expect("ip runs");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs a command inside the namespace and asserts it succeeds.
    pub fn exec(&self, cmd: &[&str]) -> Output {
        let out = self.command(cmd).output().expect("ip netns exec runs");
        assert!(
            out.status.success(),
            "{cmd:?} in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// A command that will run inside the namespace.
    pub fn command(&self, cmd: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(cmd);
        c
    }

    /// Runs `f` on a thread that has joined the namespace (sockets it opens live there).
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).expect("namespace file");
            // SAFETY: setns on this thread only, with a namespace descriptor we opened.
            let rc =
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("namespace thread")
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

pub mod imds_double;
pub mod probe_vm;

impl NetNs {
    /// Creates namespace `kec2-test-<tag>-<pid>` with loopback up, bridge `br0` at `host_cidr`
    /// and one tap per name in `taps` enslaved to it (the probes on them share one layer-2
    /// segment with the namespace).
    pub fn with_bridge(tag: &str, host_cidr: &str, taps: &[&str]) -> NetNs {
        let name = format!("kec2-test-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let ns = NetNs { name };
        ns.ip(&["netns", "add", &ns.name]);
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns.exec(&["ip", "link", "add", "br0", "type", "bridge"]);
        ns.exec(&["ip", "addr", "add", host_cidr, "dev", "br0"]);
        ns.exec(&["ip", "link", "set", "br0", "up"]);
        for tap in taps {
            ns.exec(&["ip", "tuntap", "add", "dev", tap, "mode", "tap"]);
            ns.exec(&["ip", "link", "set", tap, "master", "br0"]);
            ns.exec(&["ip", "link", "set", tap, "up"]);
        }
        ns
    }
}
