//! Hibernation: StopInstances with `Hibernate=true` saves the guest's memory, vCPUs and
//! devices through the vmm's `snapshot` request into `hibernation.snap` in the instance's
//! jail directory (the only place the jailed vmm can write), then stops the vmm; the next
//! start resumes from that file (`vmm --restore`) instead of booting, and the file is dropped
//! once the instance runs again. A missing or corrupt file fails the start with the vmm's
//! reason; no fresh boot is attempted.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::lifecycle::ChangeStateError;
use super::recovery::Step;
use super::supervisor;
use super::{Compute, StateChange, user_initiated};
use state::hibernation;
use state::instances::{self, InstanceState, StateUpdate};

/// How long the vmm may take to write the saved state.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(120);

impl Compute {
    /// The file an instance hibernates into.
    pub fn hibernation_file(&self, id: &str) -> PathBuf {
        self.dir(id).jail_root().join("hibernation.snap")
    }

    /// Hibernates running instances (stopped or stopping ones are left as they are). Every
    /// instance must have been launched with hibernation configured.
    pub async fn hibernate(
        self: &Arc<Self>,
        ids: &[String],
    ) -> Result<Vec<StateChange>, ChangeStateError> {
        let rows = self.load_all(ids)?;
        {
            let conn = self.db.lock();
            for r in &rows {
                if !hibernation::get(&conn, &r.id)?.configured {
                    return Err(ChangeStateError::HibernationNotConfigured(r.id.clone()));
                }
                if matches!(
                    r.state,
                    InstanceState::Pending
                        | InstanceState::ShuttingDown
                        | InstanceState::Terminated
                ) {
                    return Err(ChangeStateError::IncorrectState {
                        id: r.id.clone(),
                        state: r.state.name(),
                        action: "hibernated",
                    });
                }
            }
        }
        let mut changes = Vec::new();
        for r in rows {
            let _g = self.guard(&r.id).await;
            let row = instances::get(&self.db.lock(), &r.id)?.unwrap_or(r);
            let previous = row.state;
            let mut current = previous;
            if let (InstanceState::Running, Some(pid), Some(start)) =
                (row.state, row.pid, row.pid_start)
            {
                let update = StateUpdate {
                    reason: Some((
                        "Client.UserInitiatedHibernate".into(),
                        "Client.UserInitiatedHibernate: User initiated hibernate".into(),
                    )),
                    transition_reason: Some(user_initiated()),
                };
                instances::set_state(&self.db.lock(), &row.id, InstanceState::Stopping, &update)?;
                current = InstanceState::Stopping;
                let end = self.clone().save_and_stop(row.id.clone(), pid, start);
                self.supervise(&row.id, Step::End(pid, start), end);
            }
            changes.push(StateChange {
                id: row.id,
                previous,
                current,
            });
        }
        Ok(changes)
    }

    /// Saves the VM of `id` and stops its vmm; if the save fails, stops it without one.
    async fn save_and_stop(self: Arc<Self>, id: String, pid: i32, start: u64) {
        let file = self.hibernation_file(&id);
        let sock = self.dir(&id).api_sock();
        let asked = serde_json::json!({"action": "snapshot", "path": file});
        match supervisor::request(&sock, asked, SNAPSHOT_TIMEOUT).await {
            Ok(answer) => {
                tracing::info!(%id, snapshot = %answer["snapshot"], "hibernation state saved");
                let recorded = hibernation::set_state_file(
                    &self.db.lock(),
                    &id,
                    Some(&file.display().to_string()),
                );
                if let Err(e) = recorded {
                    tracing::error!(%id, error = %e, "cannot record the hibernation state");
                }
                self.shut_down(id, pid, start, true).await;
            }
            Err(e) => {
                tracing::error!(%id, error = %e, "hibernation failed: stopping without it");
                let _ = std::fs::remove_file(&file);
                self.shut_down(id, pid, start, false).await;
            }
        }
    }

    /// The saved state instance `id` resumes from at its next start, if it hibernated.
    pub fn resume_file(&self, id: &str) -> Option<PathBuf> {
        hibernation::get(&self.db.lock(), id)
            .ok()
            .and_then(|h| h.state_file)
            .map(PathBuf::from)
    }

    /// Once a resumed instance runs, its saved state is spent: forget and delete it.
    pub(super) fn resumed(&self, id: &str) {
        if let Some(file) = self.resume_file(id) {
            let _ = hibernation::set_state_file(&self.db.lock(), id, None);
            let _ = std::fs::remove_file(&file);
            tracing::info!(%id, "resumed from hibernation");
        }
    }
}
