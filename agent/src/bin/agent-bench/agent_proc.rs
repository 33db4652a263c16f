//! The agents the benchmarks start: each with its instance networking in a namespace of its
//! own, killed with every VMM it started when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cli::client::Client;

/// Where the `agent` and `vmm` binaries are (`--bin-dir`, else beside this one).
pub static BIN_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// An agent whose instance networking lives in a namespace of its own (made and removed
/// here), so the benchmark never touches the host's network.
pub struct AgentProc {
    /// Its state dir.
    pub dir: PathBuf,
    child: Option<Child>,
    /// Its API's address.
    pub endpoint: String,
    /// Its instances' namespace.
    pub netns: String,
    /// Whether dropping this removes `netns` (and kills the VMMs under `dir`).
    owns_netns: bool,
}

impl AgentProc {
    /// An agent on state dir `dir` with flags `extra`, in a namespace made for it.
    pub fn start(dir: &Path, extra: &[&str]) -> Self {
        static STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let netns = format!(
            "kec2-bench-{}-{}",
            std::process::id(),
            STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let made = Command::new("ip").args(["netns", "add", &netns]).status();
        assert!(
            made.is_ok_and(|s| s.success()),
            "cannot make netns {netns} (run as root)"
        );
        let mut a = Self::start_in(dir, extra, netns);
        a.owns_netns = true;
        a
    }

    /// An agent on state dir `dir` whose instance networking is in the existing `netns`
    /// (left to its owner).
    pub fn start_in(dir: &Path, extra: &[&str], netns: String) -> Self {
        let bin = BIN_DIR
            .get()
            .cloned()
            .unwrap_or_else(|| {
                let me = std::env::current_exe().expect("own path");
                me.parent().expect("a directory").to_path_buf()
            })
            .join("agent");
        let endpoint_file = dir.join("endpoint");
        let _ = std::fs::remove_file(&endpoint_file);
        let mut child = Command::new(bin)
            .arg("--state-dir")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0", "--netns", &netns])
            .args(["--outbound-nat", "false"])
            .args(extra)
            .env(
                "AGENT_LOG",
                std::env::var("BENCH_AGENT_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("agent starts");
        let t = Instant::now();
        while !endpoint_file.exists() {
            assert!(
                t.elapsed() < Duration::from_secs(300),
                "agent did not start"
            );
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the agent ended at start: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let endpoint = std::fs::read_to_string(&endpoint_file)
            .unwrap()
            .trim()
            .to_string();
        Self {
            dir: dir.to_path_buf(),
            child: Some(child),
            endpoint,
            netns,
            owns_netns: false,
        }
    }

    /// The agent's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// A client of its API.
    pub fn client(&self) -> Client {
        let creds = wire::credentials::load(&wire::credentials::path(&self.dir)).unwrap();
        Client::new(&self.endpoint, creds)
    }

    /// Kills the agent (its VMMs keep running).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.stop();
        if !self.owns_netns {
            return;
        }
        kill_vmms(&self.dir);
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

/// Kills every process under `dir` (the agent is dead by now; a VMM it was spawning may be
/// between fork and exec, so sweep a few times).
fn kill_vmms(dir: &Path) {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id() as i32;
    for _ in 0..4 {
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if pid != me && cmd.contains(&needle) {
                // SAFETY: kill(2) on a process (group) this benchmark's agent started.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
