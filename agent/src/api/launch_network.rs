//! RunInstances' network parameters: the subnet, the security groups (by id or name), a
//! private address, a public address, `NetworkInterface.1.*`, and `MetadataOptions.*`, checked
//! as EC2 checks them and resolved against the database.

use std::net::Ipv4Addr;

use rusqlite::Connection;

use super::errors::ApiError;
use super::query::Params;
use crate::compute::launch::NetworkRequest;
use crate::state::enis::MetadataOptionsRow;
use crate::state::security_groups::{self, GroupRow};
use crate::state::vpcs::{self, SubnetRow};

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

/// A private address parameter.
pub fn private_ip(p: &Params, field: &str) -> Result<Option<Ipv4Addr>, ApiError> {
    p.get(field)
        .map(|v| {
            v.parse().map_err(|_| {
                ApiError::new(
                    "InvalidParameterValue",
                    format!("Value ({v}) for parameter {field} is invalid: not an IPv4 address."),
                )
            })
        })
        .transpose()
}

fn tri_bool(p: &Params, field: &str) -> Result<Option<bool>, ApiError> {
    p.get(field).map(|_| p.bool(field)).transpose()
}

/// `MetadataOptions.*` (or, with another prefix, ModifyInstanceMetadataOptions' fields)
/// over `base`.
pub fn metadata_options(
    p: &Params,
    prefix: &str,
    base: MetadataOptionsRow,
) -> Result<MetadataOptionsRow, ApiError> {
    let mut o = base;
    let field = |name: &str| format!("{prefix}{name}");
    if let Some(v) = p.get(&field("HttpTokens")) {
        if v != "optional" && v != "required" {
            return Err(ApiError::invalid(
                &field("HttpTokens"),
                format!("'{v}' is not one of: optional, required"),
            ));
        }
        o.http_tokens = v.to_owned();
    }
    if let Some(v) = p.get(&field("HttpEndpoint")) {
        if v != "enabled" && v != "disabled" {
            return Err(ApiError::invalid(
                &field("HttpEndpoint"),
                format!("'{v}' is not one of: enabled, disabled"),
            ));
        }
        o.http_endpoint = v.to_owned();
    }
    if let Some(v) = p.int(&field("HttpPutResponseHopLimit"), 1, 64)? {
        o.hop_limit = v as u8;
    }
    Ok(o)
}

/// Resolves RunInstances' network parameters for `count` instances.
pub fn resolve(conn: &Connection, p: &Params, max_count: u32) -> Result<NetworkRequest, ApiError> {
    let eni_fields: Vec<&str> = p
        .keys()
        .filter(|k| k.starts_with("NetworkInterface."))
        .collect();
    let (subnet_id, group_ids, private, public) = if eni_fields.is_empty() {
        (
            p.get("SubnetId").map(str::to_owned),
            p.list("SecurityGroupId"),
            private_ip(p, "PrivateIpAddress")?,
            None,
        )
    } else {
        if p.get("SubnetId").is_some()
            || !p.list("SecurityGroupId").is_empty()
            || !p.list("SecurityGroup").is_empty()
            || p.get("PrivateIpAddress").is_some()
        {
            return Err(ApiError::new(
                "InvalidParameterCombination",
                "Network interfaces and an instance-level subnet, security groups or private IP \
                 address may not be specified on the same request",
            ));
        }
        if let Some(bad) = eni_fields
            .iter()
            .find(|k| !k.starts_with("NetworkInterface.1."))
        {
            return Err(ApiError::invalid(
                bad,
                "only one network interface (NetworkInterface.1, device index 0) can be given at launch; attach more to the stopped instance",
            ));
        }
        if p.get("NetworkInterface.1.NetworkInterfaceId").is_some() {
            return Err(ApiError::invalid(
                "NetworkInterface.1.NetworkInterfaceId",
                "launching with an existing network interface is not supported; attach it to the stopped instance instead",
            ));
        }
        if let Some(index) = p.int("NetworkInterface.1.DeviceIndex", 0, 0)? {
            debug_assert_eq!(index, 0);
        }
        (
            p.get("NetworkInterface.1.SubnetId").map(str::to_owned),
            p.list("NetworkInterface.1.SecurityGroupId"),
            private_ip(p, "NetworkInterface.1.PrivateIpAddress")?,
            tri_bool(p, "NetworkInterface.1.AssociatePublicIpAddress")?,
        )
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
    let names = p.list("SecurityGroup");
    let groups = groups(conn, &subnet.vpc_id, &group_ids, &names)?;
    let metadata = metadata_options(p, "MetadataOptions.", MetadataOptionsRow::default())?;
    Ok(NetworkRequest {
        wants_public_ip: public.unwrap_or(subnet.map_public_ip),
        subnet,
        group_ids: groups.into_iter().map(|g| g.id).collect(),
        private_ip: private,
        metadata,
    })
}
