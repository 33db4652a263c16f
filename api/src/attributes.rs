//! DescribeInstanceAttribute (user data, instance type, shutdown behaviour, block devices,
//! security groups, and the fixed EBS optimization, termination protection and
//! source/destination check) and ModifyInstanceAttribute: `GroupId.N` (the security groups of the primary interface)
//! or `BlockDeviceMapping.N` (the DeleteOnTermination of attached volumes).

use shapes::Empty;
use shapes::ec2::{
    AttributeBooleanValue, AttributeValue, DescribeInstanceAttributeRequest, GroupIdentifier,
    InstanceAttribute, InstanceAttributeName, InstanceBlockDeviceMappingSpecification,
    ModifyInstanceAttributeRequest,
};

use super::Call;
use super::errors::ApiError;
use super::instances::named_instance;
use control::ec2::delete_on_termination as ctl_dot;
use control::ec2::network_interfaces::{GroupsOf, SetSecurityGroups};
use host::compute::disks::ROOT_DEVICE;
use state::{enis, instances, security_groups};

/// The attributes served.
const SUPPORTED: &str = "instanceType, userData, instanceInitiatedShutdownBehavior, \
    blockDeviceMapping, rootDeviceName, groupSet, ebsOptimized, disableApiTermination, \
    sourceDestCheck";

/// DescribeInstanceAttribute.
pub fn describe(
    c: &Call<'_>,
    input: DescribeInstanceAttributeRequest,
) -> Result<InstanceAttribute, ApiError> {
    let id = named_instance(&input.instance_id)?;
    let attribute = input.attribute.as_str();
    if !SUPPORTED.split(", ").any(|a| a == attribute) {
        return Err(ApiError::invalid(
            "Attribute",
            format!("'{attribute}' is not supported; the allowed values are: {SUPPORTED}"),
        ));
    }
    let (row, vols, groups) = {
        let conn = c.st.db.lock();
        let row = instances::get(&conn, id)?.ok_or_else(|| {
            ApiError::new(
                "InvalidInstanceID.NotFound",
                format!("The instance ID '{id}' does not exist"),
            )
        })?;
        let vols = host::compute::disks::attached_in_guest_order(&conn, id)?;
        let primary = enis::of_instance(&conn, id)?
            .into_iter()
            .find(|e| e.device_index == Some(0));
        let groups = match primary {
            Some(e) => security_groups::groups_by_eni(&conn)?
                .remove(&e.id)
                .unwrap_or_default(),
            None => Vec::new(),
        };
        (row, vols, groups)
    };
    let mut out = InstanceAttribute {
        instance_id: Some(row.id.clone()),
        ..Default::default()
    };
    let value = |v: Option<String>| Some(AttributeValue { value: v });
    let boolean = |v: bool| Some(AttributeBooleanValue { value: Some(v) });
    match input.attribute {
        InstanceAttributeName::BlockDeviceMapping => {
            out.block_device_mappings = Some(super::block_devices::attached_devices(&vols));
        }
        InstanceAttributeName::InstanceType => out.instance_type = value(Some(row.instance_type)),
        InstanceAttributeName::UserData => out.user_data = value(row.user_data),
        InstanceAttributeName::RootDeviceName => {
            out.root_device_name = value(Some(ROOT_DEVICE.to_string()));
        }
        InstanceAttributeName::GroupSet => {
            // The groups of the primary network interface, as DescribeInstances shows them.
            out.groups = Some(
                groups
                    .into_iter()
                    .map(|g| GroupIdentifier {
                        group_id: Some(g.id),
                        group_name: Some(g.name),
                    })
                    .collect(),
            );
        }
        // Neither is offered: no EBS-optimized instances, no termination protection.
        InstanceAttributeName::EbsOptimized => out.ebs_optimized = boolean(false),
        InstanceAttributeName::DisableApiTermination => {
            out.disable_api_termination = boolean(false);
        }
        InstanceAttributeName::SourceDestCheck => out.source_dest_check = boolean(true),
        _ => out.instance_initiated_shutdown_behavior = value(Some(row.shutdown_behavior)),
    }
    Ok(out)
}

/// ModifyInstanceAttribute: `BlockDeviceMapping.N` changes the DeleteOnTermination of the
/// volumes attached at those devices; `GroupId.N` replaces the security groups of the
/// instance's primary network interface (1 to 5 groups of its VPC), applied at once. Other
/// attributes are not modifiable here.
pub async fn modify(
    c: &Call<'_>,
    input: ModifyInstanceAttributeRequest,
) -> Result<Empty, ApiError> {
    let id = input.instance_id.as_str();
    if id.is_empty() {
        return Err(ApiError::missing("InstanceId"));
    }
    match input.block_device_mappings.as_deref() {
        Some(maps) if !maps.is_empty() => delete_on_termination(c, id, maps)?,
        _ => security_groups(c, id, &input).await?,
    }
    Ok(Empty::default())
}

/// `BlockDeviceMapping.N.DeviceName` with `Ebs.DeleteOnTermination` (and optionally
/// `Ebs.VolumeId`, which must be the volume at that device): all or nothing.
fn delete_on_termination(
    c: &Call<'_>,
    id: &str,
    maps: &[InstanceBlockDeviceMappingSpecification],
) -> Result<(), ApiError> {
    let mut changes = Vec::new();
    for (i, m) in maps.iter().enumerate() {
        let n = i + 1;
        let key = |k: &str| format!("BlockDeviceMapping.{n}.{k}");
        let device = match m.device_name.as_deref() {
            Some(d) if !d.is_empty() => d,
            _ => return Err(ApiError::missing(&key("DeviceName"))),
        };
        let ebs = m.ebs.as_ref();
        let dot = ebs
            .and_then(|e| e.delete_on_termination)
            .ok_or_else(|| ApiError::missing(&key("Ebs.DeleteOnTermination")))?;
        changes.push(ctl_dot::DeviceChange {
            device: device.to_string(),
            delete_on_termination: dot,
            volume_id: ebs.and_then(|e| e.volume_id.clone()),
        });
    }
    c.st.plane
        .set_delete_on_termination(ctl_dot::SetDeleteOnTermination {
            instance_id: id.to_string(),
            changes,
        })
        .map_err(|e| ApiError::refused(&e))
}

/// `GroupId.N`: the security groups of the primary network interface.
async fn security_groups(
    c: &Call<'_>,
    id: &str,
    input: &ModifyInstanceAttributeRequest,
) -> Result<(), ApiError> {
    let ids = input.groups.clone().unwrap_or_default();
    if ids.is_empty() {
        let field = input.attribute.map_or("GroupId.N", |a| a.as_str());
        return Err(ApiError::invalid(
            field,
            "only the security groups (GroupId.N) and BlockDeviceMapping.N's \
             DeleteOnTermination can be modified",
        ));
    }
    c.st.plane
        .set_security_groups(SetSecurityGroups {
            of: GroupsOf::Instance(id.to_owned()),
            group_ids: ids,
        })
        .await
        .map_err(|e| ApiError::refused(&e))
}
