//! User-driven transitions: StopInstances, StartInstances, RebootInstances and
//! TerminateInstances. Each validates every id first (bad input changes nothing), writes the
//! new state, then acts on the VMM.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::recovery::Step;
use super::supervisor;
use super::{Compute, StateChange, user_initiated};
use crate::network::addressing::AddressError;
use state::instances::{self, InstanceRow, InstanceState, StateUpdate};

/// Errors of the state-changing actions.
#[derive(Debug, thiserror::Error)]
pub enum ChangeStateError {
    /// Some ids do not exist.
    #[error("The instance ID{} '{}' do{} not exist", if .0.len() > 1 { "s" } else { "" }, .0.join("', '"), if .0.len() > 1 { "" } else { "es" })]
    NotFound(Vec<String>),
    /// An instance is in a state the action does not apply to.
    #[error("The instance '{id}' is not in a state from which it can be {action}.")]
    IncorrectState {
        /// The instance.
        id: String,
        /// Its state.
        state: &'static str,
        /// `stopped`, `started`, `rebooted`.
        action: &'static str,
    },
    /// Starting would exceed the host's budgets.
    #[error(
        "There is not enough capacity to start the instances: {need_vcpus} vCPUs and {need_mib} \
         MiB are needed, {free_vcpus} vCPUs and {free_mib} MiB are free."
    )]
    Capacity {
        /// vCPUs needed.
        need_vcpus: u64,
        /// MiB needed.
        need_mib: u64,
        /// vCPUs free.
        free_vcpus: u64,
        /// MiB free.
        free_mib: u64,
    },
    /// Hibernation was asked of an instance launched without it.
    #[error(
        "The instance '{0}' was not launched with hibernation configured \
         (HibernationOptions.Configured=true)."
    )]
    HibernationNotConfigured(String),
    /// The public pool has no address left for an instance that wants one.
    #[error("There are no free public addresses left in the pool {0} to start the instances.")]
    PublicAddresses(crate::network::cidr::Cidr),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

fn user_shutdown() -> StateUpdate {
    StateUpdate {
        reason: Some((
            "Client.UserInitiatedShutdown".into(),
            "Client.UserInitiatedShutdown: User initiated shutdown".into(),
        )),
        transition_reason: Some(user_initiated()),
    }
}

impl Compute {
    /// Records a user-initiated shutdown of `row`: `with_vmm` while its VMM is being shut
    /// down (in the background), or `without_vmm` at once when it has none. Returns the state.
    fn begin_shutdown(
        self: &Arc<Self>,
        row: &InstanceRow,
        with_vmm: InstanceState,
        without_vmm: InstanceState,
        force: bool,
    ) -> Result<InstanceState, ChangeStateError> {
        let next = if row.pid.is_some() {
            with_vmm
        } else {
            without_vmm
        };
        {
            let conn = self.db.lock();
            if matches!(next, InstanceState::Stopped | InstanceState::Terminated) {
                self.network
                    .release_in_db(&conn, &row.id, next == InstanceState::Terminated)?;
            }
            instances::set_state(&conn, &row.id, next, &user_shutdown())?;
        }
        if let (Some(pid), Some(start)) = (row.pid, row.pid_start) {
            let end = self.clone().shut_down(row.id.clone(), pid, start, force);
            self.supervise(&row.id, Step::End(pid, start), end);
        }
        Ok(next)
    }

    /// Loads every id, failing with all the missing ones.
    pub(super) fn load_all(&self, ids: &[String]) -> Result<Vec<InstanceRow>, ChangeStateError> {
        let conn = self.db.lock();
        let mut rows = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            match instances::get(&conn, id)? {
                Some(r) => rows.push(r),
                None => missing.push(id.clone()),
            }
        }
        if !missing.is_empty() {
            return Err(ChangeStateError::NotFound(missing));
        }
        Ok(rows)
    }

    /// Stops instances: the ACPI power button, a bounded wait, then a kill (at once with
    /// `force`).
    pub async fn stop(
        self: &Arc<Self>,
        ids: &[String],
        force: bool,
    ) -> Result<Vec<StateChange>, ChangeStateError> {
        let rows = self.load_all(ids)?;
        for r in &rows {
            if matches!(
                r.state,
                InstanceState::Pending | InstanceState::ShuttingDown | InstanceState::Terminated
            ) {
                return Err(ChangeStateError::IncorrectState {
                    id: r.id.clone(),
                    state: r.state.name(),
                    action: "stopped",
                });
            }
        }
        let mut changes = Vec::new();
        for r in rows {
            let _g = self.guard(&r.id).await;
            let row = instances::get(&self.db.lock(), &r.id)?.unwrap_or(r);
            let previous = row.state;
            let current = match row.state {
                InstanceState::Running => {
                    let next = self.begin_shutdown(
                        &row,
                        InstanceState::Stopping,
                        InstanceState::Stopped,
                        force,
                    )?;
                    self.release_network(&row.id).await;
                    next
                }
                InstanceState::Stopping => {
                    if let (true, Some(pid), Some(start)) = (force, row.pid, row.pid_start) {
                        let end = self.clone().shut_down(row.id.clone(), pid, start, true);
                        self.supervise(&row.id, Step::End(pid, start), end);
                    }
                    previous
                }
                other => other,
            };
            changes.push(StateChange {
                id: row.id,
                previous,
                current,
            });
        }
        Ok(changes)
    }

    /// Starts stopped instances (running or pending ones are left as they are).
    pub async fn start(
        self: &Arc<Self>,
        ids: &[String],
    ) -> Result<Vec<StateChange>, ChangeStateError> {
        let rows = self.load_all(ids)?;
        let mut to_start = Vec::new();
        let mut changes = Vec::new();
        {
            let mut conn = self.db.lock();
            let tx = conn.transaction()?;
            let mut need = (0u64, 0u64);
            for r in &rows {
                let row = instances::get(&tx, &r.id)?.unwrap_or_else(|| r.clone());
                match row.state {
                    InstanceState::Stopped => {
                        need.0 += u64::from(row.vcpus);
                        need.1 += row.memory_mib;
                        to_start.push(row.id.clone());
                        changes.push(StateChange {
                            id: row.id,
                            previous: InstanceState::Stopped,
                            current: InstanceState::Pending,
                        });
                    }
                    InstanceState::Pending | InstanceState::Running => changes.push(StateChange {
                        id: row.id,
                        previous: row.state,
                        current: row.state,
                    }),
                    other => {
                        return Err(ChangeStateError::IncorrectState {
                            id: row.id,
                            state: other.name(),
                            action: "started",
                        });
                    }
                }
            }
            let used = instances::used_capacity(&tx)?;
            if !self.config.capacity.fits(used, need) {
                return Err(ChangeStateError::Capacity {
                    need_vcpus: need.0,
                    need_mib: need.1,
                    free_vcpus: self.config.capacity.vcpus.saturating_sub(used.0),
                    free_mib: self.config.capacity.memory_mib.saturating_sub(used.1),
                });
            }
            let pending = StateUpdate {
                reason: Some(("pending".into(), "pending".into())),
                transition_reason: Some(String::new()),
            };
            for id in &to_start {
                instances::set_state(&tx, id, InstanceState::Pending, &pending)?;
                self.network.take_public_ips(&tx, id).map_err(|e| match e {
                    AddressError::Db(e) => ChangeStateError::Db(e),
                    _ => ChangeStateError::PublicAddresses(self.network.config.public_pool),
                })?;
            }
            tx.commit()?;
        }
        for id in to_start {
            self.supervise(&id, Step::Start, self.clone().start_vmm(id.clone()));
        }
        Ok(changes)
    }

    /// Reboots running instances: the guest gets Ctrl-Alt-Del (not the power button) and its
    /// VMM is restarted when it exits; the instance stays `running`.
    pub async fn reboot(self: &Arc<Self>, ids: &[String]) -> Result<(), ChangeStateError> {
        let rows = self.load_all(ids)?;
        for r in &rows {
            if r.state != InstanceState::Running && r.state != InstanceState::Pending {
                return Err(ChangeStateError::IncorrectState {
                    id: r.id.clone(),
                    state: r.state.name(),
                    action: "rebooted",
                });
            }
        }
        for r in rows {
            let _g = self.guard(&r.id).await;
            let Some(row) = instances::get(&self.db.lock(), &r.id)? else {
                continue;
            };
            if row.state != InstanceState::Running || row.rebooting {
                continue;
            }
            if let (Some(pid), Some(start)) = (row.pid, row.pid_start) {
                instances::set_rebooting(&self.db.lock(), &row.id, true)?;
                tracing::info!(id = %row.id, "rebooting");
                let end = self.clone().shut_down_to_reboot(row.id.clone(), pid, start);
                self.supervise(&row.id, Step::End(pid, start), end);
            }
        }
        Ok(())
    }

    /// Recovers running instances on this host, as an alarm's `recover` action asks: the
    /// VMM is ended at once (no signal to the guest, which may not answer) and started
    /// again by the reboot path, so the instance keeps its id, addresses and volumes and
    /// stays `running`.
    pub async fn recover_instances(
        self: &Arc<Self>,
        ids: &[String],
    ) -> Result<(), ChangeStateError> {
        let rows = self.load_all(ids)?;
        for r in &rows {
            if r.state != InstanceState::Running {
                return Err(ChangeStateError::IncorrectState {
                    id: r.id.clone(),
                    state: r.state.name(),
                    action: "recovered",
                });
            }
        }
        for r in rows {
            let _g = self.guard(&r.id).await;
            let Some(row) = instances::get(&self.db.lock(), &r.id)? else {
                continue;
            };
            if row.state != InstanceState::Running || row.rebooting {
                continue;
            }
            if let (Some(pid), Some(start)) = (row.pid, row.pid_start) {
                instances::set_rebooting(&self.db.lock(), &row.id, true)?;
                tracing::info!(id = %row.id, "recovering: restarting its vmm");
                let end = self.clone().end_vmm(row.id.clone(), pid, start, &[]);
                self.supervise(&row.id, Step::End(pid, start), end);
            }
        }
        Ok(())
    }

    /// Terminates instances: shutting-down while the VMM ends, then terminated.
    pub async fn terminate(
        self: &Arc<Self>,
        ids: &[String],
    ) -> Result<Vec<StateChange>, ChangeStateError> {
        let rows = self.load_all(ids)?;
        let mut changes = Vec::new();
        for r in rows {
            let _g = self.guard(&r.id).await;
            let row = instances::get(&self.db.lock(), &r.id)?.unwrap_or(r);
            let previous = row.state;
            let current = match row.state {
                InstanceState::Terminated | InstanceState::ShuttingDown => previous,
                _ => {
                    let next = self.begin_shutdown(
                        &row,
                        InstanceState::ShuttingDown,
                        InstanceState::Terminated,
                        false,
                    )?;
                    self.release_network(&row.id).await;
                    next
                }
            };
            changes.push(StateChange {
                id: row.id,
                previous,
                current,
            });
        }
        Ok(changes)
    }

    /// Ends VMM `pid` as EC2 stops an instance: the ACPI power button (skipped with `force`)
    /// and up to the stop timeout for the guest to shut down. A guest that has not read the
    /// press after a third of the timeout does not listen to ACPI (a kernel booted with
    /// `acpi=off`): it gets Ctrl-Alt-Del for the rest, which shuts it down as a reboot would.
    /// One that read it is left alone (Ctrl-Alt-Del would turn systemd's power-off into a
    /// reboot). Then the control socket's `stop`, then SIGKILL to its process group. The exit
    /// itself is recorded by the VMM's monitor.
    pub(super) async fn shut_down(self: Arc<Self>, id: String, pid: i32, start: u64, force: bool) {
        if force {
            return self.end_vmm(id, pid, start, &[]).await;
        }
        let timeout = self.config.stop_timeout;
        let button = timeout / 3;
        let sock = self.dir(&id).api_sock();
        match supervisor::control(&sock, "power-button").await {
            Err(e) => tracing::warn!(%id, error = %e, "cannot send power-button"),
            Ok(_) if wait_gone(pid, start, button).await => return,
            Ok(_) => {}
        }
        let rest = timeout - button;
        if power_button_read(&sock).await {
            tracing::info!(%id, pid, "the guest took the power button: waiting for its shutdown");
            if !wait_gone(pid, start, rest).await {
                tracing::warn!(%id, pid, "guest still running {timeout:?} after the power button");
                self.end_vmm(id, pid, start, &[]).await;
            }
        } else {
            tracing::warn!(%id, pid, "guest ignored power-button for {button:?}");
            self.end_vmm(id, pid, start, &[("ctrl-alt-del", rest)])
                .await;
        }
    }

    /// Ends VMM `pid` for a reboot: Ctrl-Alt-Del (a guest reboots on it) and up to the stop
    /// timeout, then as `shut_down`.
    pub(super) async fn shut_down_to_reboot(self: Arc<Self>, id: String, pid: i32, start: u64) {
        let signals = [("ctrl-alt-del", self.config.stop_timeout)];
        self.end_vmm(id, pid, start, &signals).await
    }

    /// Sends the guest each of `signals` (a control action, and how long to wait for the VMM
    /// to end after it) in turn, then `stop`, then kills its process group.
    async fn end_vmm(
        self: Arc<Self>,
        id: String,
        pid: i32,
        start: u64,
        signals: &[(&str, Duration)],
    ) {
        let sock = self.dir(&id).api_sock();
        for (signal, wait) in signals {
            match supervisor::control(&sock, signal).await {
                Ok(_) => {
                    if wait_gone(pid, start, *wait).await {
                        return;
                    }
                    tracing::warn!(%id, pid, "guest ignored {signal} for {wait:?}");
                }
                Err(e) => tracing::warn!(%id, error = %e, "cannot send {signal}"),
            }
        }
        if let Err(e) = supervisor::control(&sock, "stop").await {
            tracing::warn!(%id, error = %e, "cannot send stop");
        }
        if !wait_gone(pid, start, Duration::from_secs(2)).await {
            tracing::warn!(%id, pid, "vmm still alive: killing its process group");
            supervisor::kill_group(pid);
        }
    }
}

/// Whether the guest behind control socket `sock` has read the power-button press (its
/// status no longer shows it pending); an unanswered socket counts as not read.
async fn power_button_read(sock: &std::path::Path) -> bool {
    match supervisor::control(sock, "status").await {
        Ok(answer) => answer["status"]["power_button_pending"] == serde_json::Value::Bool(false),
        Err(_) => false,
    }
}

/// Polls until `pid` (started at `start`) is gone or `timeout` passes; true if gone.
pub(super) async fn wait_gone(pid: i32, start: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !supervisor::alive(pid, start) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    !supervisor::alive(pid, start)
}
