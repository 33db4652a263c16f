//! Elastic Load Balancing's data plane: one HAProxy per load balancer (`process.rs`), its
//! configuration rendered from an [`LbSpec`] (`spec.rs`, `config.rs`), its statistics read
//! from its runtime API (`stats.rs`). HAProxy runs in the agent's network namespace, where
//! the load balancer's public address sits on the public side and its interfaces' private
//! addresses on the VPC bridges (`network::service`), so that it binds the one and connects
//! to targets from the others.
//!
//! Every call here blocks (files, sockets, `haproxy` runs): call from blocking code.

pub mod config;
pub mod process;
pub mod spec;
pub mod stats;

use std::path::PathBuf;

use crate::netns::NetNs;

pub use process::{Haproxy, ProcessError};
pub use spec::{ActionSpec, BackendSpec, CheckSpec, LbSpec, ListenerSpec, RuleSpec, ServerSpec};
pub use stats::StatRow;

/// Every load balancer's HAProxy under `<state-dir>/elb/`.
#[derive(Debug)]
pub struct Balancers {
    root: PathBuf,
    netns: NetNs,
}

impl Balancers {
    /// The load balancers under `state_dir`, run in `netns`.
    pub fn new(state_dir: &std::path::Path, netns: NetNs) -> Self {
        Balancers {
            root: state_dir.join("elb"),
            netns,
        }
    }

    fn haproxy(&self, id: &str) -> Haproxy {
        Haproxy::new(self.root.join(id))
    }

    /// Makes load balancer `spec.id`'s HAProxy run `spec` (started, or reloaded hitlessly).
    pub fn apply(&self, spec: &LbSpec) -> Result<(), ProcessError> {
        let h = self.haproxy(&spec.id);
        let text = config::render(spec, h.dir());
        h.apply(&self.netns, &text)
    }

    /// Stops load balancer `id`'s HAProxy (its connections finish) and removes its files.
    pub fn remove(&self, id: &str) -> Result<(), ProcessError> {
        self.haproxy(id).stop()
    }

    /// Whether load balancer `id`'s HAProxy runs.
    pub fn running(&self, id: &str) -> bool {
        self.haproxy(id).master_pid().is_some()
    }

    /// The ids of the load balancers that have a directory (running or not).
    pub fn present(&self) -> Vec<String> {
        std::fs::read_dir(&self.root)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().is_dir())
                    .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Writes `<state-dir>/elb/hosts`: one `ADDRESS NAME` line per load balancer, for
    /// resolvers that read a hosts file (`curl --resolve`, `HOSTALIASES`-style tools, tests).
    pub fn write_hosts(&self, entries: &[(String, String)]) -> Result<(), ProcessError> {
        std::fs::create_dir_all(&self.root).map_err(|source| ProcessError::Io {
            path: self.root.display().to_string(),
            source,
        })?;
        let text: String = entries
            .iter()
            .map(|(ip, name)| format!("{ip} {name}\n"))
            .collect();
        let path = self.root.join("hosts");
        let tmp = self.root.join("hosts.tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| ProcessError::Io {
                path: path.display().to_string(),
                source,
            })
    }

    /// Load balancer `id`'s statistics now.
    pub fn stats(&self, id: &str) -> Result<Vec<StatRow>, ProcessError> {
        let text = self.haproxy(id).stats_command("show stat")?;
        Ok(stats::parse(&text))
    }
}
