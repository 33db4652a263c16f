//! ModifyInstanceMetadataOptions: `HttpTokens`, `HttpEndpoint` and `HttpPutResponseHopLimit`
//! of an instance, applied at once (disabling the endpoint removes the instance's metadata
//! redirect from the firewall).

use rusqlite::Connection;
use shapes::ec2::{ModifyInstanceMetadataOptionsRequest, ModifyInstanceMetadataOptionsResult};

use super::Call;
use super::errors::ApiError;
use super::instance_network::metadata_response;
use super::instances::well_formed_id;
use super::launch_network::{MetadataChange, metadata_options};
use super::vpcs::sync;
use state::enis;
use state::instances::{self, InstanceRow, InstanceState};

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
pub async fn modify(
    c: &Call<'_>,
    input: ModifyInstanceMetadataOptionsRequest,
) -> Result<ModifyInstanceMetadataOptionsResult, ApiError> {
    let id = input.instance_id.as_str();
    if id.is_empty() {
        return Err(ApiError::missing("InstanceId"));
    }
    let unsupported = [
        (
            "HttpProtocolIpv6",
            input.http_protocol_ipv6.map(|v| v.as_str()),
        ),
        (
            "InstanceMetadataTags",
            input.instance_metadata_tags.map(|v| v.as_str()),
        ),
    ];
    for (field, given) in unsupported {
        if let Some(v) = given
            && v != "disabled"
        {
            return Err(ApiError::invalid(
                field,
                format!("'{v}' is not supported; the allowed value is disabled"),
            ));
        }
    }
    let change = MetadataChange {
        tokens: input.http_tokens,
        endpoint: input.http_endpoint,
        hop_limit: input.http_put_response_hop_limit,
    };
    let options = {
        let conn = c.st.db.lock();
        let row = live_instance(&conn, id)?;
        let options = metadata_options(change, "", enis::metadata_options(&conn, &row.id)?)?;
        enis::set_metadata_options(&conn, &row.id, &options)?;
        options
    };
    sync(c).await?;
    Ok(ModifyInstanceMetadataOptionsResult {
        instance_id: Some(id.to_string()),
        instance_metadata_options: Some(metadata_response(&options)),
    })
}
