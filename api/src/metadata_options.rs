//! ModifyInstanceMetadataOptions: `HttpTokens`, `HttpEndpoint` and `HttpPutResponseHopLimit`
//! of an instance, applied at once (disabling the endpoint removes the instance's metadata
//! redirect from the firewall).

use shapes::ec2::{ModifyInstanceMetadataOptionsRequest, ModifyInstanceMetadataOptionsResult};

use super::Call;
use super::errors::ApiError;
use super::instance_network::metadata_response;
use control::ec2::metadata_options::ModifyMetadataOptions;

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
    let options =
        c.st.plane
            .modify_metadata_options(ModifyMetadataOptions {
                instance_id: id.to_owned(),
                http_tokens: input.http_tokens.map(|v| v.as_str().to_owned()),
                http_endpoint: input.http_endpoint.map(|v| v.as_str().to_owned()),
                hop_limit: input.http_put_response_hop_limit,
            })
            .await
            .map_err(|e| ApiError::refused(&e))?;
    Ok(ModifyInstanceMetadataOptionsResult {
        instance_id: Some(id.to_string()),
        instance_metadata_options: Some(metadata_response(&options)),
    })
}
