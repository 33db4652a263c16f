//! Images made of instances: CreateImage takes a snapshot of each of an instance's volumes
//! at one point in time and records an AMI booting the instance's kernel with them.

use rusqlite::Connection;

use super::snapshots::{NotSnapshottable, pending_row, snapshottable};
use crate::{Plane, Refusal};
use host::compute::disks::{self, ROOT_DEVICE};
use host::compute::freeze::Quiesce;
use host::storage::types::{VolumeSpec, VolumeType};
use state::images::{self, ImageDevice, ImageRow};
use state::instances::{self, InstanceState};
use state::snapshots::{self, SnapshotRow};
use state::volumes::VolumeRow;
use state::{new_id, now_iso, tags};

/// The device of an image made from `vol` (an instance's volume) with its snapshot `snap`:
/// same size, type, performance and DeleteOnTermination.
pub fn device_from_volume(vol: &VolumeRow, snap: &str) -> ImageDevice {
    let kind = VolumeType::parse(&vol.volume_type).unwrap_or(VolumeType::Gp3);
    let spec = VolumeSpec {
        kind,
        size_gib: vol.size_gib,
        iops: vol.iops,
        throughput: vol.throughput,
    };
    let (iops, throughput) = spec.provisioned();
    ImageDevice {
        device: vol.device.clone().unwrap_or_default(),
        snapshot_id: Some(snap.to_string()),
        volume_size_gib: vol.size_gib,
        volume_type: kind.name().to_string(),
        iops,
        throughput,
        delete_on_termination: vol.delete_on_termination,
    }
}

/// CreateImage of an instance.
#[derive(Debug, Clone)]
pub struct CreateImage {
    /// The instance (well formed).
    pub instance_id: String,
    /// The image's name (3 to 128 characters).
    pub name: String,
    /// The image's description.
    pub description: String,
    /// Pause a running instance for the copy instead of shutting it down and booting it
    /// again.
    pub no_reboot: bool,
    /// Tags for the image.
    pub image_tags: Vec<(String, String)>,
    /// Tags for each snapshot.
    pub snapshot_tags: Vec<(String, String)>,
}

/// A recorded image and the pending snapshots it waits for.
#[derive(Debug, Clone)]
pub struct CreatedImage {
    /// The image.
    pub image: ImageRow,
    /// Its snapshots, one per volume, in guest order.
    pub snapshots: Vec<SnapshotRow>,
}

/// Why CreateImage failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateImageError {
    /// The instance does not exist.
    #[error("The instance ID '{0}' does not exist")]
    InstanceNotFound(String),
    /// Another image has the name.
    #[error("AMI name {0} is already in use by another image")]
    NameTaken(String),
    /// The instance is neither running nor stopped.
    #[error(
        "The instance '{instance}' is {state}; images are made of running or stopped instances"
    )]
    InstanceState {
        /// The instance.
        instance: String,
        /// Its state.
        state: &'static str,
    },
    /// One of its volumes cannot be snapshotted now.
    #[error("{0}")]
    NotSnapshottable(#[source] NotSnapshottable),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for CreateImageError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::InstanceNotFound(_) => Some("InvalidInstanceID.NotFound"),
            Self::NameTaken(_) => Some("InvalidAMIName.Duplicate"),
            Self::InstanceState { .. } => Some("IncorrectInstanceState"),
            Self::NotSnapshottable(e) => e.code(),
            Self::Db(_) => None,
        }
    }
}

/// Checks the instance and its volumes, and records a pending snapshot of each volume and
/// the image (same devices, sizes, types and DeleteOnTermination) that waits for them.
pub fn create_image(
    conn: &Connection,
    cmd: &CreateImage,
) -> Result<CreatedImage, CreateImageError> {
    let id = &cmd.instance_id;
    let inst =
        instances::get(conn, id)?.ok_or_else(|| CreateImageError::InstanceNotFound(id.clone()))?;
    if images::name_taken(conn, &cmd.name)? {
        return Err(CreateImageError::NameTaken(cmd.name.clone()));
    }
    let vols = disks::attached_in_guest_order(conn, id)?;
    if !matches!(inst.state, InstanceState::Running | InstanceState::Stopped) {
        return Err(CreateImageError::InstanceState {
            instance: id.clone(),
            state: inst.state.name(),
        });
    }
    for v in &vols {
        snapshottable(conn, v).map_err(CreateImageError::NotSnapshottable)?;
    }
    let desc = format!("Created by CreateImage({id}) for {}", cmd.name);
    let mut snaps = Vec::new();
    for v in &vols {
        let row = pending_row(v, &desc);
        snapshots::insert(conn, &row)?;
        tags::put(conn, &row.id, &cmd.snapshot_tags)?;
        snaps.push(row);
    }
    let devices: Vec<ImageDevice> = vols
        .iter()
        .zip(&snaps)
        .map(|(v, s)| device_from_volume(v, &s.id))
        .collect();
    let image = ImageRow {
        id: new_id("ami"),
        name: cmd.name.clone(),
        description: cmd.description.clone(),
        kernel: inst.kernel.clone(),
        initrd: inst.initrd.clone(),
        root_volume: None,
        boot_args: inst.boot_args.clone(),
        entry: inst.entry.clone(),
        architecture: inst.architecture.clone(),
        created: now_iso(),
        root_snapshot_id: devices
            .iter()
            .find(|d| d.device == ROOT_DEVICE)
            .and_then(|d| d.snapshot_id.clone()),
    };
    images::insert(conn, &image)?;
    images::insert_devices(conn, &image.id, &devices)?;
    tags::put(conn, &image.id, &cmd.image_tags)?;
    Ok(CreatedImage {
        image,
        snapshots: snaps,
    })
}

impl Plane {
    /// CreateImage: the image and its snapshots recorded in one transaction, the snapshots
    /// taken in the background from one copy (a running instance shut down and booted again
    /// for it, or only paused with `no_reboot`). The image is pending until they complete.
    pub async fn create_image(&self, cmd: CreateImage) -> Result<CreatedImage, CreateImageError> {
        let committed =
            self.transact(|tx| Ok::<_, CreateImageError>((create_image(tx, &cmd)?, Vec::new())))?;
        let created = committed.value;
        let how = if cmd.no_reboot {
            Quiesce::Pause
        } else {
            Quiesce::Reboot
        };
        let pairs = created
            .snapshots
            .iter()
            .map(|s| (s.id.clone(), s.volume_id.clone()))
            .collect();
        self.storage.start_snapshots(pairs, how);
        tracing::info!(image = %created.image.id, instance = %cmd.instance_id,
            volumes = created.snapshots.len(), no_reboot = cmd.no_reboot, "image created");
        Ok(created)
    }
}
