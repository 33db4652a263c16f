//! Block device mappings: RunInstances' `BlockDeviceMapping.N` turned into launch volumes,
//! RegisterImage's root snapshot, and the `blockDeviceMapping` of DescribeInstances.

use std::collections::HashMap;

use rusqlite::Connection;

use super::Call;
use super::errors::ApiError;
use super::volumes::{
    check_snapshot_id, snapshot_not_found, spec_error, valid_data_device, volume_type,
};
use super::xml::Xml;
use crate::compute::disks::{LaunchVolume, ROOT_DEVICE, VolumeSource};
use crate::state::images::ImageRow;
use crate::state::snapshots::{self, SnapshotRow};
use crate::state::volumes::{self, VolumeRow};
use crate::storage::types::{GIB, VolumeSpec, VolumeType};

/// The most mappings one request may carry.
const MAX_MAPPINGS: u32 = 64;

/// `InvalidBlockDeviceMapping`.
fn bad_mapping(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidBlockDeviceMapping", message)
}

/// One `BlockDeviceMapping.N` as given.
struct Mapping {
    device: String,
    no_device: bool,
    snapshot: Option<String>,
    size: Option<u64>,
    kind: Option<VolumeType>,
    iops: Option<u64>,
    throughput: Option<u64>,
    delete_on_termination: Option<bool>,
}

fn mappings(c: &Call<'_>) -> Result<Vec<Mapping>, ApiError> {
    let mut out: Vec<Mapping> = Vec::new();
    for n in 1..=MAX_MAPPINGS {
        let key = |k: &str| format!("BlockDeviceMapping.{n}.{k}");
        let Some(device) = c.p.get(&key("DeviceName")) else {
            if c.p.get(&key("Ebs.VolumeSize")).is_some() || c.p.get(&key("NoDevice")).is_some() {
                return Err(ApiError::missing(&key("DeviceName")));
            }
            continue;
        };
        if out.iter().any(|m| m.device == device) {
            return Err(bad_mapping(format!(
                "The device name {device} is mapped twice"
            )));
        }
        let int = |k: &str| -> Result<Option<u64>, ApiError> {
            Ok(c.p.int(&key(k), 0, i64::from(u32::MAX))?.map(|v| v as u64))
        };
        let snapshot = c.p.get(&key("Ebs.SnapshotId")).map(str::to_string);
        if let Some(s) = &snapshot {
            check_snapshot_id(s)?;
        }
        if c.p.bool(&key("Ebs.Encrypted"))? {
            return Err(ApiError::invalid(
                &key("Ebs.Encrypted"),
                "encrypted volumes are not supported by this agent",
            ));
        }
        out.push(Mapping {
            device: device.to_string(),
            no_device: c.p.get(&key("NoDevice")).is_some(),
            snapshot,
            size: int("Ebs.VolumeSize")?,
            kind: c
                .p
                .get(&key("Ebs.VolumeType"))
                .map(|t| volume_type(&key("Ebs.VolumeType"), Some(t)))
                .transpose()?,
            iops: int("Ebs.Iops")?,
            throughput: int("Ebs.Throughput")?,
            delete_on_termination: c
                .p
                .get(&key("Ebs.DeleteOnTermination"))
                .map(|_| c.p.bool(&key("Ebs.DeleteOnTermination")))
                .transpose()?,
        });
    }
    Ok(out)
}

/// Size in GiB of an image's root source, and the source.
fn image_root(
    conn: &Connection,
    image: &ImageRow,
) -> Result<Option<(u64, VolumeSource)>, ApiError> {
    if let Some(snap) = &image.root_snapshot_id {
        let s = snapshots::get(conn, snap)?.ok_or_else(|| snapshot_not_found(snap))?;
        if s.state != "completed" {
            return Err(ApiError::new(
                "IncorrectState",
                format!(
                    "The root snapshot {snap} of image {} is {}; launch once it is completed",
                    image.id, s.state
                ),
            ));
        }
        return Ok(Some((
            s.volume_size_gib,
            VolumeSource::Snapshot(snap.clone()),
        )));
    }
    if let Some(file) = &image.root_volume {
        let len = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        let gib = len.div_ceil(GIB).max(1);
        return Ok(Some((gib, VolumeSource::ImageFile(file.clone()))));
    }
    Ok(None)
}

/// The volumes RunInstances makes for each instance of `image`: the root (from the image,
/// resized or retyped by a mapping of `/dev/xvda`), then the mapped data volumes.
pub fn launch_plan(c: &Call<'_>, image: &ImageRow) -> Result<Vec<LaunchVolume>, ApiError> {
    let maps = mappings(c)?;
    let conn = c.st.db.lock();
    let mut plan = Vec::new();
    let root_map = maps.iter().find(|m| m.device == ROOT_DEVICE);
    let mut root = image_root(&conn, image)?;
    if let Some(m) = root_map {
        if m.no_device {
            root = None;
        } else if let Some(s) = &m.snapshot {
            let row = snapshots::get(&conn, s)?.ok_or_else(|| snapshot_not_found(s))?;
            root = Some((row.volume_size_gib, VolumeSource::Snapshot(s.clone())));
        }
    }
    let root_wanted = root.is_some() || root_map.is_some_and(|m| !m.no_device && m.size.is_some());
    if root_wanted {
        let (min, source) = root.unwrap_or((1, VolumeSource::Empty));
        let m = root_map;
        let size = m.and_then(|m| m.size).unwrap_or(min);
        if size < min {
            return Err(bad_mapping(format!(
                "Volume of size {size}GiB is smaller than the image's root ({min}GiB) for {ROOT_DEVICE}"
            )));
        }
        let kind = m.and_then(|m| m.kind).unwrap_or(VolumeType::Gp3);
        if matches!(kind, VolumeType::St1 | VolumeType::Sc1) {
            return Err(bad_mapping(format!(
                "{kind} volumes cannot be root volumes"
            )));
        }
        let spec = VolumeSpec::new(
            kind,
            size,
            m.and_then(|m| m.iops),
            m.and_then(|m| m.throughput),
        )
        .map_err(spec_error)?;
        plan.push(LaunchVolume {
            device: ROOT_DEVICE.to_string(),
            spec,
            source,
            delete_on_termination: m.and_then(|m| m.delete_on_termination).unwrap_or(true),
        });
    }
    for m in maps
        .iter()
        .filter(|m| m.device != ROOT_DEVICE && !m.no_device)
    {
        if !valid_data_device(&m.device) {
            return Err(bad_mapping(format!(
                "Invalid device name {}; use {ROOT_DEVICE} for the root, /dev/sdf to /dev/sdp or \
                 /dev/xvdf to /dev/xvdp for data volumes",
                m.device
            )));
        }
        let (min, source) = match &m.snapshot {
            Some(s) => {
                let row = snapshots::get(&conn, s)?.ok_or_else(|| snapshot_not_found(s))?;
                (row.volume_size_gib, VolumeSource::Snapshot(s.clone()))
            }
            None => (0, VolumeSource::Empty),
        };
        let size = match (m.size, min) {
            (None, 0) => {
                return Err(ApiError::missing(&format!(
                    "BlockDeviceMapping for {}: Ebs.VolumeSize (or Ebs.SnapshotId)",
                    m.device
                )));
            }
            (Some(s), min) if s < min => {
                return Err(bad_mapping(format!(
                    "Volume of size {s}GiB is smaller than its snapshot ({min}GiB) for {}",
                    m.device
                )));
            }
            (s, min) => s.unwrap_or(min),
        };
        let kind = m.kind.unwrap_or(VolumeType::Gp3);
        let spec = VolumeSpec::new(kind, size, m.iops, m.throughput).map_err(spec_error)?;
        plan.push(LaunchVolume {
            device: m.device.clone(),
            spec,
            source,
            delete_on_termination: m.delete_on_termination.unwrap_or(true),
        });
    }
    Ok(plan)
}

/// RegisterImage's root snapshot: `BlockDeviceMapping.N.Ebs.SnapshotId` of the root device
/// (`RootDeviceName`, default `/dev/xvda`), checked to exist.
pub fn register_root_snapshot(c: &Call<'_>) -> Result<Option<String>, ApiError> {
    let root = c.p.get("RootDeviceName").unwrap_or(ROOT_DEVICE);
    let maps = mappings(c)?;
    let Some(m) = maps.iter().find(|m| m.device == root) else {
        return Ok(None);
    };
    let Some(s) = &m.snapshot else {
        return Ok(None);
    };
    if snapshots::get(&c.st.db.lock(), s)?.is_none() {
        return Err(snapshot_not_found(s));
    }
    Ok(Some(s.clone()))
}

/// The attached volumes of every instance, by instance id.
pub fn attached_map(conn: &Connection) -> rusqlite::Result<HashMap<String, Vec<VolumeRow>>> {
    let mut out: HashMap<String, Vec<VolumeRow>> = HashMap::new();
    for v in volumes::query(conn, &[], &[], &[])? {
        if let Some(i) = v.instance_id.clone() {
            out.entry(i).or_default().push(v);
        }
    }
    for list in out.values_mut() {
        list.sort_by_key(|v| {
            crate::compute::disks::device_order(v.device.as_deref().unwrap_or(""))
        });
    }
    Ok(out)
}

/// An instance's `rootDeviceType`, `rootDeviceName` and `blockDeviceMapping`.
pub fn instance_mapping(x: &mut Xml, vols: &[VolumeRow]) {
    let has_root = vols
        .iter()
        .any(|v| v.device.as_deref() == Some(ROOT_DEVICE));
    x.leaf(
        "rootDeviceType",
        if has_root { "ebs" } else { "instance-store" },
    )
    .leaf("rootDeviceName", ROOT_DEVICE)
    .open("blockDeviceMapping");
    for v in vols {
        x.open("item")
            .leaf("deviceName", v.device.as_deref().unwrap_or(""))
            .open("ebs")
            .leaf("volumeId", &v.id)
            .leaf("status", "attached")
            .leaf("attachTime", v.attach_time.as_deref().unwrap_or(""))
            .leaf("deleteOnTermination", v.delete_on_termination.to_string())
            .close("ebs")
            .close("item");
    }
    x.close("blockDeviceMapping");
}

/// The root snapshots of `images`, by snapshot id.
pub fn root_snapshots(
    conn: &Connection,
    images: &[ImageRow],
) -> rusqlite::Result<HashMap<String, SnapshotRow>> {
    let ids: Vec<String> = images
        .iter()
        .filter_map(|i| i.root_snapshot_id.clone())
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(snapshots::query(conn, &ids)?
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect())
}

/// An image's `imageState`: pending while its root snapshot is, failed if that failed or
/// is gone.
pub fn image_state(image: &ImageRow, snap: Option<&SnapshotRow>) -> &'static str {
    match (&image.root_snapshot_id, snap) {
        (None, _) => "available",
        (Some(_), Some(s)) if s.state == "completed" => "available",
        (Some(_), Some(s)) if s.state == "pending" => "pending",
        _ => "failed",
    }
}

/// An image's `blockDeviceMapping`: its root, from a snapshot or from its root-volume file.
pub fn image_mapping(x: &mut Xml, image: &ImageRow, snap: Option<&SnapshotRow>) {
    x.open("blockDeviceMapping");
    let size = match (&image.root_snapshot_id, snap, &image.root_volume) {
        (Some(_), Some(s), _) => Some(s.volume_size_gib),
        (None, _, Some(file)) => Some(
            std::fs::metadata(file)
                .map(|m| m.len())
                .unwrap_or(0)
                .div_ceil(GIB)
                .max(1),
        ),
        _ => None,
    };
    if let Some(size) = size {
        x.open("item").leaf("deviceName", ROOT_DEVICE).open("ebs");
        x.leaf_opt("snapshotId", image.root_snapshot_id.as_ref())
            .leaf("volumeSize", size.to_string())
            .leaf("deleteOnTermination", "true")
            .leaf("volumeType", "gp3")
            .leaf("encrypted", "false")
            .close("ebs")
            .close("item");
    }
    x.close("blockDeviceMapping");
}
