//! Keeping every load balancer's HAProxy in line with the state: [`Plane::sync_load_balancer`]
//! (the effect `SyncLoadBalancer`), and the `load balancers` loop, which every two seconds
//! ends the draining of targets whose delay is over, starts again a HAProxy that died (or
//! that an agent restart left without one), and stops those of load balancers that are gone.

use std::sync::Arc;
use std::time::Duration;

use state::elbv2 as db;

use super::error::ElbError;
use super::{blocking, model, now_ms, plan};
use crate::Plane;

/// How often the loop looks.
pub const EVERY: Duration = Duration::from_secs(2);

/// Why a load balancer's HAProxy could not be brought in line.
#[derive(Debug, thiserror::Error)]
pub enum ElbSyncError {
    /// The state could not be read.
    #[error("cannot read the load balancer")]
    State(#[from] ElbError),
    /// HAProxy refused or could not be run.
    #[error("haproxy")]
    Haproxy(#[from] host::elb::ProcessError),
    /// The metrics store refused the observations.
    #[error("cannot record the load balancers' metrics: {0}")]
    Metrics(String),
}

impl From<rusqlite::Error> for ElbSyncError {
    fn from(e: rusqlite::Error) -> Self {
        ElbSyncError::State(e.into())
    }
}

impl Plane {
    /// Makes load balancer `arn`'s HAProxy run what the state describes (or stops it when
    /// the load balancer is gone), marks the load balancer `active`, and rewrites the hosts
    /// file of load balancers' names. Blocks.
    pub fn sync_load_balancer(&self, arn: &str) -> Result<(), ElbSyncError> {
        let (spec, hosts) = {
            let conn = self.db.lock();
            let lb = db::lb_by_arn(&conn, arn)?;
            let spec = match &lb {
                Some(lb) => plan::spec(&conn, lb, &|arn| {
                    self.elb.certificate(arn).map(|p| p.display().to_string())
                })?,
                None => None,
            };
            let hosts: Vec<(String, String)> = db::lbs(&conn)?
                .into_iter()
                .filter_map(|l| Some((l.public_ip?, l.dns_name)))
                .collect();
            (spec, hosts)
        };
        match spec {
            Some(spec) => {
                self.elb.apply(&spec)?;
                let conn = self.db.lock();
                db::set_lb_state(&conn, arn, "active")?;
            }
            None => self.elb.remove(model::arn_id(arn))?,
        }
        self.elb.write_hosts(&hosts)?;
        Ok(())
    }

    /// One round of the loop.
    pub fn supervise_load_balancers(&self) -> Result<(), ElbSyncError> {
        let ended = {
            let mut conn = self.db.lock();
            let tx = conn.transaction()?;
            let ended = db::targets::end_draining(&tx, now_ms())?;
            tx.commit()?;
            ended
        };
        if !ended.is_empty() {
            tracing::info!(target_groups = ended.len(), "targets done draining");
        }
        let lbs = db::lbs(&self.db.lock())?;
        // Every load balancer is brought in line: nothing is done for one whose HAProxy runs
        // what the state describes; one that died is started again, one whose last change was
        // lost is reloaded.
        for lb in &lbs {
            if !self.elb.running(model::arn_id(&lb.arn)) {
                tracing::info!(load_balancer = %lb.name, "starting haproxy");
            }
            if let Err(e) = self.sync_load_balancer(&lb.arn) {
                tracing::warn!(load_balancer = %lb.name, error = %host::error_chain(&e), "haproxy is not in line");
            }
        }
        for dir in self.elb.present() {
            let known = lbs.iter().any(|lb| model::arn_id(&lb.arn) == dir);
            if !known && dir != "hosts" {
                tracing::info!(%dir, "stopping the haproxy of a load balancer that is gone");
                self.elb.remove(&dir)?;
            }
        }
        Ok(())
    }
}

/// The loop (a unit of the agent).
pub async fn run(plane: Arc<Plane>) {
    let mut every = tokio::time::interval(EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = blocking(|| plane.supervise_load_balancers()) {
            tracing::warn!(error = %host::error_chain(&e), "load balancer supervision failed");
        }
    }
}
