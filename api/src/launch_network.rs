//! RunInstances' network members: the subnet, the security groups (by id or name), a
//! private address, a public address, `NetworkInterface.1.*`, and `MetadataOptions.*`, checked
//! as EC2 checks them and resolved against the database.

use std::net::Ipv4Addr;

use rusqlite::Connection;
use shapes::ec2;

use super::errors::ApiError;
use host::compute::launch::NetworkRequest;
use state::enis::MetadataOptionsRow;
use state::security_groups::{self, GroupRow};
use state::vpcs::{self, SubnetRow};

/// Most security groups per ENI, as on EC2.
pub const MAX_GROUPS_PER_ENI: usize = 5;

/// The subnet `id`, or `InvalidSubnetID.NotFound`.
pub fn subnet(conn: &Connection, id: &str) -> Result<SubnetRow, ApiError> {
    vpcs::get_subnet(conn, id)?.ok_or_else(|| {
        ApiError::new(
            "InvalidSubnetID.NotFound",
            format!("The subnet ID '{id}' does not exist"),
        )
    })
}

/// Resolves group ids and names into groups of `vpc_id` (its default group when none are
/// given): unknown ones give `InvalidGroup.NotFound`, ones of another VPC
/// `InvalidParameter`, more than five `SecurityGroupsPerInterfaceLimitExceeded`.
pub fn groups(
    conn: &Connection,
    vpc_id: &str,
    ids: &[String],
    names: &[String],
) -> Result<Vec<GroupRow>, ApiError> {
    let mut out: Vec<GroupRow> = Vec::new();
    for id in ids {
        let g = security_groups::get_group(conn, id)?.ok_or_else(|| {
            ApiError::new(
                "InvalidGroup.NotFound",
                format!("The security group '{id}' does not exist"),
            )
        })?;
        if g.vpc_id != vpc_id {
            return Err(ApiError::new(
                "InvalidParameter",
                format!(
                    "Security group {id} and subnet belong to different networks ({} and {vpc_id}).",
                    g.vpc_id
                ),
            ));
        }
        out.push(g);
    }
    for name in names {
        let g = security_groups::group_by_name(conn, vpc_id, name)?.ok_or_else(|| {
            ApiError::new(
                "InvalidGroup.NotFound",
                format!("The security group '{name}' does not exist in VPC '{vpc_id}'"),
            )
        })?;
        out.push(g);
    }
    out.dedup_by(|a, b| a.id == b.id);
    if out.is_empty() {
        out.push(
            security_groups::group_by_name(conn, vpc_id, "default")?.ok_or_else(|| {
                ApiError::new(
                    "InvalidGroup.NotFound",
                    format!("VPC '{vpc_id}' has no default security group"),
                )
            })?,
        );
    }
    if out.len() > MAX_GROUPS_PER_ENI {
        return Err(ApiError::new(
            "SecurityGroupsPerInterfaceLimitExceeded",
            format!(
                "The maximum number of security groups per interface has been reached: at most \
                 {MAX_GROUPS_PER_ENI}, {} given.",
                out.len()
            ),
        ));
    }
    Ok(out)
}

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

/// Metadata options as a request gives them: `HttpTokens`, `HttpEndpoint`,
/// `HttpPutResponseHopLimit`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetadataChange {
    /// `HttpTokens`.
    pub tokens: Option<ec2::HttpTokensState>,
    /// `HttpEndpoint`.
    pub endpoint: Option<ec2::InstanceMetadataEndpointState>,
    /// `HttpPutResponseHopLimit`.
    pub hop_limit: Option<i32>,
}

/// `change` over `base`; `prefix` names the fields in errors (`MetadataOptions.` for
/// RunInstances, nothing for ModifyInstanceMetadataOptions).
pub fn metadata_options(
    change: MetadataChange,
    prefix: &str,
    base: MetadataOptionsRow,
) -> Result<MetadataOptionsRow, ApiError> {
    let mut o = base;
    if let Some(v) = change.tokens {
        o.http_tokens = v.as_str().to_owned();
    }
    if let Some(v) = change.endpoint {
        o.http_endpoint = v.as_str().to_owned();
    }
    if let Some(v) = change.hop_limit {
        o.hop_limit = u8::try_from(v)
            .ok()
            .filter(|h| (1..=64).contains(h))
            .ok_or_else(|| {
                ApiError::invalid(
                    &format!("{prefix}HttpPutResponseHopLimit"),
                    format!("'{v}' is not an integer from 1 to 64"),
                )
            })?;
    }
    Ok(o)
}

/// Resolves RunInstances' network members for `max_count` instances.
pub fn resolve(
    conn: &Connection,
    input: &ec2::RunInstancesRequest,
    max_count: u32,
) -> Result<NetworkRequest, ApiError> {
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
    if private.is_some() && max_count > 1 {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            "Cannot specify an explicit private IP address for more than one instance (MaxCount > 1)",
        ));
    }
    let subnet = match &subnet_id {
        Some(id) => subnet(conn, id)?,
        None => vpcs::default_subnet(conn)?.ok_or_else(|| {
            ApiError::new(
                "VPCIdNotSpecified",
                "No default VPC for this user; give a SubnetId",
            )
        })?,
    };
    let groups = groups(conn, &subnet.vpc_id, &group_ids, &names)?;
    let m = input.metadata_options.clone().unwrap_or_default();
    let change = MetadataChange {
        tokens: m.http_tokens,
        endpoint: m.http_endpoint,
        hop_limit: m.http_put_response_hop_limit,
    };
    let metadata = metadata_options(change, "MetadataOptions.", MetadataOptionsRow::default())?;
    Ok(NetworkRequest {
        wants_public_ip: public.unwrap_or(subnet.map_public_ip),
        subnet,
        group_ids: groups.into_iter().map(|g| g.id).collect(),
        private_ip: private,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_options_apply_over_the_base_and_check_the_hop_limit() {
        let change = MetadataChange {
            tokens: Some(ec2::HttpTokensState::Required),
            endpoint: None,
            hop_limit: Some(3),
        };
        let o =
            metadata_options(change, "MetadataOptions.", MetadataOptionsRow::default()).unwrap();
        assert_eq!((o.http_tokens.as_str(), o.hop_limit), ("required", 3));
        for bad in [0, 65, -1] {
            let change = MetadataChange {
                hop_limit: Some(bad),
                ..Default::default()
            };
            let e = metadata_options(change, "MetadataOptions.", MetadataOptionsRow::default())
                .unwrap_err();
            assert!(
                e.message
                    .contains("MetadataOptions.HttpPutResponseHopLimit")
                    && e.message
                        .contains(&format!("'{bad}' is not an integer from 1 to 64")),
                "{}",
                e.message
            );
        }
    }
}
