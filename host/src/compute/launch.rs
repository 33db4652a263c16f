//! Launching instances and running their VMMs: RunInstances, spawning, confirming that a
//! VMM is up, and deciding what a VMM's exit means for its instance.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::catalog::InstanceType;
use super::recovery::Step;
use super::supervisor::{self, ExitReason};
use super::{Compute, user_initiated};
use crate::network::addressing::{self, AddressError, NewEni};
use state::enis::{self, MetadataOptionsRow};
use state::images::ImageRow;
use state::instances::{self, InstanceRow, InstanceState, StateUpdate};
use state::vpcs::SubnetRow;
use state::{new_id, now_iso, tags};

/// What every instance of a RunInstances call is: its type, how many, its key, user data,
/// shutdown behaviour, idempotency token, tags and hibernation.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// The instance type.
    pub instance_type: &'static InstanceType,
    /// Launch at least this many...
    pub min_count: u32,
    /// ...and at most this many.
    pub max_count: u32,
    /// Key pair name.
    pub key_name: Option<String>,
    /// Base64 user data.
    pub user_data: Option<String>,
    /// `stop` or `terminate`.
    pub shutdown_behavior: String,
    /// Idempotency token.
    pub client_token: Option<String>,
    /// Tags for the instances.
    pub tags: Vec<(String, String)>,
    /// Tags for the volumes made at launch (`TagSpecification` of type `volume`).
    pub volume_tags: Vec<(String, String)>,
    /// Tags for the primary network interfaces (type `network-interface`).
    pub eni_tags: Vec<(String, String)>,
    /// `HibernationOptions.Configured`.
    pub hibernation: bool,
    /// `Monitoring.Enabled`: detailed (1-minute) monitoring.
    pub detailed_monitoring: bool,
}

/// A validated RunInstances request.
#[derive(Debug, Clone)]
pub struct LaunchRequest {
    /// The image to boot.
    pub image: ImageRow,
    /// What each instance is.
    pub spec: LaunchSpec,
    /// EBS: the volumes each instance gets (root first).
    pub volumes: Vec<super::disks::LaunchVolume>,
    /// Their primary network interfaces and metadata options.
    pub network: NetworkRequest,
}

/// The network of each instance of a RunInstances call, resolved and checked.
#[derive(Debug, Clone)]
pub struct NetworkRequest {
    /// The subnet of the primary ENI.
    pub subnet: SubnetRow,
    /// Its security groups (1 to 5, all in the subnet's VPC).
    pub group_ids: Vec<String>,
    /// A chosen private address (only with one instance).
    pub private_ip: Option<std::net::Ipv4Addr>,
    /// Gets a public address while running.
    pub wants_public_ip: bool,
    /// `MetadataOptions`.
    pub metadata: MetadataOptionsRow,
}

/// Errors of RunInstances.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// Not even `MinCount` instances fit in the host's budgets.
    #[error(
        "There is not enough capacity for {wanted} {kind} instance(s): {free_vcpus} vCPUs and \
         {free_mib} MiB are free on this host."
    )]
    Capacity {
        /// MinCount.
        wanted: u32,
        /// The type.
        kind: &'static str,
        /// vCPUs left.
        free_vcpus: u64,
        /// MiB left.
        free_mib: u64,
    },
    /// The client token was used before with other parameters.
    #[error(
        "The client token '{0}' was used before with different parameters (image, instance \
         type, key name or count)."
    )]
    TokenMismatch(String),
    /// No private address could be given.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// The public pool has fewer free addresses than MinCount instances need.
    #[error(
        "There are not enough free public addresses for {wanted} instance(s): {free} are left \
         in the pool {pool}."
    )]
    PublicAddresses {
        /// MinCount.
        wanted: u32,
        /// Free addresses.
        free: u64,
        /// The pool.
        pool: crate::network::cidr::Cidr,
    },
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Compute {
    /// Records the instances (pending) and starts their VMMs; with a known client token,
    /// returns the instances of the first call instead.
    pub fn launch(self: &Arc<Self>, req: &LaunchRequest) -> Result<Vec<InstanceRow>, LaunchError> {
        let rows = {
            let mut conn = self.db.lock();
            let tx = conn.transaction()?;
            if let Some(token) = &req.spec.client_token {
                let earlier = instances::by_client_token(&tx, token)?;
                if let Some(first) = earlier.first() {
                    let n = earlier.len() as u32;
                    let same = first.image_id == req.image.id
                        && first.instance_type == req.spec.instance_type.name
                        && first.key_name == req.spec.key_name
                        && (req.spec.min_count..=req.spec.max_count).contains(&n);
                    if !same {
                        return Err(LaunchError::TokenMismatch(token.clone()));
                    }
                    return Ok(earlier);
                }
            }
            let used = instances::used_capacity(&tx)?;
            let t = req.spec.instance_type;
            let mut count = req.spec.max_count;
            while count >= req.spec.min_count
                && !self.config.capacity.fits(
                    used,
                    (
                        u64::from(t.vcpus) * u64::from(count),
                        t.memory_mib * u64::from(count),
                    ),
                )
            {
                count -= 1;
            }
            if count < req.spec.min_count || count == 0 {
                return Err(LaunchError::Capacity {
                    wanted: req.spec.min_count,
                    kind: t.name,
                    free_vcpus: self.config.capacity.vcpus.saturating_sub(used.0),
                    free_mib: self.config.capacity.memory_mib.saturating_sub(used.1),
                });
            }
            // Public addresses are taken now, in the launch's transaction, so that a launch the
            // pool cannot serve is refused up front rather than failing at the start.
            let pool = &self.network.config.public_pool;
            let mut public_ips = Vec::new();
            if req.network.wants_public_ip {
                public_ips = addressing::free_public_ips(&tx, pool, count as usize)?;
                count = count.min(public_ips.len() as u32);
                if count < req.spec.min_count || count == 0 {
                    return Err(LaunchError::PublicAddresses {
                        wanted: req.spec.min_count,
                        free: public_ips.len() as u64,
                        pool: *pool,
                    });
                }
            }
            let reservation_id = new_id("r");
            let launch_time = now_iso();
            let mut rows = Vec::new();
            for index in 0..count {
                let row = InstanceRow {
                    seq: 0,
                    id: new_id("i"),
                    reservation_id: reservation_id.clone(),
                    launch_index: index,
                    image_id: req.image.id.clone(),
                    instance_type: t.name.to_string(),
                    key_name: req.spec.key_name.clone(),
                    state: InstanceState::Pending,
                    state_reason_code: Some("pending".into()),
                    state_reason_message: Some("pending".into()),
                    transition_reason: String::new(),
                    launch_time: launch_time.clone(),
                    user_data: req.spec.user_data.clone(),
                    shutdown_behavior: req.spec.shutdown_behavior.clone(),
                    client_token: req.spec.client_token.clone(),
                    vcpus: t.vcpus,
                    memory_mib: t.memory_mib,
                    kernel: req.image.kernel.clone(),
                    initrd: req.image.initrd.clone(),
                    boot_args: req.image.boot_args.clone(),
                    entry: req.image.entry.clone(),
                    architecture: req.image.architecture.clone(),
                    pid: None,
                    pid_start: None,
                    rebooting: false,
                    terminated_at: None,
                    detailed_monitoring: req.spec.detailed_monitoring,
                };
                instances::insert(&tx, &row)?;
                tags::put(&tx, &row.id, &req.spec.tags)?;
                let net = &req.network;
                let eni = addressing::create_eni(
                    &tx,
                    &NewEni {
                        subnet: &net.subnet,
                        group_ids: &net.group_ids,
                        private_ip: net.private_ip,
                        description: "Primary network interface".into(),
                        attach: Some((&row.id, 0, true)),
                        wants_public_ip: net.wants_public_ip,
                    },
                )?;
                if let Some(ip) = public_ips.get(index as usize) {
                    enis::set_public_ip(&tx, &eni.id, Some(&ip.to_string()))?;
                }
                if !req.spec.eni_tags.is_empty() {
                    tags::put(&tx, &eni.id, &req.spec.eni_tags)?;
                }
                enis::set_metadata_options(&tx, &row.id, &net.metadata)?;
                if req.spec.hibernation {
                    state::hibernation::set_configured(&tx, &row.id, true)?;
                }
                for volume in super::disks::insert_launch_volumes(&tx, &row.id, &req.volumes)? {
                    if !req.spec.volume_tags.is_empty() {
                        tags::put(&tx, &volume, &req.spec.volume_tags)?;
                    }
                }
                rows.push(row);
            }
            tx.commit()?;
            rows
        };
        tracing::info!(count = rows.len(), reservation = %rows[0].reservation_id, "launching");
        for row in &rows {
            self.supervise(&row.id, Step::Start, self.clone().start_vmm(row.id.clone()));
        }
        Ok(rows)
    }

    /// Spawns the VMM of a pending instance (or of a running one between reboots). Boxed,
    /// because start -> monitor -> exit -> start is a cycle of futures.
    pub(super) fn start_vmm(
        self: Arc<Self>,
        id: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(self.start_vmm_now(id))
    }

    async fn start_vmm_now(self: Arc<Self>, id: String) {
        let _g = self.guard(&id).await;
        let row = match instances::get(&self.db.lock(), &id) {
            Ok(Some(row)) => row,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(%id, error = %e, "cannot read instance");
                return;
            }
        };
        let wanted = matches!(row.state, InstanceState::Pending | InstanceState::Running);
        if !wanted || row.pid.is_some() {
            return;
        }
        let dir = self.dir(&id);
        let spawned = match self.network.plug(&id).await {
            Ok(nets) => {
                let net_args: Vec<String> = nets
                    .into_iter()
                    .flat_map(|n| ["--net".to_owned(), n])
                    .collect();
                match self.network.config.netns.file() {
                    Ok(ns) => self
                        .spawn_with_disks(&dir, &row, net_args, ns, self.resume_file(&id))
                        .await
                        .map_err(|e| crate::error_chain(&e)),
                    Err(e) => Err(crate::error_chain(&e)),
                }
            }
            Err(e) => Err(crate::error_chain(&e)),
        };
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                tracing::error!(%id, error = %e, "cannot start vmm");
                let update = StateUpdate {
                    reason: Some((
                        "Server.InternalError".into(),
                        format!("Server.InternalError: {e}"),
                    )),
                    transition_reason: Some("Server.InternalError".into()),
                };
                let _ = instances::set_state(&self.db.lock(), &id, InstanceState::Stopped, &update);
                self.release_network(&id).await;
                return;
            }
        };
        let pid = child.id() as i32;
        let start = supervisor::start_time(pid).unwrap_or(0);
        if let Err(e) = instances::set_pid(&self.db.lock(), &id, Some((pid, start))) {
            tracing::error!(%id, error = %e, "cannot record the vmm pid");
        }
        tracing::info!(%id, pid, "vmm started");
        let watch = self.clone().monitor(id.clone(), pid, Some(child));
        self.supervise(&id, Step::Watch(pid), watch);
        self.supervise(
            &id,
            Step::Confirm,
            self.clone().confirm_running(id.clone(), pid),
        );
    }

    /// Waits for the VMM `pid` to exit (reaping it if it is our child), then handles the exit.
    pub(super) async fn monitor(
        self: Arc<Self>,
        id: String,
        pid: i32,
        child: Option<std::process::Child>,
    ) {
        supervisor::wait_exit(pid).await;
        if let Some(mut child) = child {
            let status = tokio::task::spawn_blocking(move || child.wait()).await;
            if let Ok(Ok(status)) = status {
                self.record_signal_exit(&id, status);
            }
        }
        self.on_exit(&id, pid).await;
    }

    /// Marks instance `id` running if it is still pending on VMM `pid` (whose control socket
    /// has answered).
    pub(super) async fn promote_to_running(&self, id: &str, pid: i32) {
        let _g = self.guard(id).await;
        let conn = self.db.lock();
        if let Ok(Some(row)) = instances::get(&conn, id)
            && row.pid == Some(pid)
            && row.state == InstanceState::Pending
        {
            let _ =
                instances::set_state(&conn, id, InstanceState::Running, &StateUpdate::default());
            tracing::info!(%id, "running");
            drop(conn);
            self.resumed(id);
        }
    }

    /// Promotes a pending instance to running once its VMM answers on the control socket.
    async fn confirm_running(self: Arc<Self>, id: String, pid: i32) {
        let sock = self.dir(&id).api_sock();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if supervisor::start_time(pid).is_none() {
                return; // it exited: the monitor reports why
            }
            if supervisor::control(&sock, "status").await.is_ok() {
                self.promote_to_running(&id, pid).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::warn!(%id, pid, "vmm never answered on its control socket: killing it");
        supervisor::kill_group(pid);
    }

    /// Records what the exit of VMM `pid` means for instance `id`, restarting it for a reboot.
    pub(super) async fn on_exit(self: &Arc<Self>, id: &str, pid: i32) {
        let g = self.guard(id).await;
        let current = instances::get(&self.db.lock(), id)
            .ok()
            .flatten()
            .is_some_and(|row| row.pid == Some(pid));
        if !current {
            return;
        }
        self.release_cgroup(id);
        let reason = ExitReason::from_file(&self.dir(id).vmm_log());
        let respawn = {
            let conn = self.db.lock();
            let row = match instances::get(&conn, id) {
                Ok(Some(row)) if row.pid == Some(pid) => row,
                _ => return,
            };
            let decision = decide(&row, &reason);
            tracing::info!(%id, pid, ?reason, next = decision.0.map(|s| s.name()), "vmm exited");
            match decision {
                (Some(state), update) => {
                    if matches!(state, InstanceState::Stopped | InstanceState::Terminated)
                        && let Err(e) = self.network.release_in_db(
                            &conn,
                            id,
                            state == InstanceState::Terminated,
                        )
                    {
                        tracing::error!(%id, error = %e, "cannot release public addresses");
                    }
                    if let Err(e) = instances::set_state(&conn, id, state, &update) {
                        tracing::error!(%id, error = %e, "cannot record the exit");
                    }
                    false
                }
                (None, _) => {
                    let _ = instances::set_pid(&conn, id, None);
                    let _ = instances::set_rebooting(&conn, id, false);
                    true
                }
            }
        };
        if !respawn {
            self.release_network(id).await;
        }
        drop(g);
        if respawn {
            self.supervise(id, Step::Start, self.clone().start_vmm(id.to_string()));
        }
    }
}

fn failure(code: &str, message: String) -> StateUpdate {
    StateUpdate {
        reason: Some((code.to_string(), format!("{code}: {message}"))),
        transition_reason: Some(format!(
            "{code} ({})",
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S GMT")
        )),
    }
}

/// What a VMM exit means: the new state and its reasons, or `None` to restart the VMM.
pub fn decide(row: &InstanceRow, reason: &ExitReason) -> (Option<InstanceState>, StateUpdate) {
    let keep = StateUpdate {
        reason: match (&row.state_reason_code, &row.state_reason_message) {
            (Some(c), Some(m)) => Some((c.clone(), m.clone())),
            _ => None,
        },
        transition_reason: None,
    };
    match row.state {
        InstanceState::Stopping => (Some(InstanceState::Stopped), keep),
        InstanceState::ShuttingDown => (Some(InstanceState::Terminated), keep),
        InstanceState::Stopped | InstanceState::Terminated => (Some(row.state), keep),
        InstanceState::Pending | InstanceState::Running => {
            if row.rebooting || *reason == ExitReason::Reset {
                return (None, keep);
            }
            match reason {
                ExitReason::PoweredOff(status) => {
                    let state = if row.shutdown_behavior == "terminate" {
                        InstanceState::Terminated
                    } else {
                        InstanceState::Stopped
                    };
                    let mut u = failure(
                        "Client.InstanceInitiatedShutdown",
                        format!("Instance initiated shutdown (power-off status {status})"),
                    );
                    u.transition_reason = Some(user_initiated().replace("User", "Instance"));
                    (Some(state), u)
                }
                ExitReason::StoppedByApi => (
                    Some(InstanceState::Stopped),
                    failure(
                        "Client.UserInitiatedShutdown",
                        "stopped through the vmm control socket".into(),
                    ),
                ),
                ExitReason::Crashed(m) => (
                    Some(InstanceState::Stopped),
                    failure("Server.InternalError", format!("vmm: exit: {m}")),
                ),
                ExitReason::BootFailed(m) => (
                    Some(InstanceState::Stopped),
                    failure(
                        "Server.InternalError",
                        format!("the vmm failed to boot: {m}"),
                    ),
                ),
                ExitReason::Vanished => (
                    Some(InstanceState::Stopped),
                    failure(
                        "Server.InternalError",
                        "the vmm process ended without an exit line (killed)".into(),
                    ),
                ),
                ExitReason::Reset => (None, keep),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: InstanceState, behavior: &str) -> InstanceRow {
        InstanceRow {
            seq: 1,
            state_reason_code: Some("Client.UserInitiatedShutdown".into()),
            state_reason_message: Some(
                "Client.UserInitiatedShutdown: User initiated shutdown".into(),
            ),
            shutdown_behavior: behavior.into(),
            pid: Some(1),
            pid_start: Some(1),
            ..InstanceRow::example("i-0", state)
        }
    }

    fn code(u: &StateUpdate) -> &str {
        u.reason.as_ref().map_or("", |r| r.0.as_str())
    }

    #[test]
    fn exits_map_to_states_and_reasons() {
        use InstanceState::*;
        let off = ExitReason::PoweredOff(0);
        let (s, u) = decide(&row(Stopping, "stop"), &ExitReason::StoppedByApi);
        assert_eq!(
            (s, code(&u)),
            (Some(Stopped), "Client.UserInitiatedShutdown")
        );
        let (s, _) = decide(&row(ShuttingDown, "stop"), &off);
        assert_eq!(s, Some(Terminated));
        let (s, u) = decide(&row(Running, "stop"), &off);
        assert_eq!(
            (s, code(&u)),
            (Some(Stopped), "Client.InstanceInitiatedShutdown")
        );
        let (s, u) = decide(&row(Running, "terminate"), &off);
        assert_eq!(
            (s, code(&u)),
            (Some(Terminated), "Client.InstanceInitiatedShutdown")
        );
        assert_eq!(decide(&row(Running, "stop"), &ExitReason::Reset).0, None);
        let mut rebooting = row(Running, "stop");
        rebooting.rebooting = true;
        assert_eq!(
            decide(&rebooting, &off).0,
            None,
            "a reboot restarts the vmm"
        );
        let crash = ExitReason::Crashed("guest failure: triple fault".into());
        let (s, u) = decide(&row(Running, "terminate"), &crash);
        assert_eq!((s, code(&u)), (Some(Stopped), "Server.InternalError"));
        assert!(u.reason.unwrap().1.contains("guest failure: triple fault"));
        let (s, u) = decide(
            &row(Pending, "stop"),
            &ExitReason::BootFailed("bad kernel".into()),
        );
        assert_eq!((s, code(&u)), (Some(Stopped), "Server.InternalError"));
        let (s, u) = decide(&row(Running, "stop"), &ExitReason::Vanished);
        assert_eq!((s, code(&u)), (Some(Stopped), "Server.InternalError"));
    }
}
