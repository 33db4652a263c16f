//! EBS volumes: creating, attaching and detaching (stopped instances only: there is no
//! hot-plug), deleting and modifying them.

use rusqlite::{Connection, Transaction};

use crate::effects::{ApplyError, Effect};
use crate::{Plane, Refusal};
use host::storage::types::{SpecError, VolumeSpec, VolumeType};
use state::instances::{self, InstanceState};
use state::snapshots;
use state::volumes::{self, VolumeRow, VolumeState};
use state::{new_id, now_iso, tags};

/// Whether `device` is a data-volume device name EC2 accepts here: `/dev/sd[f-p]` or
/// `/dev/xvd[f-p]`.
pub fn valid_data_device(device: &str) -> bool {
    let letter = device
        .strip_prefix("/dev/sd")
        .or_else(|| device.strip_prefix("/dev/xvd"));
    matches!(letter.map(str::as_bytes), Some([b'f'..=b'p']))
}

/// The letter that identifies a device (`/dev/sdf` and `/dev/xvdf` are the same slot).
pub fn device_slot(device: &str) -> String {
    device
        .trim_start_matches("/dev/")
        .trim_start_matches("xvd")
        .trim_start_matches("sd")
        .to_string()
}

/// `Volume '{id}' is in the '{state}' state.`, EC2's words for a volume in the wrong state.
fn wrong_state(v: &VolumeRow) -> String {
    format!("Volume '{}' is in the '{}' state.", v.id, v.state.name())
}

/// CreateVolume: an empty volume, or one restored from a completed snapshot.
#[derive(Debug, Clone)]
pub struct CreateVolume {
    /// The type.
    pub kind: VolumeType,
    /// The size; the snapshot's when not given.
    pub size_gib: Option<u64>,
    /// Provisioned IOPS, for the types that take them.
    pub iops: Option<u64>,
    /// Provisioned throughput (gp3).
    pub throughput: Option<u64>,
    /// The snapshot to restore (`snap-...`, well formed).
    pub snapshot_id: Option<String>,
    /// Tags for the new volume.
    pub tags: Vec<(String, String)>,
}

/// Why CreateVolume failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateVolumeError {
    /// The snapshot does not exist.
    #[error("The snapshot '{0}' does not exist.")]
    SnapshotNotFound(String),
    /// The snapshot is not completed.
    #[error("Snapshot '{id}' is {state}, not completed.")]
    SnapshotNotCompleted {
        /// The snapshot.
        id: String,
        /// Its state.
        state: String,
    },
    /// Neither a size nor a snapshot.
    #[error("The request must contain the parameter size or snapshotId")]
    NoSize,
    /// The size is smaller than the snapshot's volume.
    #[error(
        "Value for parameter Size is invalid: Volume of {size}GiB is smaller than snapshot \
         '{snapshot}', expect size >= {min}GiB"
    )]
    SmallerThanSnapshot {
        /// The size asked for.
        size: u64,
        /// The snapshot.
        snapshot: String,
        /// Its volume's size.
        min: u64,
    },
    /// The type, size, IOPS and throughput do not fit together.
    #[error("{0}")]
    Spec(#[source] SpecError),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
    /// The volume's file could not be made.
    #[error("cannot make the volume's file")]
    Apply(#[from] ApplyError),
}

impl Refusal for CreateVolumeError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::SnapshotNotFound(_) => "InvalidSnapshot.NotFound",
            Self::SnapshotNotCompleted { .. } => "IncorrectState",
            Self::NoSize => "MissingParameter",
            Self::SmallerThanSnapshot { .. } => "InvalidParameterValue",
            Self::Spec(e) => e.code(),
            Self::Db(_) | Self::Apply(_) => return None,
        })
    }
}

/// Checks and records a new volume (`creating`). An empty one gets its file from
/// [`Effect::CreateVolumeFile`]; one from a snapshot is restored in the background.
pub fn create_volume(
    tx: &Transaction<'_>,
    cmd: &CreateVolume,
) -> Result<(VolumeRow, Vec<Effect>), CreateVolumeError> {
    let snapshot = match &cmd.snapshot_id {
        Some(id) => {
            let s = snapshots::get(tx, id)?
                .ok_or_else(|| CreateVolumeError::SnapshotNotFound(id.clone()))?;
            if s.state != "completed" {
                return Err(CreateVolumeError::SnapshotNotCompleted {
                    id: id.clone(),
                    state: s.state,
                });
            }
            Some(s)
        }
        None => None,
    };
    let size = match (cmd.size_gib, &snapshot) {
        (None, None) => return Err(CreateVolumeError::NoSize),
        (Some(n), Some(s)) if n < s.volume_size_gib => {
            return Err(CreateVolumeError::SmallerThanSnapshot {
                size: n,
                snapshot: s.id.clone(),
                min: s.volume_size_gib,
            });
        }
        (Some(n), _) => n,
        (None, Some(s)) => s.volume_size_gib,
    };
    let spec = VolumeSpec::new(cmd.kind, size, cmd.iops, cmd.throughput)
        .map_err(CreateVolumeError::Spec)?;
    let row = VolumeRow {
        seq: 0,
        id: new_id("vol"),
        volume_type: cmd.kind.name().to_string(),
        size_gib: spec.size_gib,
        iops: spec.iops,
        throughput: spec.throughput,
        snapshot_id: snapshot.map(|s| s.id),
        source_image: None,
        state: VolumeState::Creating,
        created: now_iso(),
        instance_id: None,
        device: None,
        attach_time: None,
        delete_on_termination: false,
    };
    volumes::insert(tx, &row)?;
    tags::put(tx, &row.id, &cmd.tags)?;
    let effects = if row.snapshot_id.is_none() {
        vec![Effect::CreateVolumeFile {
            volume: row.id.clone(),
        }]
    } else {
        Vec::new()
    };
    Ok((row, effects))
}

/// AttachVolume to a stopped instance.
#[derive(Debug, Clone)]
pub struct AttachVolume {
    /// The volume (well formed).
    pub volume_id: String,
    /// The instance (well formed).
    pub instance_id: String,
    /// The device name.
    pub device: String,
}

/// Why AttachVolume failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachVolumeError {
    /// The device is not `/dev/sd[f-p]` or `/dev/xvd[f-p]`.
    #[error(
        "Value for parameter Device is invalid: Invalid value '{0}' for unixDevice; use \
         /dev/sdf to /dev/sdp or /dev/xvdf to /dev/xvdp"
    )]
    BadDevice(String),
    /// The volume does not exist.
    #[error("The volume '{0}' does not exist.")]
    VolumeNotFound(String),
    /// The instance does not exist.
    #[error("The instance ID '{0}' does not exist")]
    InstanceNotFound(String),
    /// The volume is attached already.
    #[error("{volume} is already attached to an instance ({instance})")]
    InUse {
        /// The volume.
        volume: String,
        /// Its instance.
        instance: String,
    },
    /// The volume is not available.
    #[error("{0}")]
    VolumeState(String),
    /// The instance is not stopped.
    #[error(
        "Instance '{instance}' is {state}; volumes are attached to stopped instances only \
         (this agent has no hot-plug)"
    )]
    InstanceState {
        /// The instance.
        instance: String,
        /// Its state.
        state: &'static str,
    },
    /// Another volume is attached at that device.
    #[error(
        "Value for parameter Device is invalid: Invalid value '{0}' for unixDevice. \
         Attachment point {0} is already in use"
    )]
    DeviceTaken(String),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for AttachVolumeError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::BadDevice(_) | Self::DeviceTaken(_) => "InvalidParameterValue",
            Self::VolumeNotFound(_) => "InvalidVolume.NotFound",
            Self::InstanceNotFound(_) => "InvalidInstanceID.NotFound",
            Self::InUse { .. } => "VolumeInUse",
            Self::VolumeState(_) | Self::InstanceState { .. } => "IncorrectState",
            Self::Db(_) => return None,
        })
    }
}

/// Checks and records an attachment; returns the attached volume.
pub fn attach_volume(
    conn: &Connection,
    cmd: &AttachVolume,
) -> Result<VolumeRow, AttachVolumeError> {
    let (vol_id, instance_id, device) = (&cmd.volume_id, &cmd.instance_id, &cmd.device);
    if !valid_data_device(device) {
        return Err(AttachVolumeError::BadDevice(device.clone()));
    }
    let v = volumes::get(conn, vol_id)?
        .ok_or_else(|| AttachVolumeError::VolumeNotFound(vol_id.clone()))?;
    let inst = instances::get(conn, instance_id)?
        .ok_or_else(|| AttachVolumeError::InstanceNotFound(instance_id.clone()))?;
    if let Some(other) = &v.instance_id {
        return Err(AttachVolumeError::InUse {
            volume: vol_id.clone(),
            instance: other.clone(),
        });
    }
    if v.state != VolumeState::Available {
        return Err(AttachVolumeError::VolumeState(wrong_state(&v)));
    }
    if inst.state != InstanceState::Stopped {
        return Err(AttachVolumeError::InstanceState {
            instance: instance_id.clone(),
            state: inst.state.name(),
        });
    }
    let taken = volumes::attached_to(conn, instance_id)?;
    if taken
        .iter()
        .any(|t| t.device.as_deref().map(device_slot) == Some(device_slot(device)))
    {
        return Err(AttachVolumeError::DeviceTaken(device.clone()));
    }
    volumes::set_attachment(conn, vol_id, Some((instance_id, device, false)))?;
    let v = volumes::get(conn, vol_id)?
        .ok_or_else(|| AttachVolumeError::VolumeNotFound(vol_id.clone()))?;
    Ok(v)
}

/// DetachVolume from a stopped (or terminated) instance.
#[derive(Debug, Clone)]
pub struct DetachVolume {
    /// The volume (well formed).
    pub volume_id: String,
    /// The instance it must be attached to, if given.
    pub instance_id: Option<String>,
    /// The device it must be attached at, if given.
    pub device: Option<String>,
}

/// A detached volume: the row as it was attached, and where.
#[derive(Debug, Clone)]
pub struct Detached {
    /// The volume before the detachment.
    pub volume: VolumeRow,
    /// The instance it was attached to.
    pub instance_id: String,
    /// The device it was attached at.
    pub device: String,
}

/// Why DetachVolume failed.
#[derive(Debug, thiserror::Error)]
pub enum DetachVolumeError {
    /// The volume does not exist.
    #[error("The volume '{0}' does not exist.")]
    VolumeNotFound(String),
    /// The volume is not attached.
    #[error("{0}")]
    NotAttached(String),
    /// The volume is attached elsewhere.
    #[error("Volume '{volume}' is not attached there; it is attached to {instance} at {device}")]
    Elsewhere {
        /// The volume.
        volume: String,
        /// Where it is attached.
        instance: String,
        /// At which device.
        device: String,
    },
    /// The instance is neither stopped nor terminated.
    #[error(
        "Instance '{instance}' is {state}; volumes are detached from stopped instances only \
         (this agent has no hot-plug)"
    )]
    InstanceState {
        /// The instance.
        instance: String,
        /// Its state.
        state: &'static str,
    },
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for DetachVolumeError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::VolumeNotFound(_) => "InvalidVolume.NotFound",
            Self::NotAttached(_) | Self::InstanceState { .. } => "IncorrectState",
            Self::Elsewhere { .. } => "InvalidAttachment.NotFound",
            Self::Db(_) => return None,
        })
    }
}

/// Checks and records a detachment.
pub fn detach_volume(conn: &Connection, cmd: &DetachVolume) -> Result<Detached, DetachVolumeError> {
    let vol_id = &cmd.volume_id;
    let v = volumes::get(conn, vol_id)?
        .ok_or_else(|| DetachVolumeError::VolumeNotFound(vol_id.clone()))?;
    let (Some(instance_id), Some(device)) = (v.instance_id.clone(), v.device.clone()) else {
        return Err(DetachVolumeError::NotAttached(wrong_state(&v)));
    };
    if cmd.instance_id.as_ref().is_some_and(|i| *i != instance_id)
        || cmd
            .device
            .as_deref()
            .is_some_and(|d| device_slot(d) != device_slot(&device))
    {
        return Err(DetachVolumeError::Elsewhere {
            volume: vol_id.clone(),
            instance: instance_id,
            device,
        });
    }
    let inst = instances::get(conn, &instance_id)?;
    if let Some(i) =
        inst.filter(|i| !matches!(i.state, InstanceState::Stopped | InstanceState::Terminated))
    {
        return Err(DetachVolumeError::InstanceState {
            instance: instance_id,
            state: i.state.name(),
        });
    }
    volumes::set_attachment(conn, vol_id, None)?;
    Ok(Detached {
        volume: v,
        instance_id,
        device,
    })
}

/// Why DeleteVolume failed.
#[derive(Debug, thiserror::Error)]
pub enum DeleteVolumeError {
    /// The volume does not exist.
    #[error("The volume '{0}' does not exist.")]
    VolumeNotFound(String),
    /// The volume is attached.
    #[error("Volume {volume} is currently attached to {instance}")]
    InUse {
        /// The volume.
        volume: String,
        /// Its instance.
        instance: String,
    },
    /// The volume is neither available nor failed.
    #[error("{0}")]
    VolumeState(String),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
    /// The file or the row could not be removed (the journal finishes it at the next start).
    #[error("cannot remove the volume")]
    Apply(#[from] ApplyError),
}

impl Refusal for DeleteVolumeError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::VolumeNotFound(_) => "InvalidVolume.NotFound",
            Self::InUse { .. } => "VolumeInUse",
            Self::VolumeState(_) => "IncorrectState",
            Self::Db(_) | Self::Apply(_) => return None,
        })
    }
}

/// Checks an unattached volume can go and marks it `deleting`; [`Effect::DeleteVolume`]
/// removes its file and then its row.
pub fn delete_volume(conn: &Connection, id: &str) -> Result<Vec<Effect>, DeleteVolumeError> {
    let v = volumes::get(conn, id)?.ok_or_else(|| DeleteVolumeError::VolumeNotFound(id.into()))?;
    if let Some(i) = &v.instance_id {
        return Err(DeleteVolumeError::InUse {
            volume: id.into(),
            instance: i.clone(),
        });
    }
    if v.state != VolumeState::Available && v.state != VolumeState::Error {
        return Err(DeleteVolumeError::VolumeState(wrong_state(&v)));
    }
    volumes::set_state(conn, id, VolumeState::Deleting)?;
    Ok(vec![Effect::DeleteVolume { volume: id.into() }])
}

/// ModifyVolume: a new type, size (only larger), IOPS or throughput.
#[derive(Debug, Clone)]
pub struct ModifyVolume {
    /// The volume (well formed).
    pub volume_id: String,
    /// The new type, if any.
    pub kind: Option<VolumeType>,
    /// The new size, if any.
    pub size_gib: Option<u64>,
    /// The new IOPS, if any.
    pub iops: Option<u64>,
    /// The new throughput, if any.
    pub throughput: Option<u64>,
}

/// A modification: the volume before, and its new type and spec.
#[derive(Debug, Clone)]
pub struct Modified {
    /// The volume before the change.
    pub before: VolumeRow,
    /// The new type.
    pub kind: VolumeType,
    /// The new size, IOPS and throughput.
    pub spec: VolumeSpec,
}

/// Why ModifyVolume failed.
#[derive(Debug, thiserror::Error)]
pub enum ModifyVolumeError {
    /// The volume does not exist.
    #[error("The volume '{0}' does not exist.")]
    VolumeNotFound(String),
    /// The volume is neither available nor in use.
    #[error("{0}")]
    VolumeState(String),
    /// The new size is smaller.
    #[error(
        "Value for parameter Size is invalid: New size cannot be smaller than existing size \
         ({0} GiB)"
    )]
    Shrink(u64),
    /// The new type, size, IOPS and throughput do not fit together.
    #[error("{0}")]
    Spec(#[source] SpecError),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
    /// The file could not be grown (the journal finishes it at the next start).
    #[error("cannot grow the volume's file")]
    Apply(#[from] ApplyError),
}

impl Refusal for ModifyVolumeError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::VolumeNotFound(_) => "InvalidVolume.NotFound",
            Self::VolumeState(_) => "IncorrectState",
            Self::Shrink(_) => "InvalidParameterValue",
            Self::Spec(e) => e.code(),
            Self::Db(_) | Self::Apply(_) => return None,
        })
    }
}

/// Checks and records a modification; a larger size grows the file
/// ([`Effect::GrowVolumeFile`]), which the guest sees at its next start.
pub fn modify_volume(
    conn: &Connection,
    cmd: &ModifyVolume,
) -> Result<(Modified, Vec<Effect>), ModifyVolumeError> {
    let id = &cmd.volume_id;
    let v = volumes::get(conn, id)?.ok_or_else(|| ModifyVolumeError::VolumeNotFound(id.clone()))?;
    if !matches!(v.state, VolumeState::Available | VolumeState::InUse) {
        return Err(ModifyVolumeError::VolumeState(wrong_state(&v)));
    }
    let old_kind = VolumeType::parse(&v.volume_type).unwrap_or(VolumeType::Gp2);
    let kind = cmd.kind.unwrap_or(old_kind);
    if cmd.size_gib.is_some_and(|s| s < v.size_gib) {
        return Err(ModifyVolumeError::Shrink(v.size_gib));
    }
    let size = cmd.size_gib.unwrap_or(v.size_gib);
    // The type's current IOPS/throughput are kept when it stays the same and takes them.
    let keep_iops = cmd.iops.or_else(|| {
        (kind == old_kind && matches!(kind, VolumeType::Gp3 | VolumeType::Io1 | VolumeType::Io2))
            .then_some(v.iops)
    });
    let keep_tp = cmd
        .throughput
        .or_else(|| (kind == old_kind && kind == VolumeType::Gp3).then_some(v.throughput));
    let spec = VolumeSpec::new(kind, size, keep_iops, keep_tp).map_err(ModifyVolumeError::Spec)?;
    volumes::set_spec(
        conn,
        id,
        kind.name(),
        spec.size_gib,
        spec.iops,
        spec.throughput,
    )?;
    let effects = if size > v.size_gib {
        vec![Effect::GrowVolumeFile {
            volume: id.clone(),
            size_gib: size,
        }]
    } else {
        Vec::new()
    };
    Ok((
        Modified {
            before: v,
            kind,
            spec,
        },
        effects,
    ))
}

impl Plane {
    /// CreateVolume.
    pub async fn create_volume(&self, cmd: CreateVolume) -> Result<VolumeRow, CreateVolumeError> {
        let committed = self.transact(|tx| create_volume(tx, &cmd))?;
        let row = committed.value;
        self.apply(committed.effects).await?;
        if row.snapshot_id.is_some() {
            // The restore runs in the background; a crash before it starts leaves the
            // volume `creating`, which the storage's start-up sweep restores.
            self.storage.restore_volume(row.clone());
        }
        let row = volumes::get(&self.db.lock(), &row.id)?.unwrap_or(row);
        tracing::info!(volume = %row.id, size = row.size_gib, kind = %row.volume_type, "volume created");
        Ok(row)
    }

    /// AttachVolume.
    pub async fn attach_volume(&self, cmd: AttachVolume) -> Result<VolumeRow, AttachVolumeError> {
        let committed =
            self.transact(|tx| Ok::<_, AttachVolumeError>((attach_volume(tx, &cmd)?, Vec::new())))?;
        tracing::info!(volume = %cmd.volume_id, instance = %cmd.instance_id, device = %cmd.device, "volume attached");
        Ok(committed.value)
    }

    /// DetachVolume.
    pub async fn detach_volume(&self, cmd: DetachVolume) -> Result<Detached, DetachVolumeError> {
        let committed =
            self.transact(|tx| Ok::<_, DetachVolumeError>((detach_volume(tx, &cmd)?, Vec::new())))?;
        let d = committed.value;
        tracing::info!(volume = %cmd.volume_id, instance = %d.instance_id, "volume detached");
        Ok(d)
    }

    /// DeleteVolume: marked `deleting`, then its file and row removed.
    pub async fn delete_volume(&self, id: &str) -> Result<(), DeleteVolumeError> {
        let committed =
            self.transact(|tx| Ok::<_, DeleteVolumeError>(((), delete_volume(tx, id)?)))?;
        self.apply(committed.effects).await?;
        Ok(())
    }

    /// ModifyVolume.
    pub async fn modify_volume(&self, cmd: ModifyVolume) -> Result<Modified, ModifyVolumeError> {
        let committed = self.transact(|tx| modify_volume(tx, &cmd))?;
        self.apply(committed.effects).await?;
        let m = committed.value;
        tracing::info!(volume = %cmd.volume_id, size = m.spec.size_gib, kind = %m.kind, iops = m.spec.iops, "volume modified");
        Ok(m)
    }
}
