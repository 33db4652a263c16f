//! Elastic Load Balancing v2's domain over the state database (`state::elbv2`), with one
//! HAProxy per load balancer as its data plane (`host::elb`). One file per concern:
//!
//! - `model.rs`: the stored parts (health checks, actions, conditions, attributes) and the
//!   ARNs;
//! - `error.rs`: the refusals, with ELB's codes;
//! - `target_groups.rs`, `targets.rs`, `load_balancers.rs`, `listeners.rs`, `rules.rs`,
//!   `tags.rs`: the commands, each checking, then writing in one transaction that records
//!   the effect [`crate::effects::Effect::SyncLoadBalancer`] of every load balancer it
//!   changes;
//! - `health.rs`: a target's state and reason from HAProxy's checks;
//! - `plan.rs`: a load balancer's HAProxy description from the state;
//! - `supervisor.rs`: the loop that restarts a HAProxy that died, ends draining and drops
//!   what no load balancer owns; `metrics.rs`: `AWS/ApplicationELB` and `AWS/NetworkELB`
//!   from HAProxy's counters.
//!
//! Commands are synchronous: the effects they record are applied in the background right
//! after the commit (and at the next start if the agent stops first), so HAProxy follows a
//! change within moments of its answer, as ELB's data plane does.

pub mod error;
pub mod health;
pub mod listeners;
pub mod load_balancers;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod rules;
pub mod supervisor;
pub mod tags;
pub mod target_groups;
pub mod targets;
mod write;

use std::collections::HashMap;
use std::sync::Mutex;

pub use error::ElbError;
pub use health::{TargetHealthRow, TargetState};
pub use supervisor::ElbSyncError;
pub use targets::{DeregisterTargetsError, RegisterTargetsError, TargetHealthError, TargetRef};

/// What the agent remembers of targets' health between HAProxy's reloads (a reloaded worker
/// reports every server unchecked until its next check): the last settled state per load
/// balancer, target group and server.
#[derive(Debug, Default)]
pub struct HealthMemory(Mutex<HashMap<(String, String, String), TargetState>>);

impl HealthMemory {
    fn get(&self, key: &(String, String, String)) -> Option<TargetState> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
    }

    /// Forgets what was seen of `server` in target group `tg` (a target registered again
    /// starts with its initial checks).
    fn forget(&self, tg: &str, server: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(_, t, s), _| !(t == tg && s == server));
    }

    fn put(&self, key: (String, String, String), state: TargetState) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, state);
    }
}

/// Runs blocking work (HAProxy's files and sockets) off the runtime's async threads when
/// called on one of them.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
