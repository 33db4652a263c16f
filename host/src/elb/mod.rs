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
    /// Held while a HAProxy is started, reloaded or stopped, so that two callers never start
    /// two (both would bind the address, through SO_REUSEPORT).
    changing: std::sync::Mutex<()>,
}

impl Balancers {
    /// The load balancers under `state_dir`, run in `netns`.
    pub fn new(state_dir: &std::path::Path, netns: NetNs) -> Self {
        Balancers {
            root: state_dir.join("elb"),
            netns,
            changing: std::sync::Mutex::new(()),
        }
    }

    fn haproxy(&self, id: &str) -> Haproxy {
        Haproxy::new(self.root.join(id))
    }

    /// Makes load balancer `spec.id`'s HAProxy run `spec` (started, or reloaded hitlessly).
    pub fn apply(&self, spec: &LbSpec) -> Result<(), ProcessError> {
        let h = self.haproxy(&spec.id);
        let text = config::render(spec, h.dir());
        let _g = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        if h.apply(&self.netns, &text)? {
            tracing::info!(load_balancer = %spec.id, "haproxy runs a new configuration");
        }
        Ok(())
    }

    /// Stops load balancer `id`'s HAProxy (its connections finish) and removes its files.
    pub fn remove(&self, id: &str) -> Result<(), ProcessError> {
        let _g = self.changing.lock().unwrap_or_else(|e| e.into_inner());
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
                    .filter(|e| e.path().is_dir() && e.file_name() != "certificates")
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

    /// The PEM file (certificate chain and private key, as HAProxy's `crt` takes) that a
    /// certificate ARN names: `arn:aws:acm:REGION:ACCOUNT:certificate/NAME` is
    /// `<state-dir>/elb/certificates/NAME.pem`, which the operator puts there (NAME of
    /// letters, digits, `.`, `_`, `-`). `None` when the ARN is not of that form or the file
    /// is missing.
    pub fn certificate(&self, arn: &str) -> Option<PathBuf> {
        let (prefix, name) = arn.split_once(":certificate/")?;
        let fine = prefix.starts_with("arn:aws:acm:")
            && !name.is_empty()
            && name.len() <= 128
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !fine {
            return None;
        }
        let path = self.root.join("certificates").join(format!("{name}.pem"));
        path.is_file().then_some(path)
    }

    /// Load balancer `id`'s statistics now.
    pub fn stats(&self, id: &str) -> Result<Vec<StatRow>, ProcessError> {
        let text = self.haproxy(id).stats_command("show stat")?;
        Ok(stats::parse(&text))
    }
}
