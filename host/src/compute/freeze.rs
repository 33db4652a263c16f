//! Point-in-time copies of an instance's disks: while it runs, with its VMM paused only for
//! the blocks written during the copy (crash-consistent), or with the guest shut down and
//! its VMM restarted afterwards (CreateImage without `NoReboot`), or with its lifecycle held
//! when it does not run.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Compute;
use super::lifecycle::wait_gone;
use super::supervisor::{self, ControlError};
use crate::storage::files;
use state::instances::{self, InstanceState};

/// How a running instance is held still while its disks are copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quiesce {
    /// The disks are copied while the guest runs, its vmm recording the blocks written;
    /// the VMM is paused only to copy those again: the disks are crash-consistent.
    Pause,
    /// The guest is shut down (Ctrl-Alt-Del, then the stop timeout), the disks copied with no
    /// VMM running, and the instance booted again; it stays `running` throughout, as a reboot.
    Reboot,
}

/// One disk to copy: the volume file, the file to copy it into, and the vmm's id for it.
#[derive(Debug, Clone)]
pub struct DiskCopy {
    /// The volume's file.
    pub src: PathBuf,
    /// The copy (made or truncated).
    pub dst: PathBuf,
    /// The disk's id in its vmm (`--disk ...,id=`).
    pub drive: String,
}

/// Errors taking a point-in-time copy.
#[derive(Debug, thiserror::Error)]
pub enum FreezeError {
    /// The database failed.
    #[error("the state database failed")]
    Db(#[source] rusqlite::Error),
    /// The VMM would not pause or resume.
    #[error("cannot pause or resume the instance")]
    Pause(#[source] ControlError),
    /// The VMM would not track or report the blocks written to a disk (it may have ended).
    #[error("cannot track the writes to disk {drive}")]
    Track {
        /// The disk's id.
        drive: String,
        /// The cause.
        #[source]
        source: ControlError,
    },
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
    /// Copies instance `id`'s disks at one point in time (returns their lengths), held
    /// still as `how` says if it runs (and how long the guest was held), else with its
    /// lifecycle held so it cannot start meanwhile.
    pub async fn frozen(
        self: &Arc<Self>,
        id: &str,
        how: Quiesce,
        jobs: Vec<DiskCopy>,
    ) -> Result<(Vec<u64>, Option<Duration>), FreezeError> {
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
            return Ok((copy_all(jobs).await?, None));
        };
        match how {
            Quiesce::Pause => {
                let sock = self.dir(id).api_sock();
                let (lens, held) = tracked_copy(&sock, jobs).await?;
                let ms = held.as_secs_f64() * 1e3;
                tracing::info!(%id, pause_ms = ms, "instance paused for a snapshot");
                Ok((lens, Some(held)))
            }
            Quiesce::Reboot => {
                let t0 = Instant::now();
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
                let lens = copy_all(jobs).await?;
                let held = t0.elapsed();
                let ms = held.as_secs_f64() * 1e3;
                tracing::info!(%id, down_ms = ms, "instance shut down for an image");
                Ok((lens, Some(held)))
            }
        }
    }
}

/// Rounds of copying the blocks written meanwhile while the instance still runs, before the
/// pause: each round leaves only what was written during the one before.
const RUNNING_ROUNDS: usize = 2;
/// Written bytes few enough to be copied in the pause.
const PAUSE_BYTES: u64 = 8 << 20;
/// How long a written-blocks answer (the ranges of a whole disk) may take.
const TRACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Copies every disk whole, in the background (returns their lengths).
pub async fn copy_all(jobs: Vec<DiskCopy>) -> Result<Vec<u64>, FreezeError> {
    let copy = move || -> std::io::Result<Vec<u64>> {
        jobs.iter()
            .map(|job| {
                let from = File::open(&job.src)?;
                let to = File::create(&job.dst)?;
                files::copy_data_ranges(&from, &to)?;
                Ok(from.metadata()?.len())
            })
            .collect()
    };
    tokio::task::spawn_blocking(copy)
        .await?
        .map_err(FreezeError::Copy)
}

/// The byte ranges `(offset, len)` written to each disk of a copy.
type Written = Vec<Vec<(u64, u64)>>;

/// Copies the ranges `written[i]` of every disk `jobs[i]` into its copy, in the background.
async fn copy_written(jobs: &[DiskCopy], written: Written) -> Result<(), FreezeError> {
    if total(&written) == 0 {
        return Ok(());
    }
    let jobs = jobs.to_vec();
    let copy = move || -> std::io::Result<()> {
        for (job, ranges) in jobs.iter().zip(&written) {
            if ranges.is_empty() {
                continue;
            }
            let from = File::open(&job.src)?;
            let to = OpenOptions::new().write(true).open(&job.dst)?;
            files::copy_ranges(&from, &to, ranges)?;
        }
        Ok(())
    };
    tokio::task::spawn_blocking(copy)
        .await?
        .map_err(FreezeError::Copy)
}

/// Sends `track-writes` (or `written-blocks`, ending tracking if `stop`) about `drive`.
async fn drive_request(
    sock: &Path,
    action: &str,
    drive: &str,
    stop: bool,
) -> Result<serde_json::Value, FreezeError> {
    let mut request = serde_json::json!({ "action": action, "drive": drive });
    if action == "written-blocks" {
        request["stop"] = stop.into();
    }
    supervisor::request(sock, request, TRACK_TIMEOUT)
        .await
        .map_err(|source| FreezeError::Track {
            drive: drive.to_string(),
            source,
        })
}

/// The blocks written to each disk since the last take; tracking ends with `stop`.
async fn take_written(sock: &Path, jobs: &[DiskCopy], stop: bool) -> Result<Written, FreezeError> {
    let mut all = Vec::with_capacity(jobs.len());
    for job in jobs {
        let answer = drive_request(sock, "written-blocks", &job.drive, stop).await?;
        let ranges = serde_json::from_value(answer["written"]["ranges"].clone()).map_err(|e| {
            FreezeError::Track {
                drive: job.drive.clone(),
                source: ControlError::Refused(format!("an answer without ranges: {e}")),
            }
        })?;
        all.push(ranges);
    }
    Ok(all)
}

fn total(written: &Written) -> u64 {
    written.iter().flatten().map(|&(_, len)| len).sum()
}

/// Reflinks every volume into its copy (`FICLONE`) with the vmm paused, where the filesystem
/// shares extents (XFS, btrfs): the pause is one clone per volume. Whether it can is tried
/// first while the guest runs (that clone is thrown away); `None` where it cannot (ext4).
async fn reflinked(
    sock: &Path,
    jobs: &[DiskCopy],
) -> Result<Option<(Vec<u64>, Duration)>, FreezeError> {
    let clone_all = |jobs: Vec<DiskCopy>| {
        move || -> std::io::Result<Vec<u64>> {
            jobs.iter()
                .map(|job| {
                    let from = File::open(&job.src)?;
                    files::reflink(&from, &File::create(&job.dst)?)?;
                    Ok(from.metadata()?.len())
                })
                .collect()
        }
    };
    if tokio::task::spawn_blocking(clone_all(jobs.to_vec()))
        .await?
        .is_err()
    {
        return Ok(None);
    }
    let t0 = Instant::now();
    supervisor::control(sock, "pause")
        .await
        .map_err(FreezeError::Pause)?;
    let cloned = tokio::task::spawn_blocking(clone_all(jobs.to_vec())).await;
    let resumed = supervisor::control(sock, "resume").await;
    let held = t0.elapsed();
    let lens = cloned?.map_err(FreezeError::Copy)?;
    resumed.map_err(FreezeError::Pause)?;
    Ok(Some((lens, held)))
}

/// The copy of a running instance's disks: their writes tracked by the vmm, each disk copied
/// whole while the guest runs, then again only the blocks written meanwhile (while it still
/// runs, a round or two), and last the blocks written since, with the vmm paused (its disks
/// drained first). Returns the lengths and how long the guest was paused. On any failure
/// the instance runs on and the copies are not to be used.
async fn tracked_copy(
    sock: &Path,
    jobs: Vec<DiskCopy>,
) -> Result<(Vec<u64>, Duration), FreezeError> {
    if let Some(done) = reflinked(sock, &jobs).await? {
        return Ok(done);
    }
    for job in &jobs {
        drive_request(sock, "track-writes", &job.drive, false).await?;
    }
    let result = copy_then_pause(sock, &jobs).await;
    if result.is_err() {
        // Best effort: a vmm that is gone has nothing to stop.
        for job in &jobs {
            let _ = drive_request(sock, "written-blocks", &job.drive, true).await;
        }
    }
    result
}

async fn copy_then_pause(
    sock: &Path,
    jobs: &[DiskCopy],
) -> Result<(Vec<u64>, Duration), FreezeError> {
    let lens = copy_all(jobs.to_vec()).await?;
    for _ in 0..RUNNING_ROUNDS {
        let written = take_written(sock, jobs, false).await?;
        let bytes = total(&written);
        copy_written(jobs, written).await?;
        if bytes <= PAUSE_BYTES {
            break;
        }
    }
    let t0 = Instant::now();
    supervisor::control(sock, "pause")
        .await
        .map_err(FreezeError::Pause)?;
    let last = match take_written(sock, jobs, true).await {
        Ok(written) => copy_written(jobs, written).await,
        Err(e) => Err(e),
    };
    let resumed = supervisor::control(sock, "resume").await;
    let held = t0.elapsed();
    last?;
    resumed.map_err(FreezeError::Pause)?;
    Ok((lens, held))
}
