//! DescribeInstanceAttribute: user data, instance type, shutdown behaviour.

use super::errors::ApiError;
use super::xml::Xml;
use super::{Call, instances::well_formed_id};
use crate::state::instances;

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
