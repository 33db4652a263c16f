//! RunInstances' network members as the control plane's `LaunchNetwork`: the subnet, the
//! security groups (by id or name), a private address, a public address,
//! `NetworkInterface.1.*` and `MetadataOptions.*`. Here only the request's form is checked;
//! `control::ec2::launch_network` checks the rest against the state.

use std::net::Ipv4Addr;

use shapes::ec2;

use super::errors::ApiError;
use control::ec2::launch_network::LaunchNetwork;
use control::ec2::metadata_options::ModifyMetadataOptions;

/// A private address given as `field`, if given.
pub fn ipv4(v: Option<&str>, field: &str) -> Result<Option<Ipv4Addr>, ApiError> {
    v.map(|v| {
        v.parse().map_err(|_| {
            ApiError::new(
                "InvalidParameterValue",
                format!("Value ({v}) for parameter {field} is invalid: not an IPv4 address."),
            )
        })
    })
    .transpose()
}

/// RunInstances' network members for `max_count` instances.
pub fn requested(
    input: &ec2::RunInstancesRequest,
    max_count: u32,
) -> Result<LaunchNetwork, ApiError> {
    let group_ids = input.security_group_ids.clone().unwrap_or_default();
    let names = input.security_groups.clone().unwrap_or_default();
    let enis = input.network_interfaces.as_deref().unwrap_or_default();
    let (subnet_id, group_ids, private, public) = match enis {
        [] => (
            input.subnet_id.clone(),
            group_ids,
            ipv4(input.private_ip_address.as_deref(), "PrivateIpAddress")?,
            None,
        ),
        [first, rest @ ..] => {
            if input.subnet_id.is_some()
                || !group_ids.is_empty()
                || !names.is_empty()
                || input.private_ip_address.is_some()
            {
                return Err(ApiError::new(
                    "InvalidParameterCombination",
                    "Network interfaces and an instance-level subnet, security groups or private IP \
                     address may not be specified on the same request",
                ));
            }
            if !rest.is_empty() {
                return Err(ApiError::invalid(
                    "NetworkInterface.2",
                    "only one network interface (NetworkInterface.1, device index 0) can be given at launch; attach more to the stopped instance",
                ));
            }
            if first.network_interface_id.is_some() {
                return Err(ApiError::invalid(
                    "NetworkInterface.1.NetworkInterfaceId",
                    "launching with an existing network interface is not supported; attach it to the stopped instance instead",
                ));
            }
            if let Some(index) = first.device_index
                && index != 0
            {
                return Err(ApiError::invalid(
                    "NetworkInterface.1.DeviceIndex",
                    format!("'{index}' is not an integer from 0 to 0"),
                ));
            }
            (
                first.subnet_id.clone(),
                first.groups.clone().unwrap_or_default(),
                ipv4(
                    first.private_ip_address.as_deref(),
                    "NetworkInterface.1.PrivateIpAddress",
                )?,
                first.associate_public_ip_address,
            )
        }
    };
    let m = input.metadata_options.clone().unwrap_or_default();
    Ok(LaunchNetwork {
        subnet_id,
        group_ids,
        group_names: names,
        private_ip: private,
        public_ip: public,
        metadata: ModifyMetadataOptions {
            instance_id: String::new(),
            http_tokens: m.http_tokens.map(|t| t.as_str().to_owned()),
            http_endpoint: m.http_endpoint.map(|e| e.as_str().to_owned()),
            hop_limit: m.http_put_response_hop_limit,
        },
        max_count,
    })
}
