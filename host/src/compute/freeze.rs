//! Point-in-time copies of an instance's disks: with its VMM paused (crash-consistent), or
//! with the guest shut down and its VMM restarted afterwards (CreateImage without
//! `NoReboot`), or with its lifecycle held when it does not run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Compute;
use super::lifecycle::wait_gone;
use super::supervisor;
use state::instances::{self, InstanceState};

/// How a running instance is held still while its disks are copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quiesce {
    /// The VMM is paused for the copy: the disks are crash-consistent.
    Pause,
    /// The guest is shut down (Ctrl-Alt-Del, then the stop timeout), the disks copied with no
    /// VMM running, and the instance booted again; it stays `running` throughout, as a reboot.
    Reboot,
}

/// Errors taking a point-in-time copy.
#[derive(Debug, thiserror::Error)]
pub enum FreezeError {
    /// The database failed.
    #[error("the state database failed")]
    Db(#[source] rusqlite::Error),
    /// The VMM would not pause or resume.
    #[error("cannot pause or resume the instance")]
    Pause(#[source] supervisor::ControlError),
    /// The VMM outlived its shutdown.
    #[error("the instance's vmm (pid {0}) did not exit for the copy")]
    StillRunning(i32),
    /// The copy failed.
    #[error("the point-in-time copy failed")]
    Copy(#[source] std::io::Error),
    /// The copy task failed.
    #[error("the copy task failed")]
    Join(#[from] tokio::task::JoinError),
}

impl Compute {
    /// Runs `copy` at one point in time of instance `id`'s disks, held still as `how` says if
    /// it runs (returns how long the guest was held), else with its lifecycle held so it
    /// cannot start meanwhile.
    pub async fn frozen<T: Send + 'static>(
        self: &Arc<Self>,
        id: &str,
        how: Quiesce,
        copy: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> Result<(T, Option<Duration>), FreezeError> {
        let _g = self.guard(id).await;
        let row = instances::get(&self.db.lock(), id).map_err(FreezeError::Db)?;
        let vmm = row.as_ref().and_then(|r| {
            let live = matches!(r.state, InstanceState::Running | InstanceState::Pending);
            match (live, r.pid, r.pid_start) {
                (true, Some(pid), Some(start)) => Some((pid, start)),
                _ => None,
            }
        });
        let Some((pid, start)) = vmm else {
            let out = tokio::task::spawn_blocking(copy)
                .await?
                .map_err(FreezeError::Copy)?;
            return Ok((out, None));
        };
        let t0 = Instant::now();
        let out = match how {
            Quiesce::Pause => {
                let sock = self.dir(id).api_sock();
                supervisor::control(&sock, "pause")
                    .await
                    .map_err(FreezeError::Pause)?;
                let out = tokio::task::spawn_blocking(copy).await;
                let resumed = supervisor::control(&sock, "resume").await;
                let out = out?.map_err(FreezeError::Copy)?;
                resumed.map_err(FreezeError::Pause)?;
                out
            }
            Quiesce::Reboot => {
                // The exit monitor waits for this guard, then boots the instance again
                // because it is marked rebooting; the copy runs with no VMM at all.
                instances::set_rebooting(&self.db.lock(), id, true).map_err(FreezeError::Db)?;
                tracing::info!(%id, "shutting the guest down for an image");
                self.clone()
                    .shut_down_to_reboot(id.to_string(), pid, start)
                    .await;
                if !wait_gone(pid, start, Duration::from_secs(5)).await {
                    return Err(FreezeError::StillRunning(pid));
                }
                tokio::task::spawn_blocking(copy)
                    .await?
                    .map_err(FreezeError::Copy)?
            }
        };
        let held = t0.elapsed();
        let ms = held.as_secs_f64() * 1e3;
        match how {
            Quiesce::Pause => tracing::info!(%id, pause_ms = ms, "instance paused for a snapshot"),
            Quiesce::Reboot => tracing::info!(%id, down_ms = ms, "instance shut down for an image"),
        }
        Ok((out, Some(held)))
    }
}
