//! One HAProxy per load balancer, in master-worker mode and daemonized, in the agent's
//! network namespace: `<state-dir>/elb/<id>/` holds `haproxy.cfg`, `haproxy.pid` (the
//! master's), `master.sock` (the master CLI), `stats.sock` (the worker's runtime API) and
//! `servers.state` (the servers' health, saved before each reload and read by the new
//! worker). A change is a hitless reload: the configuration is checked, the servers' state
//! saved, then the master told `reload`; the old worker finishes its connections.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::netns::NetNs;

/// Why HAProxy could not be brought in line.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// A file could not be written or read.
    #[error("cannot write or read {path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `haproxy` could not be run.
    #[error("cannot run haproxy")]
    Spawn(#[source] std::io::Error),
    /// HAProxy refused the configuration or did not start.
    #[error("haproxy refused {what}: {stderr}")]
    Refused {
        /// What it was asked.
        what: &'static str,
        /// What it said.
        stderr: String,
    },
    /// A socket did not answer.
    #[error("haproxy's {socket} did not answer")]
    Socket {
        /// The socket.
        socket: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The files of one load balancer's HAProxy.
#[derive(Debug, Clone)]
pub struct Haproxy {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProcessError + '_ {
    move |source| ProcessError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Haproxy {
    /// The HAProxy whose files are in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Haproxy { dir }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn cfg(&self) -> PathBuf {
        self.dir.join("haproxy.cfg")
    }

    /// The master's pid, if it runs.
    pub fn master_pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.dir.join("haproxy.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let zombie = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next())
            == Some("Z");
        (cmdline.contains("haproxy") && cmdline.contains(&*self.cfg().to_string_lossy()) && !zombie)
            .then_some(pid)
    }

    /// Writes `config` and makes the running HAProxy use it: started if none runs, else
    /// reloaded without dropping connections (nothing is done when the text is unchanged and
    /// HAProxy runs).
    pub fn apply(&self, ns: &NetNs, config: &str) -> Result<(), ProcessError> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let cfg = self.cfg();
        let running = self.master_pid();
        if running.is_some() && std::fs::read_to_string(&cfg).ok().as_deref() == Some(config) {
            return Ok(());
        }
        let next = self.dir.join("haproxy.cfg.next");
        std::fs::write(&next, config).map_err(io(&next))?;
        self.check(ns, &next)?;
        std::fs::rename(&next, &cfg).map_err(io(&cfg))?;
        match running {
            Some(_) => {
                self.save_server_state();
                self.master_command("reload")?;
                Ok(())
            }
            None => self.start(ns),
        }
    }

    fn check(&self, ns: &NetNs, cfg: &Path) -> Result<(), ProcessError> {
        let out = ns
            .command("haproxy")
            .args(["-c", "-q", "-f"])
            .arg(cfg)
            .output()
            .map_err(ProcessError::Spawn)?;
        if out.status.success() {
            return Ok(());
        }
        Err(ProcessError::Refused {
            what: "the configuration",
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }

    fn start(&self, ns: &NetNs) -> Result<(), ProcessError> {
        let _ = std::fs::remove_file(self.dir.join("master.sock"));
        let out = ns
            .command("haproxy")
            .args(["-W", "-D", "-S"])
            .arg(self.dir.join("master.sock"))
            .arg("-p")
            .arg(self.dir.join("haproxy.pid"))
            .arg("-f")
            .arg(self.cfg())
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(ProcessError::Spawn)?;
        if !out.status.success() {
            return Err(ProcessError::Refused {
                what: "to start",
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        tracing::info!(dir = %self.dir.display(), "haproxy started");
        Ok(())
    }

    /// Saves the servers' state for the next worker; a worker that does not answer leaves
    /// none (servers then start as HAProxy starts them).
    fn save_server_state(&self) {
        let path = self.dir.join("servers.state");
        match self.stats_command("show servers state") {
            Ok(text) => {
                if let Err(e) = std::fs::write(&path, text) {
                    tracing::warn!(error = %e, "cannot save haproxy's server state");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read haproxy's server state"),
        }
    }

    /// Sends a command to the master CLI; gives its answer.
    pub fn master_command(&self, command: &str) -> Result<String, ProcessError> {
        ask(&self.dir.join("master.sock"), command).map_err(|source| ProcessError::Socket {
            socket: "master socket",
            source,
        })
    }

    /// Sends a command to the worker's runtime API; gives its answer.
    pub fn stats_command(&self, command: &str) -> Result<String, ProcessError> {
        ask(&self.dir.join("stats.sock"), command).map_err(|source| ProcessError::Socket {
            socket: "stats socket",
            source,
        })
    }

    /// Stops HAProxy: its worker finishes the connections it has (soft stop) and its
    /// directory goes.
    pub fn stop(&self) -> Result<(), ProcessError> {
        if let Some(pid) = self.master_pid() {
            // SAFETY: kill(2) on the master process this directory's pid file names, whose
            // command line was just checked to be this load balancer's HAProxy.
            unsafe {
                libc::kill(pid, libc::SIGUSR1);
            }
        }
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&self.dir)(e)),
            _ => Ok(()),
        }
    }
}

/// One command on a Unix socket of HAProxy's CLI: the whole answer, read until it closes.
fn ask(socket: &Path, command: &str) -> std::io::Result<String> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("{command}\n").as_bytes())?;
    let mut out = Vec::new();
    s.take(16 << 20).read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
