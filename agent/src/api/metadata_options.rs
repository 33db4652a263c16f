//! ModifyInstanceMetadataOptions: `HttpTokens`, `HttpEndpoint` and `HttpPutResponseHopLimit`
//! of an instance, applied at once (disabling the endpoint removes the instance's metadata
//! redirect from the firewall).

use rusqlite::Connection;

use super::Call;
use super::errors::ApiError;
use super::instances::well_formed_id;
use super::launch_network::metadata_options;
use super::vpcs::sync;
use super::xml::Xml;
use crate::state::enis;
use crate::state::instances::{self, InstanceRow, InstanceState};

/// The instance `id` unless it is terminated: `InvalidInstanceID.Malformed`,
/// `InvalidInstanceID.NotFound` or `IncorrectInstanceState`.
pub fn live_instance(conn: &Connection, id: &str) -> Result<InstanceRow, ApiError> {
    if !well_formed_id(id, "i") {
        return Err(ApiError::new(
            "InvalidInstanceID.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"i-...\")"),
        ));
    }
    let row = instances::get(conn, id)?.ok_or_else(|| {
        ApiError::new(
            "InvalidInstanceID.NotFound",
            format!("The instance ID '{id}' does not exist"),
        )
    })?;
    if matches!(
        row.state,
        InstanceState::Terminated | InstanceState::ShuttingDown
    ) {
        return Err(ApiError::new(
            "IncorrectInstanceState",
            format!(
                "The instance '{id}' is not in a state from which it can be modified ({}).",
                row.state.name()
            ),
        ));
    }
    Ok(row)
}

/// ModifyInstanceMetadataOptions. `HttpProtocolIpv6` and `InstanceMetadataTags` take only
/// `disabled`, the one state served.
pub async fn modify(c: &Call<'_>) -> Result<String, ApiError> {
    let id = c.p.required("InstanceId")?;
    for field in ["HttpProtocolIpv6", "InstanceMetadataTags"] {
        if let Some(v) = c.p.get(field)
            && v != "disabled"
        {
            return Err(ApiError::invalid(
                field,
                format!("'{v}' is not supported; the allowed value is disabled"),
            ));
        }
    }
    let options = {
        let conn = c.st.db.lock();
        let row = live_instance(&conn, id)?;
        let options = metadata_options(c.p, "", enis::metadata_options(&conn, &row.id)?)?;
        enis::set_metadata_options(&conn, &row.id, &options)?;
        options
    };
    sync(c).await?;
    let mut x = Xml::response("ModifyInstanceMetadataOptions", c.request_id);
    x.leaf("instanceId", id)
        .open("instanceMetadataOptions")
        .leaf("state", "applied")
        .leaf("httpTokens", &options.http_tokens)
        .leaf("httpPutResponseHopLimit", options.hop_limit.to_string())
        .leaf("httpEndpoint", &options.http_endpoint)
        .leaf("httpProtocolIpv6", "disabled")
        .leaf("instanceMetadataTags", "disabled")
        .close("instanceMetadataOptions");
    Ok(x.finish())
}
