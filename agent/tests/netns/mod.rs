//! Network namespaces the networking tests create and remove; nothing touches the host's own
//! interfaces or routes.

#![allow(dead_code)]

use std::process::{Command, Output};

/// A namespace, deleted on drop.
pub struct Namespace(pub String);

impl Namespace {
    /// Creates `kec2-<tag>-<pid>-<n>` with loopback up.
    pub fn new(tag: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("kec2-{tag}-{}-{n}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let ns = Namespace(name);
        ip(&["netns", "add", &ns.0]);
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Runs a command inside the namespace and asserts it succeeds.
    pub fn exec(&self, cmd: &[&str]) -> Output {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(cmd)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{cmd:?} in {}: {}",
            self.0,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Adds tap `name` with `cidr` on its host side, up.
    pub fn add_tap(&self, name: &str, cidr: &str) {
        self.exec(&["ip", "tuntap", "add", "dev", name, "mode", "tap"]);
        self.exec(&["ip", "addr", "add", cidr, "dev", name]);
        self.exec(&["ip", "link", "set", name, "up"]);
    }

    /// Runs `f` on a thread that has joined the namespace; processes it spawns live there too.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.0);
        std::thread::spawn(move || {
            enter(&path);
            f()
        })
        .join()
        .expect("namespace thread")
    }
}

/// Joins the calling thread to the namespace at `path`.
pub fn enter(path: &str) {
    let file = std::fs::File::open(path).unwrap();
    // SAFETY: setns on the calling thread with a namespace descriptor we opened.
    let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}
