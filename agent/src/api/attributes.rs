//! DescribeInstanceAttribute (user data, instance type, shutdown behaviour, block devices)
//! and ModifyInstanceAttribute: `GroupId.N` (the security groups of the primary interface)
//! or `BlockDeviceMapping.N` (the DeleteOnTermination of attached volumes).

use super::errors::ApiError;
use super::xml::Xml;
use super::{Call, instances::well_formed_id};
use crate::compute::disks::ROOT_DEVICE;
use crate::state::{enis, instances, security_groups, volumes};

/// The attributes served.
const SUPPORTED: &str =
    "instanceType, userData, instanceInitiatedShutdownBehavior, blockDeviceMapping, rootDeviceName";

/// DescribeInstanceAttribute.
pub fn describe(c: &Call<'_>) -> Result<String, ApiError> {
    let id = c.p.required("InstanceId")?;
    if !well_formed_id(id, "i") {
        return Err(ApiError::new(
            "InvalidInstanceID.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"i-...\")"),
        ));
    }
    let attribute = c.p.required("Attribute")?;
    if !SUPPORTED.split(", ").any(|a| a == attribute) {
        return Err(ApiError::invalid(
            "Attribute",
            format!("'{attribute}' is not supported; the allowed values are: {SUPPORTED}"),
        ));
    }
    let (row, vols) = {
        let conn = c.st.db.lock();
        let row = instances::get(&conn, id)?.ok_or_else(|| {
            ApiError::new(
                "InvalidInstanceID.NotFound",
                format!("The instance ID '{id}' does not exist"),
            )
        })?;
        let vols = crate::compute::disks::attached_in_guest_order(&conn, id)?;
        (row, vols)
    };
    let mut x = Xml::response("DescribeInstanceAttribute", c.request_id);
    x.leaf("instanceId", &row.id);
    if attribute == "blockDeviceMapping" {
        super::block_devices::attached_devices(&mut x, &vols);
        return Ok(x.finish());
    }
    let value = match attribute {
        "instanceType" => Some(row.instance_type),
        "userData" => row.user_data,
        "rootDeviceName" => Some(ROOT_DEVICE.to_string()),
        _ => Some(row.shutdown_behavior),
    };
    x.open(attribute);
    x.leaf_opt("value", value);
    x.close(attribute);
    Ok(x.finish())
}

/// ModifyInstanceAttribute: `BlockDeviceMapping.N` changes the DeleteOnTermination of the
/// volumes attached at those devices; `GroupId.N` replaces the security groups of the
/// instance's primary network interface (1 to 5 groups of its VPC), applied at once. Other
/// attributes are not modifiable here.
pub async fn modify(c: &Call<'_>) -> Result<String, ApiError> {
    let id = c.p.required("InstanceId")?;
    if !c.p.indices("BlockDeviceMapping").is_empty() {
        delete_on_termination(c, id)?;
    } else {
        security_groups(c, id).await?;
    }
    Ok(Xml::returns_true("ModifyInstanceAttribute", c.request_id))
}

/// `BlockDeviceMapping.N.DeviceName` with `Ebs.DeleteOnTermination` (and optionally
/// `Ebs.VolumeId`, which must be the volume at that device): all or nothing.
fn delete_on_termination(c: &Call<'_>, id: &str) -> Result<(), ApiError> {
    let mut changes = Vec::new();
    for n in c.p.indices("BlockDeviceMapping") {
        let key = |k: &str| format!("BlockDeviceMapping.{n}.{k}");
        let device = c.p.required(&key("DeviceName"))?;
        let field = key("Ebs.DeleteOnTermination");
        if c.p.get(&field).is_none() {
            return Err(ApiError::missing(&field));
        }
        changes.push((device, c.p.bool(&field)?, c.p.get(&key("Ebs.VolumeId"))));
    }
    let mut conn = c.st.db.lock();
    let tx = conn.transaction()?;
    super::metadata_options::live_instance(&tx, id)?;
    let attached = volumes::attached_to(&tx, id)?;
    for (device, dot, volume) in changes {
        let v = attached
            .iter()
            .find(|v| v.device.as_deref() == Some(device))
            .ok_or_else(|| {
                ApiError::new(
                    "InvalidInstanceAttributeValue",
                    format!("No device is currently mapped at {device}"),
                )
            })?;
        if let Some(want) = volume
            && want != v.id
        {
            return Err(ApiError::new(
                "InvalidInstanceAttributeValue",
                format!("The volume at {device} is {}, not {want}", v.id),
            ));
        }
        volumes::set_delete_on_termination(&tx, &v.id, dot)?;
    }
    tx.commit()?;
    Ok(())
}

/// `GroupId.N`: the security groups of the primary network interface.
async fn security_groups(c: &Call<'_>, id: &str) -> Result<(), ApiError> {
    let ids = c.p.list("GroupId");
    if ids.is_empty() {
        let field = c.p.get("Attribute").unwrap_or("GroupId.N");
        return Err(ApiError::invalid(
            field,
            "only the security groups (GroupId.N) and BlockDeviceMapping.N's \
             DeleteOnTermination can be modified",
        ));
    }
    {
        let mut conn = c.st.db.lock();
        let tx = conn.transaction()?;
        let row = super::metadata_options::live_instance(&tx, id)?;
        let primary = enis::of_instance(&tx, &row.id)?
            .into_iter()
            .find(|e| e.device_index == Some(0))
            .ok_or_else(|| {
                ApiError::new(
                    "InvalidInstanceID",
                    format!("The instance '{id}' has no primary network interface"),
                )
            })?;
        let groups = super::security_groups::groups_for_eni(&tx, &primary.vpc_id, &ids)?;
        security_groups::set_eni_groups(&tx, &primary.id, &groups)?;
        tx.commit()?;
    }
    super::vpcs::sync(c).await
}
