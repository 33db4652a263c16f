//! The network namespace instance networking lives in: the agent's own by default, or a
//! named one (`ip netns add NAME`, `agent --netns NAME`) so that VPC bridges, taps, rules,
//! DHCP, metadata listeners and VMMs stay off the host's own network while the API stays on
//! the host's loopback.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;

/// Where instance networking lives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetNs(Option<String>);

/// Why a namespace cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NetNsError {
    /// It does not exist.
    #[error("network namespace {name} does not exist (make it with `ip netns add {name}`)")]
    Missing {
        /// The name.
        name: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Joining it failed.
    #[error("cannot enter network namespace {0}")]
    Enter(String, #[source] std::io::Error),
}

impl NetNs {
    /// The agent's own namespace.
    pub fn current() -> Self {
        NetNs(None)
    }

    /// The namespace `ip netns` knows as `name`; it must exist.
    pub fn named(name: &str) -> Result<Self, NetNsError> {
        let ns = NetNs(Some(name.to_owned()));
        ns.file()?;
        Ok(ns)
    }

    /// Its name, if it is not the agent's own.
    pub fn name(&self) -> Option<&str> {
        self.0.as_deref()
    }

    fn path(name: &str) -> PathBuf {
        PathBuf::from("/var/run/netns").join(name)
    }

    /// A handle on the namespace (`None` for the agent's own), for `setns(2)`.
    pub fn file(&self) -> Result<Option<File>, NetNsError> {
        match &self.0 {
            None => Ok(None),
            Some(name) => {
                File::open(Self::path(name))
                    .map(Some)
                    .map_err(|source| NetNsError::Missing {
                        name: name.clone(),
                        source,
                    })
            }
        }
    }

    /// A command that runs `program` in the namespace.
    pub fn command(&self, program: &str) -> Command {
        match &self.0 {
            None => Command::new(program),
            Some(name) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", name, program]);
                c
            }
        }
    }

    /// Runs `f` on a thread that has joined the namespace (sockets it makes belong there), or
    /// on this thread when the namespace is the agent's own.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, NetNsError> {
        let Some(file) = self.file()? else {
            return Ok(f());
        };
        let name = self.0.clone().unwrap_or_default();
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    enter(&file).map_err(|e| NetNsError::Enter(name, e))?;
                    Ok(f())
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

/// Joins the calling thread (or, between fork and exec, process) to the namespace `file`.
pub fn enter(file: &File) -> std::io::Result<()> {
    // SAFETY: setns(2) with a namespace descriptor we hold open; it only changes the calling
    // thread's network namespace and is async-signal-safe.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
