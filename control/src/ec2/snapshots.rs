//! EBS snapshots: taking one of a volume, copying and deleting them. The point-in-time copy
//! and the chunking run in the background in `host::storage`.

use rusqlite::Connection;

use crate::effects::{ApplyError, Effect};
use crate::{Plane, Refusal};
use host::compute::freeze::Quiesce;
use host::storage::types::GIB;
use state::instances::{self, InstanceState};
use state::snapshots::{self, SnapshotRow};
use state::volumes::{self, VolumeRow, VolumeState};
use state::{images, new_id, now_iso, tags};

/// The longest description a snapshot takes.
pub const MAX_DESCRIPTION: usize = 255;

/// Why a volume cannot be snapshotted now.
#[derive(Debug, thiserror::Error)]
pub enum NotSnapshottable {
    /// The volume is neither available nor in use.
    #[error("Volume '{volume}' is in the '{state}' state.")]
    VolumeState {
        /// The volume.
        volume: String,
        /// Its state.
        state: &'static str,
    },
    /// Its instance is changing state.
    #[error(
        "Volume '{volume}' is attached to instance {instance}, which is {state}; snapshot it \
         when it is running or stopped"
    )]
    InstanceState {
        /// The volume.
        volume: String,
        /// Its instance.
        instance: String,
        /// The instance's state.
        state: &'static str,
    },
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for NotSnapshottable {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Db(_) => None,
            _ => Some("IncorrectState"),
        }
    }
}

/// Checks a volume can be snapshotted now: available or in use, and its instance (if any)
/// not between states.
pub fn snapshottable(conn: &Connection, v: &VolumeRow) -> Result<(), NotSnapshottable> {
    if !matches!(v.state, VolumeState::Available | VolumeState::InUse) {
        return Err(NotSnapshottable::VolumeState {
            volume: v.id.clone(),
            state: v.state.name(),
        });
    }
    if let Some(i) = &v.instance_id
        && let Some(inst) = instances::get(conn, i)?
        && matches!(
            inst.state,
            InstanceState::Pending | InstanceState::Stopping | InstanceState::ShuttingDown
        )
    {
        return Err(NotSnapshottable::InstanceState {
            volume: v.id.clone(),
            instance: i.clone(),
            state: inst.state.name(),
        });
    }
    Ok(())
}

/// A pending snapshot of `vol`.
pub fn pending_row(vol: &VolumeRow, description: &str) -> SnapshotRow {
    SnapshotRow {
        seq: 0,
        id: new_id("snap"),
        volume_id: vol.id.clone(),
        volume_size_gib: vol.size_gib,
        size_bytes: vol.size_gib * GIB,
        state: "pending".into(),
        progress: 0,
        start_time: now_iso(),
        description: description.to_string(),
        new_bytes: 0,
        pause_micros: None,
        state_message: None,
    }
}

/// CreateSnapshot of a volume.
#[derive(Debug, Clone)]
pub struct CreateSnapshot {
    /// The volume (well formed).
    pub volume_id: String,
    /// The description (at most [`MAX_DESCRIPTION`] characters).
    pub description: String,
    /// Tags for the snapshot.
    pub tags: Vec<(String, String)>,
}

/// Why CreateSnapshot failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateSnapshotError {
    /// The volume does not exist.
    #[error("The volume '{0}' does not exist.")]
    VolumeNotFound(String),
    /// The volume cannot be snapshotted now.
    #[error("{0}")]
    NotSnapshottable(#[source] NotSnapshottable),
    /// The description is too long.
    #[error("Value for parameter Description is invalid: descriptions are at most 255 characters")]
    Description,
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for CreateSnapshotError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::VolumeNotFound(_) => Some("InvalidVolume.NotFound"),
            Self::NotSnapshottable(e) => e.code(),
            Self::Description => Some("InvalidParameterValue"),
            Self::Db(_) => None,
        }
    }
}

/// Checks the volume and records a pending snapshot of it.
pub fn create_snapshot(
    conn: &Connection,
    cmd: &CreateSnapshot,
) -> Result<SnapshotRow, CreateSnapshotError> {
    let v = volumes::get(conn, &cmd.volume_id)?
        .ok_or_else(|| CreateSnapshotError::VolumeNotFound(cmd.volume_id.clone()))?;
    snapshottable(conn, &v).map_err(CreateSnapshotError::NotSnapshottable)?;
    if cmd.description.len() > MAX_DESCRIPTION {
        return Err(CreateSnapshotError::Description);
    }
    let row = pending_row(&v, &cmd.description);
    snapshots::insert(conn, &row)?;
    tags::put(conn, &row.id, &cmd.tags)?;
    Ok(row)
}

/// CopySnapshot within this region.
#[derive(Debug, Clone)]
pub struct CopySnapshot {
    /// The snapshot copied (well formed).
    pub source: String,
    /// The copy's description.
    pub description: String,
    /// Tags for the copy.
    pub tags: Vec<(String, String)>,
}

/// Why CopySnapshot failed.
#[derive(Debug, thiserror::Error)]
pub enum CopySnapshotError {
    /// The source does not exist.
    #[error("The snapshot '{0}' does not exist.")]
    SnapshotNotFound(String),
    /// The source is not completed.
    #[error("Snapshot is in invalid state - {0}")]
    NotCompleted(String),
    /// The description is too long.
    #[error("Value for parameter Description is invalid: descriptions are at most 255 characters")]
    Description,
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for CopySnapshotError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::SnapshotNotFound(_) => "InvalidSnapshot.NotFound",
            Self::NotCompleted(_) => "IncorrectState",
            Self::Description => "InvalidParameterValue",
            Self::Db(_) => return None,
        })
    }
}

/// Records a completed snapshot's copy: it shares the source's chunks (one more reference
/// each), so it needs no work on the host side. Its volume is `vol-ffffffff`, as on EC2.
pub fn copy_snapshot(
    conn: &Connection,
    cmd: &CopySnapshot,
) -> Result<SnapshotRow, CopySnapshotError> {
    if cmd.description.len() > MAX_DESCRIPTION {
        return Err(CopySnapshotError::Description);
    }
    let src = snapshots::get(conn, &cmd.source)?
        .ok_or_else(|| CopySnapshotError::SnapshotNotFound(cmd.source.clone()))?;
    if src.state != "completed" {
        return Err(CopySnapshotError::NotCompleted(src.state));
    }
    let row = SnapshotRow {
        seq: 0,
        id: new_id("snap"),
        volume_id: "vol-ffffffff".into(),
        volume_size_gib: src.volume_size_gib,
        size_bytes: src.size_bytes,
        state: "pending".into(),
        progress: 0,
        start_time: now_iso(),
        description: cmd.description.clone(),
        new_bytes: 0,
        pause_micros: None,
        state_message: None,
    };
    snapshots::copy(conn, &src, &row)?;
    tags::put(conn, &row.id, &cmd.tags)?;
    Ok(row)
}

/// Why DeleteSnapshot failed.
#[derive(Debug, thiserror::Error)]
pub enum DeleteSnapshotError {
    /// The snapshot does not exist.
    #[error("The snapshot '{0}' does not exist.")]
    SnapshotNotFound(String),
    /// An image uses it.
    #[error("The snapshot {snapshot} is currently in use by {image}")]
    InUse {
        /// The snapshot.
        snapshot: String,
        /// The image.
        image: String,
    },
    /// It is being taken.
    #[error("Snapshot '{0}' is still pending.")]
    Pending(String),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
    /// Its chunk files could not be removed (the journal finishes it at the next start).
    #[error("cannot free the snapshot's chunks")]
    Apply(#[from] ApplyError),
}

impl Refusal for DeleteSnapshotError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::SnapshotNotFound(_) => "InvalidSnapshot.NotFound",
            Self::InUse { .. } => "InvalidSnapshot.InUse",
            Self::Pending(_) => "IncorrectState",
            Self::Db(_) | Self::Apply(_) => return None,
        })
    }
}

/// Checks a snapshot can go (no image uses it, not being taken) and deletes its row and
/// references; [`Effect::FreeChunks`] removes the chunk files only it used.
pub fn delete_snapshot(conn: &Connection, id: &str) -> Result<Vec<Effect>, DeleteSnapshotError> {
    let s = snapshots::get(conn, id)?
        .ok_or_else(|| DeleteSnapshotError::SnapshotNotFound(id.into()))?;
    if let Some(image) = images::uses_snapshot(conn, id)? {
        return Err(DeleteSnapshotError::InUse {
            snapshot: id.into(),
            image,
        });
    }
    if s.state == "pending" {
        return Err(DeleteSnapshotError::Pending(id.into()));
    }
    let freed = snapshots::delete(conn, id)?;
    Ok(if freed.is_empty() {
        Vec::new()
    } else {
        vec![Effect::FreeChunks {
            snapshot: id.into(),
            hashes: freed,
        }]
    })
}

impl Plane {
    /// CreateSnapshot: recorded pending, taken in the background (the instance, if it
    /// runs, paused for the copy). A crash before it starts leaves it pending, which the
    /// storage's start-up sweep fails.
    pub async fn create_snapshot(
        &self,
        cmd: CreateSnapshot,
    ) -> Result<SnapshotRow, CreateSnapshotError> {
        let committed = self.transact(|tx| {
            Ok::<_, CreateSnapshotError>((create_snapshot(tx, &cmd)?, Vec::new()))
        })?;
        let s = committed.value;
        self.storage
            .start_snapshots(vec![(s.id.clone(), s.volume_id.clone())], Quiesce::Pause);
        tracing::info!(snapshot = %s.id, volume = %s.volume_id, "snapshot started");
        Ok(s)
    }

    /// CopySnapshot.
    pub async fn copy_snapshot(&self, cmd: CopySnapshot) -> Result<SnapshotRow, CopySnapshotError> {
        let committed =
            self.transact(|tx| Ok::<_, CopySnapshotError>((copy_snapshot(tx, &cmd)?, Vec::new())))?;
        let s = committed.value;
        tracing::info!(snapshot = %s.id, source = %cmd.source, "snapshot copied");
        Ok(s)
    }

    /// DeleteSnapshot: the row and references go in the transaction, the chunk files after.
    pub async fn delete_snapshot(&self, id: &str) -> Result<(), DeleteSnapshotError> {
        let committed =
            self.transact(|tx| Ok::<_, DeleteSnapshotError>(((), delete_snapshot(tx, id)?)))?;
        self.apply(committed.effects).await?;
        tracing::info!(snapshot = %id, "snapshot deleted");
        Ok(())
    }
}
