//! An image's block devices: recorded by RegisterImage (`BlockDeviceMapping.N`), and shown by DescribeImages with the
//! image's state, which follows its snapshots.

use std::collections::HashMap;

use rusqlite::Connection;
use shapes::ec2;

use super::Call;
use super::block_devices::{Mapping, bad_mapping, mapped_spec, typed_mappings};
use super::errors::ApiError;
use super::volumes::{int32, snapshot_not_found, valid_data_device};
use host::compute::disks::ROOT_DEVICE;
use host::storage::types::GIB;
use state::images::{ImageDevice, ImageRow};
use state::snapshots::{self, SnapshotRow};

/// One RegisterImage mapping as an image device, checked as a launch would check it.
fn registered_device(
    conn: &Connection,
    m: &Mapping,
    device: &str,
) -> Result<ImageDevice, ApiError> {
    let min = match &m.snapshot {
        Some(s) => {
            snapshots::get(conn, s)?
                .ok_or_else(|| snapshot_not_found(s))?
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
    c: &Call<'_>,
    root_device_name: Option<&str>,
    given: Option<&[ec2::BlockDeviceMapping]>,
) -> Result<(Option<String>, Vec<ImageDevice>), ApiError> {
    let root = root_device_name.unwrap_or(ROOT_DEVICE);
    let maps = typed_mappings(given)?;
    let conn = c.st.db.lock();
    let mut root_snapshot = None;
    let mut out = Vec::new();
    for m in maps.iter().filter(|m| !m.no_device) {
        if m.device == root {
            // A root mapping without a snapshot leaves the root to `RootVolumePath`.
            if m.snapshot.is_some() {
                root_snapshot = m.snapshot.clone();
                out.push(registered_device(&conn, m, ROOT_DEVICE)?);
            }
            continue;
        }
        if !valid_data_device(&m.device) {
            return Err(bad_mapping(format!(
                "Invalid device name {}; data volumes are /dev/sdf to /dev/sdp or /dev/xvdf \
                 to /dev/xvdp",
                m.device
            )));
        }
        out.push(registered_device(&conn, m, &m.device)?);
    }
    Ok((root_snapshot, out))
}

/// Every snapshot `images` use (root or other device), by snapshot id.
pub fn image_snapshots(
    conn: &Connection,
    images: &[ImageRow],
    devices: &HashMap<String, Vec<ImageDevice>>,
) -> rusqlite::Result<HashMap<String, SnapshotRow>> {
    let mut ids: Vec<String> = images
        .iter()
        .filter_map(|i| i.root_snapshot_id.clone())
        .collect();
    ids.extend(
        devices
            .values()
            .flatten()
            .filter_map(|d| d.snapshot_id.clone()),
    );
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(snapshots::query(conn, &ids)?
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect())
}

/// An image's `imageState`: pending while any of its snapshots is, failed if one failed or
/// is gone, else available.
pub fn image_state(
    image: &ImageRow,
    devices: &[ImageDevice],
    snaps: &HashMap<String, SnapshotRow>,
) -> &'static str {
    let ids = image
        .root_snapshot_id
        .iter()
        .chain(devices.iter().filter_map(|d| d.snapshot_id.as_ref()));
    let mut state = "available";
    for id in ids {
        match snaps.get(id).map(|s| s.state.as_str()) {
            Some("completed") => {}
            Some("pending") => state = "pending",
            _ => return "failed",
        }
    }
    state
}

/// An image's `blockDeviceMapping`: its recorded devices, or for an image registered from
/// files, its root-volume file.
pub fn image_mapping(
    image: &ImageRow,
    devices: &[ImageDevice],
    snaps: &HashMap<String, SnapshotRow>,
) -> Vec<ec2::BlockDeviceMapping> {
    let mut out = Vec::new();
    let mut item = |d: &ImageDevice| {
        out.push(ec2::BlockDeviceMapping {
            device_name: Some(d.device.clone()),
            ebs: Some(ec2::EbsBlockDevice {
                snapshot_id: d.snapshot_id.clone(),
                volume_size: Some(int32(d.volume_size_gib)),
                delete_on_termination: Some(d.delete_on_termination),
                volume_type: ec2::VolumeType::from_wire(&d.volume_type),
                iops: d.iops.map(int32),
                throughput: d.throughput.map(int32),
                encrypted: Some(false),
                ..ec2::EbsBlockDevice::default()
            }),
            ..ec2::BlockDeviceMapping::default()
        });
    };
    let has_root = devices.iter().any(|d| d.device == ROOT_DEVICE);
    let legacy_root = match (&image.root_snapshot_id, &image.root_volume) {
        _ if has_root => None,
        (Some(s), _) => snaps.get(s).map(|s| s.volume_size_gib),
        (None, Some(file)) => Some(
            std::fs::metadata(file)
                .map(|m| m.len())
                .unwrap_or(0)
                .div_ceil(GIB)
                .max(1),
        ),
        (None, None) => None,
    };
    if let Some(size) = legacy_root {
        item(&ImageDevice {
            device: ROOT_DEVICE.to_string(),
            snapshot_id: image.root_snapshot_id.clone(),
            volume_size_gib: size,
            volume_type: "gp3".into(),
            iops: None,
            throughput: None,
            delete_on_termination: true,
        });
    }
    let mut sorted: Vec<&ImageDevice> = devices.iter().collect();
    sorted.sort_by_key(|d| host::compute::disks::device_order(&d.device));
    for d in sorted {
        item(d);
    }
    out
}
