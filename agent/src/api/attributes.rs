//! DescribeInstanceAttribute: user data, instance type, shutdown behaviour; and
//! ModifyInstanceAttribute with `GroupId.N` (the security groups of the primary interface).

use super::errors::ApiError;
use super::xml::Xml;
use super::{Call, instances::well_formed_id};
use crate::state::{enis, instances, security_groups};

/// The attributes served.
const SUPPORTED: &str = "instanceType, userData, instanceInitiatedShutdownBehavior";

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
    let row = instances::get(&c.st.db.lock(), id)?.ok_or_else(|| {
        ApiError::new(
            "InvalidInstanceID.NotFound",
            format!("The instance ID '{id}' does not exist"),
        )
    })?;
    let mut x = Xml::response("DescribeInstanceAttribute", c.request_id);
    x.leaf("instanceId", &row.id);
    let value = match attribute {
        "instanceType" => Some(row.instance_type),
        "userData" => row.user_data,
        _ => Some(row.shutdown_behavior),
    };
    x.open(attribute);
    x.leaf_opt("value", value);
    x.close(attribute);
    Ok(x.finish())
}

/// ModifyInstanceAttribute: `GroupId.N` replaces the security groups of the instance's primary
/// network interface (1 to 5 groups of its VPC), applied at once. Other attributes are not
/// modifiable here.
pub async fn modify(c: &Call<'_>) -> Result<String, ApiError> {
    let id = c.p.required("InstanceId")?;
    let ids = c.p.list("GroupId");
    if ids.is_empty() {
        let field = c.p.get("Attribute").unwrap_or("GroupId.N");
        return Err(ApiError::invalid(
            field,
            "only the security groups (GroupId.N) can be modified",
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
    super::vpcs::sync(c).await?;
    let mut x = Xml::response("ModifyInstanceAttribute", c.request_id);
    x.leaf("return", "true");
    Ok(x.finish())
}
