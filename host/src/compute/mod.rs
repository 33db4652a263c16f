//! Compute: the instance catalog, host capacity, VMM supervision and the lifecycle.

pub mod capacity;
pub mod catalog;
pub mod cgroups;
pub mod disks;
pub mod freeze;
pub mod hibernate;
pub mod jail;
pub mod launch;
pub mod lifecycle;
pub mod reconcile;
pub mod recovery;
pub mod supervisor;
pub mod usage;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::network::Network;
use capacity::Capacity;
use cgroups::Cgroups;
use state::Db;
use state::instances::{self, InstanceState};
use supervisor::InstanceDir;

/// Settings of the compute service.
#[derive(Debug, Clone)]
pub struct ComputeConfig {
    /// The state directory (instance files live under `instances/`).
    pub state_dir: PathBuf,
    /// The `vmm` binary.
    pub vmm: PathBuf,
    /// Host budgets.
    pub capacity: Capacity,
    /// How long a graceful stop waits for the guest before killing the VMM.
    pub stop_timeout: Duration,
    /// How long terminated instances stay visible.
    pub terminated_retention: Duration,
    /// Whether VMMs install their seccomp allowlist (off only for debugging).
    pub seccomp: bool,
    /// Whether VMMs are jailed and put in cgroups (off only for debugging and benchmarks).
    pub jail: bool,
}

/// The compute service: owns every instance's VMM and every lifecycle transition.
#[derive(Debug)]
pub struct Compute {
    /// The state database.
    pub db: Arc<Db>,
    /// Settings.
    pub config: ComputeConfig,
    /// The network service (ENIs are plugged before a VMM starts, unplugged after it ends).
    pub network: Arc<Network>,
    /// Where each VMM's cgroup is made.
    pub cgroups: Cgroups,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// One instance's state change, as Start/Stop/TerminateInstances report it.
#[derive(Debug, Clone)]
pub struct StateChange {
    /// The instance.
    pub id: String,
    /// Its state before the call.
    pub previous: InstanceState,
    /// Its state after the call.
    pub current: InstanceState,
}

impl Compute {
    /// A compute service over `db`.
    pub fn new(
        db: Arc<Db>,
        config: ComputeConfig,
        network: Arc<Network>,
        cgroups: Cgroups,
    ) -> Arc<Self> {
        Arc::new(Self {
            db,
            config,
            network,
            cgroups,
            locks: Mutex::new(HashMap::new()),
        })
    }

    /// The files of instance `id`.
    pub fn dir(&self, id: &str) -> InstanceDir {
        InstanceDir::new(&self.config.state_dir, id)
    }

    /// Unplugs the network of instance `id` if it has ended (stopped or terminated); called
    /// with the instance's guard held.
    async fn release_network(&self, id: &str) {
        let state = instances::get(&self.db.lock(), id)
            .ok()
            .flatten()
            .map(|r| r.state);
        let terminated = match state {
            Some(InstanceState::Stopped) => false,
            Some(InstanceState::Terminated) => true,
            _ => return,
        };
        if let Err(e) = self.network.unplug(id, terminated).await {
            tracing::error!(%id, error = %crate::error_chain(&e), "cannot release the network");
        }
    }

    /// Serialises process-level work (spawn, signal, exit handling) on one instance.
    async fn guard(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(id.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// EC2's `StateTransitionReason` for a user action now.
pub fn user_initiated() -> String {
    format!(
        "User initiated ({})",
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S GMT")
    )
}
