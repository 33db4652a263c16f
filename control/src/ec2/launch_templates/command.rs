//! Launch data made into the RunInstances command: the checks EC2 makes when it launches
//! (an image named and well formed, a known instance type, user data in base64 within
//! 16 KiB, one network interface at device index 0 and not beside instance-level network
//! parameters, well-formed mappings). A template's data is only checked here, at launch, as
//! EC2 does.

use std::net::Ipv4Addr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use host::compute::catalog;
use host::compute::launch::LaunchSpec;
use host::storage::types::VolumeType;
use state::well_formed_id;

use super::data::{BlockDevice, LaunchData};
use crate::Refusal;
use crate::ec2::block_devices::Mapping;
use crate::ec2::instances::RunInstances;
use crate::ec2::launch_network::LaunchNetwork;
use crate::ec2::metadata_options::ModifyMetadataOptions;

/// Largest decoded user data, as on EC2.
pub const MAX_USER_DATA: usize = 16 * 1024;
/// The most block-device mappings one launch takes.
const MAX_MAPPINGS: usize = 64;

/// How many instances a launch makes, and its idempotency token (RunInstances' own).
#[derive(Debug, Clone)]
pub struct Counts {
    /// `MinCount`.
    pub min: u32,
    /// `MaxCount`.
    pub max: u32,
    /// `ClientToken`.
    pub client_token: Option<String>,
}

/// Why launch data cannot be launched.
#[derive(Debug, thiserror::Error)]
pub enum LaunchDataError {
    /// A required parameter is missing.
    #[error("The request must contain the parameter {0}")]
    Missing(String),
    /// The image id is not an `ami-` id.
    #[error("Invalid id: \"{0}\" (expecting \"ami-...\")")]
    MalformedImage(String),
    /// A snapshot id is not a `snap-` id.
    #[error("Invalid id: \"{0}\" (expecting \"snap-...\")")]
    MalformedSnapshot(String),
    /// A parameter's value cannot be.
    #[error("Value for parameter {field} is invalid: {message}")]
    Invalid {
        /// The parameter.
        field: String,
        /// Why.
        message: String,
    },
    /// An instance type the catalog does not have.
    #[error("Invalid value '{0}' for InstanceType. Allowed values: {names}", names = catalog::names())]
    InstanceType(String),
    /// Instance-level network parameters beside a network interface.
    #[error(
        "Network interfaces and an instance-level subnet, security groups or private IP address \
         may not be specified on the same request"
    )]
    NetworkCombination,
    /// A block-device mapping that cannot be.
    #[error("{0}")]
    Mapping(String),
}

impl Refusal for LaunchDataError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::Missing(_) => "MissingParameter",
            Self::MalformedImage(_) => "InvalidAMIID.Malformed",
            Self::MalformedSnapshot(_) => "InvalidSnapshotID.Malformed",
            Self::Invalid { .. } | Self::InstanceType(_) => "InvalidParameterValue",
            Self::NetworkCombination => "InvalidParameterCombination",
            Self::Mapping(_) => "InvalidBlockDeviceMapping",
        })
    }
}

fn invalid(field: &str, message: impl Into<String>) -> LaunchDataError {
    LaunchDataError::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

/// The RunInstances command for `data` launched `counts` times.
pub fn run_instances(data: &LaunchData, counts: &Counts) -> Result<RunInstances, LaunchDataError> {
    let image_id = match data.image_id.as_deref() {
        Some(id) if !id.is_empty() => id,
        _ => return Err(LaunchDataError::Missing("ImageId".into())),
    };
    if !well_formed_id(image_id, "ami") {
        return Err(LaunchDataError::MalformedImage(image_id.to_string()));
    }
    let type_name = data.instance_type.as_deref().unwrap_or("t2.micro");
    let instance_type = catalog::lookup(type_name).ok_or_else(|| LaunchDataError::Invalid {
        field: "InstanceType".into(),
        message: format!(
            "'{type_name}' is not a type. Allowed values: {}",
            catalog::names()
        ),
    })?;
    let shutdown = data.shutdown_behavior.as_deref().unwrap_or("stop");
    if !matches!(shutdown, "stop" | "terminate") {
        return Err(invalid(
            "InstanceInitiatedShutdownBehavior",
            format!("'{shutdown}' is not one of: stop, terminate"),
        ));
    }
    Ok(RunInstances {
        image_id: image_id.to_string(),
        spec: LaunchSpec {
            instance_type,
            min_count: counts.min,
            max_count: counts.max,
            key_name: data.key_name.clone(),
            user_data: user_data(data.user_data.as_deref())?,
            shutdown_behavior: shutdown.to_string(),
            client_token: counts.client_token.clone(),
            tags: data.tags_for("instance"),
            volume_tags: data.tags_for("volume"),
            eni_tags: data.tags_for("network-interface"),
            hibernation: data.hibernation.unwrap_or(false),
            detailed_monitoring: data.monitoring.unwrap_or(false),
        },
        network: network(data, counts.max)?,
        block_devices: mappings(&data.block_devices)?,
    })
}

/// User data: base64 of at most [`MAX_USER_DATA`] bytes; empty is none.
fn user_data(given: Option<&str>) -> Result<Option<String>, LaunchDataError> {
    let ud = match given.map(str::trim) {
        None | Some("") => return Ok(None),
        Some(ud) => ud,
    };
    let bytes = B64
        .decode(ud)
        .map_err(|_| invalid("UserData", "user data must be base64-encoded"))?;
    if bytes.len() > MAX_USER_DATA {
        return Err(invalid(
            "UserData",
            format!(
                "user data is {} bytes; the limit is {MAX_USER_DATA}",
                bytes.len()
            ),
        ));
    }
    Ok(Some(ud.to_string()))
}

/// A private address given as `field`, if given.
pub fn ipv4(v: Option<&str>, field: &str) -> Result<Option<Ipv4Addr>, LaunchDataError> {
    v.map(|v| {
        v.parse()
            .map_err(|_| invalid(field, format!("'{v}' is not an IPv4 address")))
    })
    .transpose()
}

/// The network a launch asks for: the instance-level subnet, groups and address, or its one
/// network interface (device index 0), and its metadata options.
fn network(data: &LaunchData, max_count: u32) -> Result<LaunchNetwork, LaunchDataError> {
    let (subnet_id, group_ids, private_ip, public_ip) = match data.network_interfaces.as_slice() {
        [] => (
            data.subnet_id.clone(),
            data.security_group_ids.clone(),
            ipv4(data.private_ip.as_deref(), "PrivateIpAddress")?,
            None,
        ),
        [first, rest @ ..] => {
            if data.subnet_id.is_some()
                || !data.security_group_ids.is_empty()
                || !data.security_groups.is_empty()
                || data.private_ip.is_some()
            {
                return Err(LaunchDataError::NetworkCombination);
            }
            if !rest.is_empty() {
                return Err(invalid(
                    "NetworkInterface.2",
                    "only one network interface (NetworkInterface.1, device index 0) can be given at launch; attach more to the stopped instance",
                ));
            }
            if first.network_interface_id.is_some() {
                return Err(invalid(
                    "NetworkInterface.1.NetworkInterfaceId",
                    "launching with an existing network interface is not supported; attach it to the stopped instance instead",
                ));
            }
            if let Some(index) = first.device_index
                && index != 0
            {
                return Err(invalid(
                    "NetworkInterface.1.DeviceIndex",
                    format!("'{index}' is not an integer from 0 to 0"),
                ));
            }
            (
                first.subnet_id.clone(),
                first.groups.clone(),
                ipv4(
                    first.private_ip.as_deref(),
                    "NetworkInterface.1.PrivateIpAddress",
                )?,
                first.associate_public_ip,
            )
        }
    };
    let m = data.metadata.clone().unwrap_or_default();
    Ok(LaunchNetwork {
        subnet_id,
        group_ids,
        group_names: data.security_groups.clone(),
        private_ip,
        public_ip,
        metadata: ModifyMetadataOptions {
            instance_id: String::new(),
            http_tokens: m.http_tokens,
            http_endpoint: m.http_endpoint,
            hop_limit: m.hop_limit,
        },
        max_count,
    })
}

/// A count a mapping gives: not negative.
fn count(field: &str, value: Option<i64>) -> Result<Option<u64>, LaunchDataError> {
    value
        .map(|n| {
            u64::try_from(n)
                .ok()
                .filter(|n| *n <= u64::from(u32::MAX))
                .ok_or_else(|| {
                    invalid(
                        field,
                        format!("'{n}' is not an integer from 0 to {}", u32::MAX),
                    )
                })
        })
        .transpose()
}

/// Every `BlockDeviceMapping.N`, checked for form: a device name when anything is mapped,
/// each device once, well-formed snapshot ids, no encryption, counts not negative, known
/// volume types.
pub fn mappings(given: &[BlockDevice]) -> Result<Vec<Mapping>, LaunchDataError> {
    let mut out: Vec<Mapping> = Vec::new();
    for (i, m) in given.iter().take(MAX_MAPPINGS).enumerate() {
        let key = |k: &str| format!("BlockDeviceMapping.{}.{k}", i + 1);
        let Some(device) = m.device_name.as_deref() else {
            if m.volume_size.is_some() || m.no_device {
                return Err(LaunchDataError::Missing(key("DeviceName")));
            }
            continue;
        };
        if out.iter().any(|m| m.device == device) {
            return Err(LaunchDataError::Mapping(format!(
                "The device name {device} is mapped twice"
            )));
        }
        if let Some(s) = &m.snapshot_id
            && !well_formed_id(s, "snap")
        {
            return Err(LaunchDataError::MalformedSnapshot(s.clone()));
        }
        if m.encrypted == Some(true) {
            return Err(invalid(
                &key("Ebs.Encrypted"),
                "encrypted volumes are not supported by this agent",
            ));
        }
        let kind = m
            .volume_type
            .as_deref()
            .map(|t| {
                VolumeType::parse(t).ok_or_else(|| {
                    invalid(
                        &key("Ebs.VolumeType"),
                        format!("'{t}' is not one of: gp2, gp3, io1, io2, st1, sc1, standard"),
                    )
                })
            })
            .transpose()?;
        out.push(Mapping {
            device: device.to_string(),
            no_device: m.no_device,
            snapshot: m.snapshot_id.clone(),
            size: count(&key("Ebs.VolumeSize"), m.volume_size)?,
            kind,
            iops: count(&key("Ebs.Iops"), m.iops)?,
            throughput: count(&key("Ebs.Throughput"), m.throughput)?,
            delete_on_termination: m.delete_on_termination,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::data::NetworkInterface;
    use super::*;

    fn counts() -> Counts {
        Counts {
            min: 1,
            max: 1,
            client_token: None,
        }
    }

    #[test]
    fn a_launch_needs_a_well_formed_image_and_a_known_type() {
        let mut d = LaunchData::default();
        let e = run_instances(&d, &counts()).unwrap_err();
        assert_eq!(e.code(), Some("MissingParameter"));
        d.image_id = Some("nope".into());
        assert_eq!(
            run_instances(&d, &counts()).unwrap_err().code(),
            Some("InvalidAMIID.Malformed")
        );
        d.image_id = Some("ami-00000001".into());
        d.instance_type = Some("x9.huge".into());
        assert_eq!(
            run_instances(&d, &counts()).unwrap_err().code(),
            Some("InvalidParameterValue")
        );
        d.instance_type = None;
        d.user_data = Some("aGk=".into());
        let cmd = run_instances(&d, &counts()).unwrap();
        assert_eq!(cmd.spec.instance_type.name, "t2.micro");
        assert_eq!(cmd.spec.user_data.as_deref(), Some("aGk="));
        d.user_data = Some("*not base64*".into());
        assert_eq!(
            run_instances(&d, &counts()).unwrap_err().code(),
            Some("InvalidParameterValue")
        );
    }

    #[test]
    fn one_interface_at_index_zero_and_not_beside_instance_network() {
        let mut d = LaunchData {
            image_id: Some("ami-00000001".into()),
            network_interfaces: vec![NetworkInterface {
                device_index: Some(0),
                subnet_id: Some("subnet-00000001".into()),
                groups: vec!["sg-00000001".into()],
                associate_public_ip: Some(true),
                ..Default::default()
            }],
            ..Default::default()
        };
        let cmd = run_instances(&d, &counts()).unwrap();
        assert_eq!(cmd.network.subnet_id.as_deref(), Some("subnet-00000001"));
        assert_eq!(cmd.network.group_ids, ["sg-00000001"]);
        assert_eq!(cmd.network.public_ip, Some(true));
        d.subnet_id = Some("subnet-00000002".into());
        assert_eq!(
            run_instances(&d, &counts()).unwrap_err().code(),
            Some("InvalidParameterCombination")
        );
        d.subnet_id = None;
        d.network_interfaces[0].device_index = Some(1);
        assert_eq!(
            run_instances(&d, &counts()).unwrap_err().code(),
            Some("InvalidParameterValue")
        );
    }

    #[test]
    fn mappings_keep_the_field_names_and_checks() {
        let m = |dev: Option<&str>, size: i64| BlockDevice {
            device_name: dev.map(str::to_string),
            volume_size: Some(size),
            volume_type: Some("gp3".into()),
            ..Default::default()
        };
        let ok = mappings(&[m(Some("/dev/sdf"), 2)]).unwrap();
        assert_eq!((ok[0].size, ok[0].kind), (Some(2), Some(VolumeType::Gp3)));
        let e = mappings(&[m(Some("/dev/sdf"), 1), m(None, 1)]).unwrap_err();
        assert!(
            e.to_string().contains("BlockDeviceMapping.2.DeviceName"),
            "{e}"
        );
        let e = mappings(&[m(Some("/dev/sdf"), -1)]).unwrap_err();
        assert!(
            e.to_string()
                .contains("'-1' is not an integer from 0 to 4294967295"),
            "{e}"
        );
        let e = mappings(&[m(Some("/dev/sdf"), 1), m(Some("/dev/sdf"), 1)]).unwrap_err();
        assert_eq!(e.code(), Some("InvalidBlockDeviceMapping"));
    }
}
