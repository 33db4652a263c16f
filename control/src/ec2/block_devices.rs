//! Block-device planning: the volumes RunInstances makes from an image's devices and the
//! request's `BlockDeviceMapping.N` over them, and the devices RegisterImage records.

use rusqlite::Connection;

use super::volumes::valid_data_device;
use crate::Refusal;
use host::compute::disks::{LaunchVolume, ROOT_DEVICE, VolumeSource};
use host::storage::types::{GIB, SpecError, VolumeSpec, VolumeType};
use state::images::{self, ImageDevice, ImageRow};
use state::snapshots;

/// Why a block-device mapping is refused.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// A snapshot it names does not exist.
    #[error("The snapshot '{0}' does not exist.")]
    SnapshotNotFound(String),
    /// A snapshot of the image is not completed.
    #[error("The snapshot {snapshot} of image {image} is {state}; launch once it is completed")]
    SnapshotNotCompleted {
        /// The snapshot.
        snapshot: String,
        /// The image.
        image: String,
        /// The snapshot's state.
        state: String,
    },
    /// A new volume has neither a size nor a snapshot.
    #[error(
        "The request must contain the parameter BlockDeviceMapping for {0}: Ebs.VolumeSize \
         (or Ebs.SnapshotId)"
    )]
    NoSize(String),
    /// A mapping that cannot be (a device name, a size, a root type).
    #[error("{0}")]
    Bad(String),
    /// The type, size, IOPS and throughput do not fit together.
    #[error("{0}")]
    Spec(#[source] SpecError),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for MappingError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::SnapshotNotFound(_) => "InvalidSnapshot.NotFound",
            Self::SnapshotNotCompleted { .. } => "IncorrectState",
            Self::NoSize(_) => "MissingParameter",
            Self::Bad(_) => "InvalidBlockDeviceMapping",
            Self::Spec(e) => e.code(),
            Self::Db(_) => return None,
        })
    }
}

/// One `BlockDeviceMapping.N` as given.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    /// `DeviceName`.
    pub device: String,
    /// `NoDevice` was given: the image's mapping of this device is dropped.
    pub no_device: bool,
    /// `Ebs.SnapshotId`.
    pub snapshot: Option<String>,
    /// `Ebs.VolumeSize`.
    pub size: Option<u64>,
    /// `Ebs.VolumeType`.
    pub kind: Option<VolumeType>,
    /// `Ebs.Iops`.
    pub iops: Option<u64>,
    /// `Ebs.Throughput`.
    pub throughput: Option<u64>,
    /// `Ebs.DeleteOnTermination`.
    pub delete_on_termination: Option<bool>,
}

/// A launch volume being planned: the image's mapping of a device, then the request's over it.
struct Planned {
    device: String,
    source: VolumeSource,
    /// The smallest size the source allows (its snapshot's or file's size), 0 for empty.
    min: u64,
    size: Option<u64>,
    kind: Option<VolumeType>,
    iops: Option<u64>,
    throughput: Option<u64>,
    delete_on_termination: Option<bool>,
}

/// The size and state of snapshot `id`, which a launch of `image` needs completed.
fn completed_snapshot(conn: &Connection, id: &str, image: &str) -> Result<u64, MappingError> {
    let s =
        snapshots::get(conn, id)?.ok_or_else(|| MappingError::SnapshotNotFound(id.to_string()))?;
    if s.state != "completed" {
        return Err(MappingError::SnapshotNotCompleted {
            snapshot: id.to_string(),
            image: image.to_string(),
            state: s.state,
        });
    }
    Ok(s.volume_size_gib)
}

/// The image's own devices: its root (from its snapshot or file) and the devices it records.
fn image_devices(conn: &Connection, image: &ImageRow) -> Result<Vec<Planned>, MappingError> {
    let recorded = images::devices(conn, &image.id)?;
    let kind = |d: &ImageDevice| VolumeType::parse(&d.volume_type);
    let mut out = Vec::new();
    let root_source = match (&image.root_snapshot_id, &image.root_volume) {
        (Some(snap), _) => Some((
            completed_snapshot(conn, snap, &image.id)?,
            VolumeSource::Snapshot(snap.clone()),
        )),
        (None, Some(file)) => {
            let len = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
            Some((
                len.div_ceil(GIB).max(1),
                VolumeSource::ImageFile(file.clone()),
            ))
        }
        (None, None) => None,
    };
    if let Some((min, source)) = root_source {
        let d = recorded.iter().find(|d| d.device == ROOT_DEVICE);
        out.push(Planned {
            device: ROOT_DEVICE.to_string(),
            source,
            min,
            size: d.map(|d| d.volume_size_gib),
            kind: d.and_then(kind),
            iops: d.and_then(|d| d.iops),
            throughput: d.and_then(|d| d.throughput),
            delete_on_termination: d.map(|d| d.delete_on_termination),
        });
    }
    for d in recorded.iter().filter(|d| d.device != ROOT_DEVICE) {
        let (min, source) = match &d.snapshot_id {
            Some(s) => (
                completed_snapshot(conn, s, &image.id)?,
                VolumeSource::Snapshot(s.clone()),
            ),
            None => (0, VolumeSource::Empty),
        };
        out.push(Planned {
            device: d.device.clone(),
            source,
            min,
            size: Some(d.volume_size_gib),
            kind: kind(d),
            iops: d.iops,
            throughput: d.throughput,
            delete_on_termination: Some(d.delete_on_termination),
        });
    }
    Ok(out)
}

/// Lays request mapping `m` over `p` (the image's mapping of the same device, or a new one).
fn overlay(conn: &Connection, p: &mut Planned, m: &Mapping) -> Result<(), MappingError> {
    if let Some(s) = &m.snapshot {
        let row =
            snapshots::get(conn, s)?.ok_or_else(|| MappingError::SnapshotNotFound(s.clone()))?;
        p.source = VolumeSource::Snapshot(s.clone());
        p.min = row.volume_size_gib;
        p.size = None;
    }
    if m.size.is_some() {
        p.size = m.size;
    }
    if m.kind.is_some() {
        // A new type does not inherit the image's provisioned performance.
        p.kind = m.kind;
        p.iops = None;
        p.throughput = None;
    }
    if m.iops.is_some() {
        p.iops = m.iops;
    }
    if m.throughput.is_some() {
        p.throughput = m.throughput;
    }
    if m.delete_on_termination.is_some() {
        p.delete_on_termination = m.delete_on_termination;
    }
    Ok(())
}

/// Checks a planned volume and gives its spec.
fn finish(p: Planned) -> Result<LaunchVolume, MappingError> {
    let what = if p.device == ROOT_DEVICE {
        "the image's root"
    } else {
        "its snapshot"
    };
    let spec = mapped_spec(
        &p.device,
        (p.size, p.min, what),
        p.kind,
        p.iops,
        p.throughput,
    )?;
    Ok(LaunchVolume {
        device: p.device,
        spec,
        source: p.source,
        delete_on_termination: p.delete_on_termination.unwrap_or(true),
    })
}

/// The spec of the volume mapped at `device`: `size` as asked (else the source's `min`, which
/// `source` names in the error when the size is smaller), `kind` (default gp3; st1 and sc1
/// cannot be roots), provisioned `iops` and `throughput`.
pub fn mapped_spec(
    device: &str,
    (size, min, source): (Option<u64>, u64, &str),
    kind: Option<VolumeType>,
    iops: Option<u64>,
    throughput: Option<u64>,
) -> Result<VolumeSpec, MappingError> {
    let size = match (size, min) {
        (None, 0) => {
            return Err(MappingError::NoSize(device.to_string()));
        }
        (Some(s), min) if s < min => {
            return Err(MappingError::Bad(format!(
                "Volume of size {s}GiB is smaller than {source} ({min}GiB) for {device}"
            )));
        }
        (s, min) => s.unwrap_or(min),
    };
    let kind = kind.unwrap_or(VolumeType::Gp3);
    if device == ROOT_DEVICE && matches!(kind, VolumeType::St1 | VolumeType::Sc1) {
        return Err(MappingError::Bad(format!(
            "{kind} volumes cannot be root volumes"
        )));
    }
    VolumeSpec::new(kind, size, iops, throughput).map_err(MappingError::Spec)
}

/// The volumes RunInstances makes for each instance of `image`: the image's devices (its
/// root, then the data volumes it records), each changed or dropped (`NoDevice`) by the
/// request's mapping of the same device, then the request's other mappings; root first.
pub fn launch_plan(
    conn: &Connection,
    image: &ImageRow,
    maps: &[Mapping],
) -> Result<Vec<LaunchVolume>, MappingError> {
    let mut planned = image_devices(conn, image)?;
    for m in maps {
        let at = planned.iter().position(|p| p.device == m.device);
        if m.no_device {
            if let Some(i) = at {
                planned.remove(i);
            }
            continue;
        }
        if m.device != ROOT_DEVICE && !valid_data_device(&m.device) {
            return Err(MappingError::Bad(format!(
                "Invalid device name {}; use {ROOT_DEVICE} for the root, /dev/sdf to /dev/sdp or \
                 /dev/xvdf to /dev/xvdp for data volumes",
                m.device
            )));
        }
        match at {
            Some(i) => overlay(conn, &mut planned[i], m)?,
            None => {
                let mut p = Planned {
                    device: m.device.clone(),
                    source: VolumeSource::Empty,
                    min: if m.device == ROOT_DEVICE { 1 } else { 0 },
                    size: None,
                    kind: None,
                    iops: None,
                    throughput: None,
                    delete_on_termination: None,
                };
                overlay(conn, &mut p, m)?;
                // A root mapping adds a root only with a size or a snapshot to make it from.
                if m.device == ROOT_DEVICE && m.size.is_none() && m.snapshot.is_none() {
                    continue;
                }
                planned.push(p);
            }
        }
    }
    planned.sort_by_key(|p| host::compute::disks::device_order(&p.device));
    planned.into_iter().map(finish).collect()
}

/// One RegisterImage mapping as an image device, checked as a launch would check it.
fn registered_device(
    conn: &Connection,
    m: &Mapping,
    device: &str,
) -> Result<ImageDevice, MappingError> {
    let min = match &m.snapshot {
        Some(s) => {
            snapshots::get(conn, s)?
                .ok_or_else(|| MappingError::SnapshotNotFound(s.clone()))?
                .volume_size_gib
        }
        None => 0,
    };
    let spec = mapped_spec(
        device,
        (m.size, min, "its snapshot"),
        m.kind,
        m.iops,
        m.throughput,
    )?;
    let (iops, throughput) = spec.provisioned();
    Ok(ImageDevice {
        device: device.to_string(),
        snapshot_id: m.snapshot.clone(),
        volume_size_gib: spec.size_gib,
        volume_type: spec.kind.name().to_string(),
        iops,
        throughput,
        delete_on_termination: m.delete_on_termination.unwrap_or(true),
    })
}

/// RegisterImage's `BlockDeviceMapping.N`: the root snapshot (the mapping of
/// `RootDeviceName`, default `/dev/xvda`, recorded as `/dev/xvda`) and every device, each
/// from an existing snapshot or empty with a size. `NoDevice` mappings are left out.
pub fn register_devices(
    conn: &Connection,
    root_device_name: Option<&str>,
    maps: &[Mapping],
) -> Result<(Option<String>, Vec<ImageDevice>), MappingError> {
    let root = root_device_name.unwrap_or(ROOT_DEVICE);
    let mut root_snapshot = None;
    let mut out = Vec::new();
    for m in maps.iter().filter(|m| !m.no_device) {
        if m.device == root {
            // A root mapping without a snapshot leaves the root to `RootVolumePath`.
            if m.snapshot.is_some() {
                root_snapshot = m.snapshot.clone();
                out.push(registered_device(conn, m, ROOT_DEVICE)?);
            }
            continue;
        }
        if !valid_data_device(&m.device) {
            return Err(MappingError::Bad(format!(
                "Invalid device name {}; data volumes are /dev/sdf to /dev/sdp or /dev/xvdf \
                 to /dev/xvdp",
                m.device
            )));
        }
        out.push(registered_device(conn, m, &m.device)?);
    }
    Ok((root_snapshot, out))
}
