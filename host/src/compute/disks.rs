//! An instance's disks: the EBS volumes planned at launch, making their files before the VMM
//! starts (root from the AMI's file or snapshot), the instance-store scratch disk, the vmm
//! `--disk` arguments.

use std::path::{Path, PathBuf};
use std::process::Child;

use rusqlite::Connection;

use super::supervisor::{self, InstanceDir, SpawnError};
use super::{Compute, catalog};
use crate::storage::types::{VolumeSpec, VolumeType};
use crate::storage::{self, files};
use state::instances::{InstanceRow, InstanceState};
use state::volumes::{self, VolumeRow, VolumeState};
use state::{new_id, now_iso};

/// The root device name every instance uses.
pub const ROOT_DEVICE: &str = "/dev/xvda";
/// The instance-store file in the instance directory.
pub const INSTANCE_STORE_FILE: &str = "ephemeral0.img";

/// Where a launch volume's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// An empty volume.
    Empty,
    /// A clone of the AMI's root-volume file.
    ImageFile(String),
    /// A restore of an EBS snapshot.
    Snapshot(String),
}

/// One volume RunInstances creates (from the AMI and `BlockDeviceMapping.N`).
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchVolume {
    /// Device name (`/dev/xvda` for the root).
    pub device: String,
    /// Type, size and performance.
    pub spec: VolumeSpec,
    /// Its content.
    pub source: VolumeSource,
    /// Deleted when the instance terminates.
    pub delete_on_termination: bool,
}

/// Records the launch volumes of instance `instance_id` (state `creating`: their files are
/// made when the VMM first starts), returning their ids. Runs in the launch transaction.
pub fn insert_launch_volumes(
    conn: &Connection,
    instance_id: &str,
    plan: &[LaunchVolume],
) -> rusqlite::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(plan.len());
    for v in plan {
        let (snapshot_id, source_image) = match &v.source {
            VolumeSource::Empty => (None, None),
            VolumeSource::ImageFile(p) => (None, Some(p.clone())),
            VolumeSource::Snapshot(s) => (Some(s.clone()), None),
        };
        let id = new_id("vol");
        volumes::insert(
            conn,
            &VolumeRow {
                seq: 0,
                id: id.clone(),
                volume_type: v.spec.kind.name().to_string(),
                size_gib: v.spec.size_gib,
                iops: v.spec.iops,
                throughput: v.spec.throughput,
                snapshot_id,
                source_image,
                state: VolumeState::Creating,
                created: now_iso(),
                instance_id: Some(instance_id.to_string()),
                device: Some(v.device.clone()),
                attach_time: Some(now_iso()),
                delete_on_termination: v.delete_on_termination,
            },
        )?;
        ids.push(id);
    }
    Ok(ids)
}

/// Errors preparing an instance's disks.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
    /// A volume's file could not be made.
    #[error("cannot make the file of {volume}")]
    Volume {
        /// The volume.
        volume: String,
        /// The cause.
        #[source]
        source: storage::MaterializeError,
    },
    /// The instance-store file could not be made.
    #[error("cannot make the instance store")]
    InstanceStore(#[source] files::FileError),
    /// The VMM did not start.
    #[error("cannot start the vmm")]
    Spawn(#[from] SpawnError),
    /// The VMM's jail could not be prepared.
    #[error("cannot jail the vmm")]
    Jail(#[from] super::jail::JailError),
    /// The blocking task failed.
    #[error("the disk preparation task failed")]
    Join(#[from] tokio::task::JoinError),
}

/// Orders devices as the guest sees them: the root first, then by name (`sdf` < `sdg`,
/// `/dev/sdf` and `/dev/xvdf` alike).
pub fn device_order(device: &str) -> (bool, String) {
    let suffix = device
        .trim_start_matches("/dev/")
        .trim_start_matches("xvd")
        .trim_start_matches("sd");
    (device != ROOT_DEVICE, suffix.to_string())
}

/// Sorts volumes as the guest sees them (see [`device_order`]).
pub fn sort_guest_order(vols: &mut [VolumeRow]) {
    vols.sort_by_key(|v| device_order(v.device.as_deref().unwrap_or_default()));
}

/// The volumes attached to instance `id`, in guest order.
pub fn attached_in_guest_order(conn: &Connection, id: &str) -> rusqlite::Result<Vec<VolumeRow>> {
    let mut vols = volumes::attached_to(conn, id)?;
    sort_guest_order(&mut vols);
    Ok(vols)
}

/// The instance-store size of `instance_type` in bytes (catalog GB are 10^9 bytes).
pub fn instance_store_bytes(instance_type: &str) -> Option<u64> {
    catalog::instance_store_gb(instance_type).map(|gb| gb * 1_000_000_000)
}

/// Makes the files of the instance's `creating` volumes, recreates its instance store
/// empty (unless it is rebooting), and returns the `--disk` arguments in guest order.
fn prepare(state_dir: &Path, db: &state::Db, row: &InstanceRow) -> Result<Vec<String>, DiskError> {
    let attached = attached_in_guest_order(&db.lock(), &row.id)?;
    let mut args = Vec::new();
    for v in &attached {
        if v.state == VolumeState::Creating {
            storage::materialize(state_dir, db, v).map_err(|source| DiskError::Volume {
                volume: v.id.clone(),
                source,
            })?;
            volumes::set_state(&db.lock(), &v.id, VolumeState::InUse)?;
        }
        args.push("--disk".to_string());
        args.push(disk_arg(&storage::volume_path(state_dir, &v.id), v));
    }
    if let Some(bytes) = instance_store_bytes(&row.instance_type) {
        let path = InstanceDir::new(state_dir, &row.id)
            .0
            .join(INSTANCE_STORE_FILE);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| {
                DiskError::InstanceStore(files::FileError::Create {
                    path: dir.display().to_string(),
                    source,
                })
            })?;
        }
        // Empty at every start; a reboot (the instance stays running) keeps it, as on EC2.
        if row.state != InstanceState::Running || !path.exists() {
            files::create_sparse(&path, bytes).map_err(DiskError::InstanceStore)?;
        }
        args.push("--disk".to_string());
        args.push(format!("{},id=ephemeral0", path.display()));
    }
    Ok(args)
}

/// A volume's disk id in its vmm and the guest's serial: `vol-0123...` without its dash, at
/// most 20 bytes.
pub fn drive_id(volume_id: &str) -> String {
    volume_id.replace('-', "").chars().take(20).collect()
}

/// The vmm `--disk` value of a volume: its file, its id as the guest's serial (the NVMe
/// style `vol0123...`, 20 bytes), and its type's rate limits.
pub fn disk_arg(path: &Path, v: &VolumeRow) -> String {
    let serial = drive_id(&v.id);
    let spec = VolumeSpec {
        kind: VolumeType::parse(&v.volume_type).unwrap_or(VolumeType::Gp3),
        size_gib: v.size_gib,
        iops: v.iops,
        throughput: v.throughput,
    };
    format!("{},id={serial},{}", path.display(), spec.rate_args())
}

/// The instance-store file of an instance.
pub fn instance_store_path(state_dir: &Path, id: &str) -> PathBuf {
    InstanceDir::new(state_dir, id).0.join(INSTANCE_STORE_FILE)
}

impl Compute {
    /// Prepares the instance's disks and spawns its VMM with them and `net_args`, in network
    /// namespace `netns`, resuming from `restore` if it hibernated.
    pub(super) async fn spawn_with_disks(
        &self,
        dir: &InstanceDir,
        row: &InstanceRow,
        net_args: Vec<String>,
        netns: Option<std::fs::File>,
        restore: Option<std::path::PathBuf>,
    ) -> Result<Child, DiskError> {
        let state_dir = self.config.state_dir.clone();
        let db = self.db.clone();
        let r = row.clone();
        let mut args = tokio::task::spawn_blocking(move || prepare(&state_dir, &db, &r)).await??;
        args.extend(net_args);
        let confinement = self.confine(dir, row)?;
        Ok(supervisor::spawn(
            &self.config.vmm,
            dir,
            row,
            &args,
            netns.as_ref(),
            restore.as_deref(),
            &confinement,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_first_then_by_name() {
        let mut d = vec!["/dev/sdg", "/dev/xvdf", ROOT_DEVICE, "/dev/sdh"];
        d.sort_by_key(|x| device_order(x));
        assert_eq!(d, vec![ROOT_DEVICE, "/dev/xvdf", "/dev/sdg", "/dev/sdh"]);
    }
}
