//! Auto Scaling's domain, over the state database (`state::autoscaling`). One file per
//! concern:
//!
//! - `model.rs`: a group's settings, members' lifecycle states, the ARNs;
//! - `checks.rs`: the refusals ([`checks::ScalingError`], Auto Scaling's codes) and the
//!   checks the commands share;
//! - `groups.rs`, `instances.rs`, `policies.rs`, `scheduled.rs`: the commands, each a plain
//!   function over a connection;
//! - `activities.rs`: scaling activities and their causes in Auto Scaling's words;
//! - `termination.rs`: which instance a scale in takes and which subnet a launch goes to;
//! - `capacity.rs`: the policies' desired-capacity arithmetic; `policy_config.rs`: a
//!   policy's stored settings and their checks;
//! - `target_tracking.rs`: the alarms a target tracking policy owns;
//! - `alarm_actions.rs`: what an alarm naming a policy's ARN does;
//! - `cron.rs`: scheduled actions' recurrences in time zones;
//! - `forecast.rs`: predictive scaling's load and capacity forecast; `predictive.rs` its
//!   policy;
//! - `launch.rs`, `targets.rs`: the doors to launch templates and target groups;
//! - `reconciler.rs`: the loop that keeps every group at its desired capacity.

pub mod activities;
pub mod alarm_actions;
pub mod capacity;
pub mod checks;
pub mod cron;
pub mod forecast;
pub mod groups;
pub mod instances;
pub mod launch;
pub mod model;
pub mod policies;
pub mod policy_config;
pub mod predictive;
pub mod reconciler;
pub mod scheduled;
pub mod target_tracking;
pub mod targets;
pub mod termination;

use crate::Plane;

/// What the Auto Scaling side of the plane shares: the reconciler's wake-up and the
/// settings of the agent.
#[derive(Debug)]
pub struct Scaling {
    notify: tokio::sync::Notify,
    /// The period (seconds) of the alarms target tracking creates: 60 on AWS; shorter
    /// for tests (`--scaling-alarm-period`).
    pub alarm_period: i32,
}

impl Default for Scaling {
    fn default() -> Self {
        Self::new(60)
    }
}

impl Scaling {
    /// With target-tracking alarms of `alarm_period` seconds.
    pub fn new(alarm_period: i32) -> Self {
        Self {
            notify: tokio::sync::Notify::new(),
            alarm_period,
        }
    }

    /// Tells the reconciler there is work (kept until it next waits).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Waits to be woken.
    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}

impl Plane {
    /// Runs an Auto Scaling command in one transaction (all it wrote, or nothing when it
    /// fails) and wakes the reconciler when it succeeds.
    pub fn asg_write<T, E: From<rusqlite::Error>>(
        &self,
        body: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let value = {
            let mut conn = self.db.lock();
            let tx = conn.transaction()?;
            let value = body(&tx)?;
            tx.commit()?;
            value
        };
        self.autoscaling.wake();
        Ok(value)
    }
}
