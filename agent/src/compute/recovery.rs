//! An instance's supervision fails alone. Each of its tasks (starting its VMM, watching it,
//! ending it, confirming that it runs) is a unit of its own (`crate::tasks`); a panic in
//! one is logged with the instance id, and the instance is not left in limbo:
//! - a panicked watch is re-armed for the same VMM, a few times;
//! - a panicked shutdown (stop, terminate, reboot, hibernate) ends the VMM with SIGKILL, and
//!   the watch records the exit as the transition asked;
//! - a panicked start or confirmation, or a watch that keeps panicking, fails the instance:
//!   its VMM is ended and it is recorded `stopped` (`terminated` if it was shutting down)
//!   with `Server.InternalError` naming the panic.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::Compute;
use super::supervisor;
use crate::state::instances::{self, InstanceState, StateUpdate};
use crate::tasks::{self, Panicked, Unit};

/// How many times a panicked watch is re-armed before the instance is failed.
const REARMS: u32 = 3;
/// How long a failed instance's killed VMM is waited for.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// A task of an instance's supervision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Starting its VMM.
    Start,
    /// Watching its VMM (pid) for the exit.
    Watch(i32),
    /// Ending its VMM (pid and start time) for a stop, termination, reboot or hibernation.
    End(i32, u64),
    /// Waiting for its VMM to answer, to mark it running.
    Confirm,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Start => "vmm start",
            Step::Watch(_) => "vmm watch",
            Step::End(..) => "vmm shutdown",
            Step::Confirm => "vmm confirmation",
        }
    }
}

type Boxed = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Compute {
    /// Spawns `step` of instance `id`'s supervision as a unit, recovered from a panic as the
    /// module says.
    pub(super) fn supervise<F>(self: &Arc<Self>, id: &str, step: Step, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.supervise_attempt(id, step, Box::pin(work), 0);
    }

    fn supervise_attempt(self: &Arc<Self>, id: &str, step: Step, work: Boxed, attempt: u32) {
        let me = self.clone();
        let owned = id.to_owned();
        let unit = Unit::new(step.name()).instance(id);
        tasks::spawn_or_recover(unit, work, move |panicked| {
            me.recover(owned, step, panicked, attempt)
        });
    }

    fn recover(self: Arc<Self>, id: String, step: Step, panicked: Panicked, n: u32) -> Boxed {
        Box::pin(async move {
            match step {
                Step::End(pid, start) => {
                    if supervisor::alive(pid, start) {
                        tracing::warn!(%id, pid, "killing the vmm its failed shutdown left");
                        supervisor::kill_group(pid);
                    }
                }
                Step::Watch(pid) if n < REARMS => {
                    tokio::time::sleep(Duration::from_millis(100 << n)).await;
                    tracing::warn!(%id, pid, rearm = n + 1, "watching the vmm again");
                    let watch = self.clone().watch_again(id.clone(), pid);
                    self.supervise_attempt(&id, step, watch, n + 1);
                }
                Step::Watch(_) | Step::Start => self.fail(&id, &panicked, false).await,
                Step::Confirm => self.fail(&id, &panicked, true).await,
            }
        })
    }

    /// A new watch of VMM `pid`, whose first watch (and child handle) was lost in a panic.
    fn watch_again(self: Arc<Self>, id: String, pid: i32) -> Boxed {
        Box::pin(async move {
            supervisor::wait_exit(pid).await;
            reap_if_child(pid);
            self.on_exit(&id, pid).await;
        })
    }

    /// Fails instance `id` after `panicked`: its VMM is ended and it is recorded `stopped`
    /// (`terminated` if it was shutting down) with `Server.InternalError`. With `watched`, a
    /// watch of its VMM runs and records the exit; otherwise it is recorded here.
    pub(super) async fn fail(self: &Arc<Self>, id: &str, panicked: &Panicked, watched: bool) {
        let _g = self.guard(id).await;
        let row = match instances::get(&self.db.lock(), id) {
            Ok(Some(row)) => row,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(%id, error = %e, "cannot read the instance to fail it");
                return;
            }
        };
        if matches!(row.state, InstanceState::Stopped | InstanceState::Terminated) {
            return;
        }
        tracing::error!(%id, state = row.state.name(), "failing the instance: {panicked}");
        let update = failure(panicked);
        let shutting_down = row.state == InstanceState::ShuttingDown;
        if watched && let (Some(pid), Some(start)) = (row.pid, row.pid_start) {
            if supervisor::alive(pid, start) {
                let next = if shutting_down {
                    InstanceState::ShuttingDown
                } else {
                    InstanceState::Stopping
                };
                record(&self.db.lock(), id, next, &update);
                supervisor::kill_group(pid);
            }
            return;
        }
        let vmm = match (row.pid, row.pid_start) {
            (Some(pid), Some(start)) => supervisor::alive(pid, start).then_some(pid),
            // A start that panicked after spawning its VMM, before recording it.
            _ => supervisor::find_by_socket(&self.dir(id).api_sock()).map(|(pid, _)| pid),
        };
        if let Some(pid) = vmm {
            supervisor::kill_group(pid);
            let _ = tokio::time::timeout(KILL_WAIT, supervisor::wait_exit(pid)).await;
            reap_if_child(pid);
        }
        let next = if shutting_down {
            InstanceState::Terminated
        } else {
            InstanceState::Stopped
        };
        {
            let conn = self.db.lock();
            let terminated = next == InstanceState::Terminated;
            if let Err(e) = self.network.release_in_db(&conn, id, terminated) {
                tracing::error!(%id, error = %e, "cannot release public addresses");
            }
            record(&conn, id, next, &update);
        }
        self.release_network(id).await;
    }
}

/// `Server.InternalError` naming the panic, as EC2 reports an instance's internal failure.
fn failure(panicked: &Panicked) -> StateUpdate {
    StateUpdate {
        reason: Some((
            "Server.InternalError".into(),
            format!("Server.InternalError: the agent's {panicked}"),
        )),
        transition_reason: Some(format!(
            "Server.InternalError ({})",
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S GMT")
        )),
    }
}

fn record(conn: &rusqlite::Connection, id: &str, state: InstanceState, update: &StateUpdate) {
    if let Err(e) = instances::set_state(conn, id, state, update) {
        tracing::error!(%id, error = %e, "cannot record the instance's failure");
    }
}

/// Reaps `pid` if it is an exited child of the agent whose handle was lost in a panic, so
/// that it does not linger as a zombie that still looks alive; a no-op for other processes.
fn reap_if_child(pid: i32) {
    let mut status: libc::c_int = 0;
    // SAFETY: waitpid with WNOHANG only reads `pid` and writes `status`, a valid c_int; for a
    // process that is not our child it fails with ECHILD and changes nothing.
    unsafe {
        libc::waitpid(pid, &mut status, libc::WNOHANG);
    }
}
