//! An image's block devices as DescribeImages shows them, with the image's state, which
//! follows its snapshots (RegisterImage records them: `control::ec2::block_devices`).

use std::collections::HashMap;

use rusqlite::Connection;
use shapes::ec2;

use super::volumes::int32;
use host::compute::disks::ROOT_DEVICE;
use host::storage::types::GIB;
use state::images::{ImageDevice, ImageRow};
use state::snapshots::{self, SnapshotRow};

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
