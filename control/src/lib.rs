//! kec2's control plane. Per service, each change is a typed command that flows one way:
//! its checks, then one database transaction that records the new state together with the
//! effects the host side must apply ([`effects::Effect`]), then the effects applied, then the
//! state confirmed (the effect struck from the journal). Effects a crash left in the journal
//! are applied at the next start ([`Plane::replay`]).
//!
//! Commands and outcomes are this crate's own types: no protocol, shape or HTTP notion
//! reaches here, and every refusal is an error enum whose [`Refusal::code`] is the AWS code
//! an API gives it.

pub mod autoscaling;
pub mod ec2;
pub mod effects;
pub mod elbv2;
pub mod monitoring;
mod refusal;
pub mod sns;

use std::sync::Arc;

use host::compute::Compute;
use host::ebs::Storage;
use host::network::Network;
use state::Db;

pub use refusal::Refusal;

/// Everything a command needs: the state and the host's data planes.
#[derive(Debug)]
pub struct Plane {
    /// The state database.
    pub db: Arc<Db>,
    /// Instances and their vmm processes.
    pub compute: Arc<Compute>,
    /// Bridges, taps, the firewall.
    pub network: Arc<Network>,
    /// Volume files and the chunk store.
    pub storage: Arc<Storage>,
    /// The 12-digit account id resources are owned by.
    pub account_id: String,
    /// CloudWatch's metrics and dashboards, in their own database.
    pub metrics: Arc<state::metrics::MetricsStore>,
    /// The latest status checks of running instances (the sampler's).
    pub health: Arc<monitoring::status_checks::StatusBoard>,
    /// Wakes SNS's delivery loop when a delivery is put in the outbox.
    pub sns: Arc<sns::Notifier>,
    /// Auto Scaling's reconciler wake-up and settings.
    pub autoscaling: Arc<autoscaling::Scaling>,
    /// The load balancers' HAProxies.
    pub elb: Arc<host::elb::Balancers>,
    /// Targets' last settled health, kept across HAProxy's reloads.
    pub elb_health: Arc<elbv2::HealthMemory>,
    /// The plane itself (made with `Arc::new_cyclic`), for work it starts in the background.
    pub me: std::sync::Weak<Plane>,
    /// What runs an alarm action naming an Auto Scaling policy: Auto Scaling's
    /// [`autoscaling::alarm_actions::on_alarm`], given here so that alarms need not know
    /// Auto Scaling (which builds on alarms); without one such actions fail.
    pub scaling_alarm_action: Option<monitoring::alarms::actions::ScalingActionRunner>,
}

/// What a transaction gives back: its result and the effects it recorded.
#[derive(Debug)]
pub struct Committed<T> {
    /// What the transaction produced.
    pub value: T,
    /// The effects recorded with it, to apply now.
    pub effects: Vec<effects::Recorded>,
}

impl Plane {
    /// Runs `body` in one transaction; commits the state it wrote and the effects it asks
    /// for together, or nothing when it fails.
    pub fn transact<T, E>(
        &self,
        body: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(T, Vec<effects::Effect>), E>,
    ) -> Result<Committed<T>, E>
    where
        E: From<rusqlite::Error>,
    {
        let mut conn = self.db.lock();
        let tx = conn.transaction()?;
        let (value, wanted) = body(&tx)?;
        let effects = effects::record(&tx, wanted)?;
        tx.commit()?;
        Ok(Committed { value, effects })
    }
}
