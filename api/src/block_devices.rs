//! Block device mappings: `BlockDeviceMapping.N` as requests give them, RunInstances' launch
//! volumes (the image's devices with the request's mappings over them), and the
//! `blockDeviceMapping` of DescribeInstances.

use std::collections::HashMap;

use rusqlite::Connection;
use shapes::ec2;

use super::Call;
use super::errors::ApiError;
use super::typed;
use super::volumes::{
    check_snapshot_id, count, snapshot_not_found, spec_error, valid_data_device, volume_type,
};
use host::compute::disks::{LaunchVolume, ROOT_DEVICE, VolumeSource};
use host::storage::types::{GIB, VolumeSpec, VolumeType};
use state::images::{self, ImageDevice, ImageRow};
use state::snapshots;
use state::volumes::{self, VolumeRow};

/// The most mappings one request may carry.
const MAX_MAPPINGS: u32 = 64;

/// `InvalidBlockDeviceMapping`.
pub(super) fn bad_mapping(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidBlockDeviceMapping", message)
}

/// One `BlockDeviceMapping.N` as given.
#[derive(Debug)]
pub(super) struct Mapping {
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

/// Every `BlockDeviceMapping.N` of a typed request, checked for form.
pub(super) fn typed_mappings(
    given: Option<&[ec2::BlockDeviceMapping]>,
) -> Result<Vec<Mapping>, ApiError> {
    let mut out: Vec<Mapping> = Vec::new();
    let limit = usize::try_from(MAX_MAPPINGS).unwrap_or(usize::MAX);
    for (i, m) in given.unwrap_or_default().iter().take(limit).enumerate() {
        let n = i + 1;
        let key = |k: &str| format!("BlockDeviceMapping.{n}.{k}");
        let ebs = m.ebs.clone().unwrap_or_default();
        let Some(device) = m.device_name.as_deref() else {
            if ebs.volume_size.is_some() || m.no_device.is_some() {
                return Err(ApiError::missing(&key("DeviceName")));
            }
            continue;
        };
        if out.iter().any(|m| m.device == device) {
            return Err(bad_mapping(format!(
                "The device name {device} is mapped twice"
            )));
        }
        if let Some(s) = &ebs.snapshot_id {
            check_snapshot_id(s)?;
        }
        if ebs.encrypted == Some(true) {
            return Err(ApiError::invalid(
                &key("Ebs.Encrypted"),
                "encrypted volumes are not supported by this agent",
            ));
        }
        out.push(Mapping {
            device: device.to_string(),
            no_device: m.no_device.is_some(),
            snapshot: ebs.snapshot_id.clone(),
            size: count(&key("Ebs.VolumeSize"), ebs.volume_size)?,
            kind: ebs
                .volume_type
                .map(|t| volume_type(&key("Ebs.VolumeType"), Some(t.as_str())))
                .transpose()?,
            iops: count(&key("Ebs.Iops"), ebs.iops)?,
            throughput: count(&key("Ebs.Throughput"), ebs.throughput)?,
            delete_on_termination: ebs.delete_on_termination,
        });
    }
    Ok(out)
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
fn completed_snapshot(conn: &Connection, id: &str, image: &str) -> Result<u64, ApiError> {
    let s = snapshots::get(conn, id)?.ok_or_else(|| snapshot_not_found(id))?;
    if s.state != "completed" {
        return Err(ApiError::new(
            "IncorrectState",
            format!(
                "The snapshot {id} of image {image} is {}; launch once it is completed",
                s.state
            ),
        ));
    }
    Ok(s.volume_size_gib)
}

/// The image's own devices: its root (from its snapshot or file) and the devices it records.
fn image_devices(conn: &Connection, image: &ImageRow) -> Result<Vec<Planned>, ApiError> {
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
fn overlay(conn: &Connection, p: &mut Planned, m: &Mapping) -> Result<(), ApiError> {
    if let Some(s) = &m.snapshot {
        let row = snapshots::get(conn, s)?.ok_or_else(|| snapshot_not_found(s))?;
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
fn finish(p: Planned) -> Result<LaunchVolume, ApiError> {
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
pub(super) fn mapped_spec(
    device: &str,
    (size, min, source): (Option<u64>, u64, &str),
    kind: Option<VolumeType>,
    iops: Option<u64>,
    throughput: Option<u64>,
) -> Result<VolumeSpec, ApiError> {
    let size = match (size, min) {
        (None, 0) => {
            return Err(ApiError::missing(&format!(
                "BlockDeviceMapping for {device}: Ebs.VolumeSize (or Ebs.SnapshotId)"
            )));
        }
        (Some(s), min) if s < min => {
            return Err(bad_mapping(format!(
                "Volume of size {s}GiB is smaller than {source} ({min}GiB) for {device}"
            )));
        }
        (s, min) => s.unwrap_or(min),
    };
    let kind = kind.unwrap_or(VolumeType::Gp3);
    if device == ROOT_DEVICE && matches!(kind, VolumeType::St1 | VolumeType::Sc1) {
        return Err(bad_mapping(format!(
            "{kind} volumes cannot be root volumes"
        )));
    }
    VolumeSpec::new(kind, size, iops, throughput).map_err(spec_error)
}

/// The volumes RunInstances makes for each instance of `image`: the image's devices (its
/// root, then the data volumes it records), each changed or dropped (`NoDevice`) by the
/// request's mapping of the same device, then the request's other mappings; root first.
pub fn launch_plan(
    c: &Call<'_>,
    image: &ImageRow,
    given: Option<&[ec2::BlockDeviceMapping]>,
) -> Result<Vec<LaunchVolume>, ApiError> {
    let maps = typed_mappings(given)?;
    let conn = c.st.db.lock();
    let mut planned = image_devices(&conn, image)?;
    for m in &maps {
        let at = planned.iter().position(|p| p.device == m.device);
        if m.no_device {
            if let Some(i) = at {
                planned.remove(i);
            }
            continue;
        }
        if m.device != ROOT_DEVICE && !valid_data_device(&m.device) {
            return Err(bad_mapping(format!(
                "Invalid device name {}; use {ROOT_DEVICE} for the root, /dev/sdf to /dev/sdp or \
                 /dev/xvdf to /dev/xvdp for data volumes",
                m.device
            )));
        }
        match at {
            Some(i) => overlay(&conn, &mut planned[i], m)?,
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
                overlay(&conn, &mut p, m)?;
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

/// The attached volumes of every instance, by instance id.
pub fn attached_map(conn: &Connection) -> rusqlite::Result<HashMap<String, Vec<VolumeRow>>> {
    let mut out: HashMap<String, Vec<VolumeRow>> = HashMap::new();
    for v in volumes::query(conn, &[], &[], &[])? {
        if let Some(i) = v.instance_id.clone() {
            out.entry(i).or_default().push(v);
        }
    }
    for list in out.values_mut() {
        host::compute::disks::sort_guest_order(list);
    }
    Ok(out)
}

/// An instance's `rootDeviceType`, `rootDeviceName` and `blockDeviceMapping`.
pub fn instance_mapping(x: &mut ec2::Instance, vols: &[VolumeRow]) {
    let has_root = vols
        .iter()
        .any(|v| v.device.as_deref() == Some(ROOT_DEVICE));
    x.root_device_type = Some(if has_root {
        ec2::DeviceType::Ebs
    } else {
        ec2::DeviceType::InstanceStore
    });
    x.root_device_name = Some(ROOT_DEVICE.to_string());
    x.block_device_mappings = Some(attached_devices(vols));
}

/// The `blockDeviceMapping` of an instance's attached volumes.
pub fn attached_devices(vols: &[VolumeRow]) -> Vec<ec2::InstanceBlockDeviceMapping> {
    vols.iter()
        .map(|v| ec2::InstanceBlockDeviceMapping {
            device_name: Some(v.device.clone().unwrap_or_default()),
            ebs: Some(ec2::EbsInstanceBlockDevice {
                volume_id: Some(v.id.clone()),
                status: Some(ec2::AttachmentStatus::Attached),
                attach_time: v.attach_time.as_deref().and_then(typed::time),
                delete_on_termination: Some(v.delete_on_termination),
                ..Default::default()
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(device: Option<&str>, size: Option<i32>) -> ec2::BlockDeviceMapping {
        ec2::BlockDeviceMapping {
            device_name: device.map(str::to_string),
            ebs: Some(ec2::EbsBlockDevice {
                volume_size: size,
                volume_type: Some(ec2::VolumeType::Gp3),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn typed_mappings_keep_the_field_names_and_checks() {
        let ok = typed_mappings(Some(&[mapping(Some("/dev/sdf"), Some(2))])).unwrap();
        assert_eq!(
            (ok[0].device.as_str(), ok[0].size, ok[0].kind),
            ("/dev/sdf", Some(2), Some(VolumeType::Gp3))
        );
        let e = typed_mappings(Some(&[
            mapping(Some("/dev/sdf"), Some(1)),
            mapping(None, Some(1)),
        ]))
        .unwrap_err();
        assert_eq!(e.code, "MissingParameter");
        assert!(
            e.message.contains("BlockDeviceMapping.2.DeviceName"),
            "{}",
            e.message
        );
        let e = typed_mappings(Some(&[mapping(Some("/dev/sdf"), Some(-1))])).unwrap_err();
        assert!(
            e.message.contains("BlockDeviceMapping.1.Ebs.VolumeSize")
                && e.message
                    .contains("'-1' is not an integer from 0 to 4294967295"),
            "{}",
            e.message
        );
        let twice = [
            mapping(Some("/dev/sdf"), Some(1)),
            mapping(Some("/dev/sdf"), Some(1)),
        ];
        assert_eq!(
            typed_mappings(Some(&twice)).unwrap_err().code,
            "InvalidBlockDeviceMapping"
        );
    }
}
