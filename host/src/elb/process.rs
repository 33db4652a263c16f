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
    /// HAProxy runs). Gives whether a new worker took it.
    pub fn apply(&self, ns: &NetNs, config: &str) -> Result<bool, ProcessError> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let cfg = self.cfg();
        let applied = self.dir.join("haproxy.cfg.applied");
        let running = self.master_pid();
        if running.is_some() && std::fs::read_to_string(&applied).ok().as_deref() == Some(config) {
            return Ok(false);
        }
        let _ = std::fs::remove_file(&applied);
        let next = self.dir.join("haproxy.cfg.next");
        std::fs::write(&next, config).map_err(io(&next))?;
        self.check(ns, &next)?;
        std::fs::rename(&next, &cfg).map_err(io(&cfg))?;
        match running {
            Some(_) => self.reload()?,
            None => self.start(ns)?,
        }
        // Only a configuration a worker took counts as applied: one that a reload lost is
        // applied again by the next call (the supervisor's, within seconds).
        std::fs::write(&applied, config).map_err(io(&applied))?;
        Ok(true)
    }

    /// Reloads: the servers' state saved, the master told, then waits (at most 10 s) for a
    /// new worker.
    fn reload(&self) -> Result<(), ProcessError> {
        self.save_server_state();
        let before = self.current_worker();
        self.master_command("reload")?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            let now = self.current_worker();
            if now.is_some() && now != before {
                return Ok(());
            }
        }
        Err(ProcessError::Refused {
            what: "to reload",
            stderr: "no new worker within 10 s".into(),
        })
    }

    /// The pid of the worker serving now, from the master's `show proc`.
    pub fn current_worker(&self) -> Option<i32> {
        let text = self.master_command("show proc").ok()?;
        current_worker(&text)
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
        // The master CLI keeps a connection open after a command unless told to quit.
        ask(&self.dir.join("master.sock"), &format!("{command}; quit")).map_err(|source| {
            ProcessError::Socket {
                socket: "master socket",
                source,
            }
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

/// The first worker of `show proc`'s `# workers` section.
fn current_worker(show_proc: &str) -> Option<i32> {
    show_proc
        .lines()
        .skip_while(|l| !l.starts_with("# workers"))
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .and_then(|p| p.parse().ok())
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_current_worker_is_the_first_of_its_section() {
        let text = "#<PID>          <type>          <reloads>       <uptime>        <version>\n\
                    100             master          2 [failed: 0]   0d00h00m09s     2.6.12\n\
                    # workers\n\
                    205             worker          0               0d00h00m01s     2.6.12\n\
                    # old workers\n\
                    150             worker          1               0d00h00m05s     2.6.12\n";
        assert_eq!(super::current_worker(text), Some(205));
        assert_eq!(super::current_worker("# workers\n"), None);
    }
}
