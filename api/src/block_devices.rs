//! Block device mappings: `BlockDeviceMapping.N` as requests give them, RunInstances' launch
//! volumes (the image's devices with the request's mappings over them), and the
//! `blockDeviceMapping` of DescribeInstances.

use std::collections::HashMap;

use rusqlite::Connection;
use shapes::ec2;

use super::errors::ApiError;
use super::typed;
use super::volumes::{check_snapshot_id, count, volume_type};
use control::ec2::block_devices::Mapping;
use host::compute::disks::ROOT_DEVICE;
use state::volumes::{self, VolumeRow};

/// The most mappings one request may carry.
const MAX_MAPPINGS: u32 = 64;

/// `InvalidBlockDeviceMapping`.
pub(super) fn bad_mapping(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidBlockDeviceMapping", message)
}

/// Every `BlockDeviceMapping.N` of a typed request, checked for form.
pub fn typed_mappings(given: Option<&[ec2::BlockDeviceMapping]>) -> Result<Vec<Mapping>, ApiError> {
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
    use host::storage::types::VolumeType;

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
