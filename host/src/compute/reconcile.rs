//! Agent start-up: reattaching to the VMMs that outlived the previous agent, settling every
//! instance whose VMM died meanwhile, and dropping long-terminated instances.

use std::sync::Arc;
use std::time::Duration;

use super::Compute;
use super::recovery::Step;
use super::supervisor;
use state::instances::{self, InstanceState, StateUpdate};

impl Compute {
    /// Reconciles every live instance with the processes that really exist.
    pub async fn reconcile(self: &Arc<Self>) -> rusqlite::Result<()> {
        let live = instances::live(&self.db.lock())?;
        for row in live {
            let id = row.id.clone();
            match (row.pid, row.pid_start) {
                (Some(pid), Some(start)) if supervisor::alive(pid, start) => {
                    tracing::info!(%id, pid, state = row.state.name(), "reattached to vmm");
                    let watch = self.clone().monitor(id.clone(), pid, None);
                    self.supervise(&id, Step::Watch(pid), watch);
                    let ending = matches!(
                        row.state,
                        InstanceState::Stopping | InstanceState::ShuttingDown
                    ) || (row.state == InstanceState::Running && row.rebooting);
                    if ending {
                        let end = self.clone().shut_down(id.clone(), pid, start, true);
                        self.supervise(&id, Step::End(pid, start), end);
                    } else if row.state == InstanceState::Pending {
                        let confirm = self.clone().confirm_after_restart(id.clone(), pid);
                        self.supervise(&id, Step::Confirm, confirm);
                    }
                }
                (Some(pid), _) => {
                    tracing::warn!(%id, pid, "vmm died while the agent was down");
                    self.on_exit(&id, pid).await;
                }
                (None, _) => match row.state {
                    InstanceState::Pending | InstanceState::Running => {
                        // The previous agent may have died between spawning the VMM and
                        // recording its pid: adopt that VMM rather than start a second one.
                        match supervisor::find_by_socket(&self.dir(&id).api_sock()) {
                            Some((pid, start)) => {
                                tracing::warn!(%id, pid, "adopting an unrecorded vmm");
                                instances::set_pid(&self.db.lock(), &id, Some((pid, start)))?;
                                let watch = self.clone().monitor(id.clone(), pid, None);
                                self.supervise(&id, Step::Watch(pid), watch);
                                let confirm = self.clone().confirm_after_restart(id.clone(), pid);
                                self.supervise(&id, Step::Confirm, confirm);
                            }
                            None => {
                                self.supervise(
                                    &id,
                                    Step::Start,
                                    self.clone().start_vmm(id.clone()),
                                );
                            }
                        }
                    }
                    InstanceState::Stopping => {
                        let u = keep_reason(&row);
                        instances::set_state(&self.db.lock(), &id, InstanceState::Stopped, &u)?;
                    }
                    InstanceState::ShuttingDown => {
                        let u = keep_reason(&row);
                        instances::set_state(&self.db.lock(), &id, InstanceState::Terminated, &u)?;
                    }
                    _ => {}
                },
            }
        }
        Ok(())
    }

    /// A pending instance found alive after a restart becomes running once its socket answers.
    async fn confirm_after_restart(self: Arc<Self>, id: String, pid: i32) {
        let sock = self.dir(&id).api_sock();
        for _ in 0..100 {
            if supervisor::control(&sock, "status").await.is_ok() {
                self.promote_to_running(&id, pid).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every minute (or retention, if shorter), deletes instances terminated longer ago than
    /// the retention, and their files.
    pub async fn purge_loop(self: Arc<Self>) {
        loop {
            let before = state::now_unix() - self.config.terminated_retention.as_secs() as i64;
            match instances::purge_terminated(&self.db.lock(), before) {
                Ok(ids) => {
                    for id in ids {
                        tracing::info!(%id, "terminated instance purged");
                        let _ = std::fs::remove_dir_all(&self.dir(&id).0);
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot purge terminated instances"),
            }
            let every = self
                .config
                .terminated_retention
                .clamp(Duration::from_secs(1), Duration::from_secs(60));
            tokio::time::sleep(every).await;
        }
    }
}

fn keep_reason(row: &instances::InstanceRow) -> StateUpdate {
    StateUpdate {
        reason: row
            .state_reason_code
            .clone()
            .zip(row.state_reason_message.clone()),
        transition_reason: None,
    }
}
