//! Launch data between the shapes and the control plane: RunInstances' parameters and a
//! template's `LaunchTemplateData` into `control`'s [`LaunchData`] (checked for form only:
//! the tags), and stored data back into `ResponseLaunchTemplateData`.

use shapes::StringEnum;
use shapes::ec2;

use super::super::errors::ApiError;
use super::super::typed;
use control::ec2::launch_templates::data::{
    BlockDevice, LaunchData, MetadataOptions, NetworkInterface, TagSpecification,
};

/// The resource types a launch tags, in the order shown.
const LAUNCH_TAGGED: [&str; 3] = ["instance", "volume", "network-interface"];

/// Tag specifications of the launch's resources, checked as RunInstances checks them.
fn tag_specifications(
    given: Option<&[ec2::TagSpecification]>,
) -> Result<Vec<TagSpecification>, ApiError> {
    let mut by_type = typed::tag_specifications_for(given, &LAUNCH_TAGGED)?;
    Ok(LAUNCH_TAGGED
        .iter()
        .filter_map(|t| {
            by_type.remove(*t).map(|tags| TagSpecification {
                resource_type: t.to_string(),
                tags,
            })
        })
        .collect())
}

fn enum_str<T: StringEnum>(v: Option<T>) -> Option<String> {
    v.map(|v| v.as_str().to_string())
}

fn metadata(
    tokens: Option<&str>,
    endpoint: Option<&str>,
    hop_limit: Option<i32>,
) -> MetadataOptions {
    MetadataOptions {
        http_tokens: tokens.map(str::to_string),
        http_endpoint: endpoint.map(str::to_string),
        hop_limit,
    }
}

/// One `BlockDeviceMapping.N` of RunInstances or CreateImage.
pub fn block_device(m: &ec2::BlockDeviceMapping) -> BlockDevice {
    let ebs = m.ebs.clone().unwrap_or_default();
    BlockDevice {
        device_name: m.device_name.clone(),
        no_device: m.no_device.is_some(),
        snapshot_id: ebs.snapshot_id,
        volume_size: ebs.volume_size.map(i64::from),
        volume_type: enum_str(ebs.volume_type),
        iops: ebs.iops.map(i64::from),
        throughput: ebs.throughput.map(i64::from),
        delete_on_termination: ebs.delete_on_termination,
        encrypted: ebs.encrypted,
    }
}

/// RunInstances' own launch parameters.
pub fn from_run(input: &ec2::RunInstancesRequest) -> Result<LaunchData, ApiError> {
    let m = input.metadata_options.clone().unwrap_or_default();
    Ok(LaunchData {
        image_id: input.image_id.clone(),
        instance_type: enum_str(input.instance_type),
        key_name: input.key_name.clone(),
        security_group_ids: input.security_group_ids.clone().unwrap_or_default(),
        security_groups: input.security_groups.clone().unwrap_or_default(),
        user_data: input.user_data.clone(),
        shutdown_behavior: enum_str(input.instance_initiated_shutdown_behavior),
        block_devices: input
            .block_device_mappings
            .iter()
            .flatten()
            .map(block_device)
            .collect(),
        network_interfaces: input
            .network_interfaces
            .iter()
            .flatten()
            .map(|n| NetworkInterface {
                device_index: n.device_index,
                subnet_id: n.subnet_id.clone(),
                groups: n.groups.clone().unwrap_or_default(),
                associate_public_ip: n.associate_public_ip_address,
                private_ip: n.private_ip_address.clone(),
                network_interface_id: n.network_interface_id.clone(),
                delete_on_termination: n.delete_on_termination,
                description: n.description.clone(),
            })
            .collect(),
        metadata: input.metadata_options.as_ref().map(|_| {
            metadata(
                m.http_tokens.map(|t| t.as_str()),
                m.http_endpoint.map(|e| e.as_str()),
                m.http_put_response_hop_limit,
            )
        }),
        tag_specifications: tag_specifications(input.tag_specifications.as_deref())?,
        monitoring: input.monitoring.as_ref().map(|m| m.enabled),
        hibernation: input
            .hibernation_options
            .as_ref()
            .and_then(|h| h.configured),
        subnet_id: input.subnet_id.clone(),
        private_ip: input.private_ip_address.clone(),
    })
}

/// A template's `LaunchTemplateData`.
pub fn from_template(input: &ec2::RequestLaunchTemplateData) -> Result<LaunchData, ApiError> {
    let specs: Vec<ec2::TagSpecification> = input
        .tag_specifications
        .iter()
        .flatten()
        .map(|s| ec2::TagSpecification {
            resource_type: s.resource_type,
            tags: s.tags.clone(),
        })
        .collect();
    Ok(LaunchData {
        image_id: input.image_id.clone(),
        instance_type: enum_str(input.instance_type),
        key_name: input.key_name.clone(),
        security_group_ids: input.security_group_ids.clone().unwrap_or_default(),
        security_groups: input.security_groups.clone().unwrap_or_default(),
        user_data: input.user_data.clone(),
        shutdown_behavior: enum_str(input.instance_initiated_shutdown_behavior),
        block_devices: input
            .block_device_mappings
            .iter()
            .flatten()
            .map(|m| {
                let ebs = m.ebs.clone().unwrap_or_default();
                BlockDevice {
                    device_name: m.device_name.clone(),
                    no_device: m.no_device.is_some(),
                    snapshot_id: ebs.snapshot_id,
                    volume_size: ebs.volume_size.map(i64::from),
                    volume_type: enum_str(ebs.volume_type),
                    iops: ebs.iops.map(i64::from),
                    throughput: ebs.throughput.map(i64::from),
                    delete_on_termination: ebs.delete_on_termination,
                    encrypted: ebs.encrypted,
                }
            })
            .collect(),
        network_interfaces: input
            .network_interfaces
            .iter()
            .flatten()
            .map(|n| NetworkInterface {
                device_index: n.device_index,
                subnet_id: n.subnet_id.clone(),
                groups: n.groups.clone().unwrap_or_default(),
                associate_public_ip: n.associate_public_ip_address,
                private_ip: n.private_ip_address.clone(),
                network_interface_id: n.network_interface_id.clone(),
                delete_on_termination: n.delete_on_termination,
                description: n.description.clone(),
            })
            .collect(),
        metadata: input.metadata_options.as_ref().map(|m| {
            metadata(
                m.http_tokens.map(|t| t.as_str()),
                m.http_endpoint.map(|e| e.as_str()),
                m.http_put_response_hop_limit,
            )
        }),
        tag_specifications: tag_specifications(Some(&specs))?,
        monitoring: input.monitoring.as_ref().and_then(|m| m.enabled),
        hibernation: input
            .hibernation_options
            .as_ref()
            .and_then(|h| h.configured),
        subnet_id: None,
        private_ip: None,
    })
}

fn parsed<T: StringEnum>(v: Option<&String>) -> Option<T> {
    v.and_then(|s| T::from_wire(s))
}

fn list<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// Stored data as DescribeLaunchTemplateVersions shows it.
pub fn response(d: &LaunchData) -> ec2::ResponseLaunchTemplateData {
    ec2::ResponseLaunchTemplateData {
        image_id: d.image_id.clone(),
        instance_type: parsed(d.instance_type.as_ref()),
        key_name: d.key_name.clone(),
        security_group_ids: list(d.security_group_ids.clone()),
        security_groups: list(d.security_groups.clone()),
        user_data: d.user_data.clone(),
        instance_initiated_shutdown_behavior: parsed(d.shutdown_behavior.as_ref()),
        block_device_mappings: list(
            d.block_devices
                .iter()
                .map(|b| ec2::LaunchTemplateBlockDeviceMapping {
                    device_name: b.device_name.clone(),
                    no_device: b.no_device.then(String::new),
                    ebs: (!b.no_device).then(|| ec2::LaunchTemplateEbsBlockDevice {
                        snapshot_id: b.snapshot_id.clone(),
                        volume_size: b.volume_size.and_then(|n| i32::try_from(n).ok()),
                        volume_type: parsed(b.volume_type.as_ref()),
                        iops: b.iops.and_then(|n| i32::try_from(n).ok()),
                        throughput: b.throughput.and_then(|n| i32::try_from(n).ok()),
                        delete_on_termination: b.delete_on_termination,
                        encrypted: b.encrypted,
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
        ),
        network_interfaces: list(
            d.network_interfaces
                .iter()
                .map(
                    |n| ec2::LaunchTemplateInstanceNetworkInterfaceSpecification {
                        device_index: n.device_index,
                        subnet_id: n.subnet_id.clone(),
                        groups: list(n.groups.clone()),
                        associate_public_ip_address: n.associate_public_ip,
                        private_ip_address: n.private_ip.clone(),
                        network_interface_id: n.network_interface_id.clone(),
                        delete_on_termination: n.delete_on_termination,
                        description: n.description.clone(),
                        ..Default::default()
                    },
                )
                .collect(),
        ),
        metadata_options: d
            .metadata
            .as_ref()
            .map(|m| ec2::LaunchTemplateInstanceMetadataOptions {
                http_tokens: parsed(m.http_tokens.as_ref()),
                http_endpoint: parsed(m.http_endpoint.as_ref()),
                http_put_response_hop_limit: m.hop_limit,
                ..Default::default()
            }),
        tag_specifications: list(
            d.tag_specifications
                .iter()
                .map(|s| ec2::LaunchTemplateTagSpecification {
                    resource_type: parsed(Some(&s.resource_type)),
                    tags: typed::tag_set(&s.tags),
                })
                .collect(),
        ),
        monitoring: d.monitoring.map(|e| ec2::LaunchTemplatesMonitoring {
            enabled: Some(e),
            ..Default::default()
        }),
        hibernation_options: d
            .hibernation
            .map(|c| ec2::LaunchTemplateHibernationOptions {
                configured: Some(c),
            }),
        ..Default::default()
    }
}
