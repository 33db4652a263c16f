//! Block device mappings: `BlockDeviceMapping.N` as requests give them, RunInstances' launch
//! volumes (the image's devices with the request's mappings over them), and the
//! `blockDeviceMapping` of DescribeInstances.

use std::collections::HashMap;

use rusqlite::Connection;
use shapes::ec2;

use super::errors::ApiError;
use super::typed;
use control::ec2::block_devices::Mapping;
use control::ec2::launch_templates::command::mappings;
use host::compute::disks::ROOT_DEVICE;
use state::volumes::{self, VolumeRow};

/// Every `BlockDeviceMapping.N` of a typed request, checked for form as a launch checks
/// them (`control::ec2::launch_templates::command::mappings`).
pub fn typed_mappings(given: Option<&[ec2::BlockDeviceMapping]>) -> Result<Vec<Mapping>, ApiError> {
    let devices: Vec<_> = given
        .unwrap_or_default()
        .iter()
        .map(super::launch_templates::data::block_device)
        .collect();
    mappings(&devices).map_err(|e| ApiError::refused(&e))
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
