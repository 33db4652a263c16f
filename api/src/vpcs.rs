//! VPC and subnet actions: CreateVpc, DeleteVpc, DescribeVpcs, CreateSubnet, DeleteSubnet,
//! DescribeSubnets, ModifySubnetAttribute; and the helpers the other networking families
//! share (filters, tags, applying a change to the host).
//!
//! This host routes every VPC itself, so VPC blocks may not overlap each other (nor the public
//! pool); subnets are /16 to /28 ranges of their VPC that do not overlap.

use std::collections::HashMap;

use rusqlite::Connection;

use shapes::Empty;
use shapes::ec2::{
    CreateSubnetRequest, CreateSubnetResult, CreateVpcRequest, CreateVpcResult,
    DeleteSubnetRequest, DeleteVpcRequest, DescribeSubnetsRequest, DescribeSubnetsResult,
    DescribeVpcsRequest, DescribeVpcsResult, ModifySubnetAttributeRequest, Subnet, SubnetState,
    Tenancy, Vpc, VpcCidrBlockAssociation, VpcCidrBlockState, VpcCidrBlockStateCode, VpcState,
};

use super::errors::ApiError;
use super::filters::filters_match;
use super::typed::{self, Page, non_empty, tag_set};
use super::{AVAILABILITY_ZONE, Call};
use host::network::addressing;
use host::network::cidr::{Cidr, CidrError};
use state::enis;
use state::security_groups;
use state::vpcs::{self, SubnetRow, VpcRow};
use state::{new_id, now_iso, tags};

/// The smallest prefix (largest block) a VPC or subnet may have, as on EC2.
pub const MIN_PREFIX: u8 = 16;
/// The largest prefix (smallest block).
pub const MAX_PREFIX: u8 = 28;

/// Rebuilds every firewall rule from the database (security groups, addresses, metadata).
pub async fn sync(c: &Call<'_>) -> Result<(), ApiError> {
    c.st.network
        .sync()
        .await
        .map_err(|e| ApiError::internal(&e))
}

/// Rebuilds the VPC bridges and router addresses, then every rule.
pub async fn sync_bridges(c: &Call<'_>) -> Result<(), ApiError> {
    let network = c.st.network.clone();
    tokio::task::block_in_place(|| network.ensure_bridges()).map_err(|e| ApiError::internal(&e))?;
    sync(c).await
}

/// `true`/`false` as EC2 prints booleans.
pub fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

fn vpc_not_found(id: &str) -> ApiError {
    ApiError::new(
        "InvalidVpcID.NotFound",
        format!("The vpc ID '{id}' does not exist"),
    )
}

/// The VPC `id`, or `InvalidVpcID.NotFound`.
pub fn vpc(conn: &Connection, id: &str) -> Result<VpcRow, ApiError> {
    vpcs::get_vpc(conn, id)?.ok_or_else(|| vpc_not_found(id))
}

/// Parses `CidrBlock` (host bits zero).
fn cidr_param(given: Option<&str>) -> Result<Cidr, ApiError> {
    let text = non_empty(given.unwrap_or_default(), "CidrBlock")?;
    text.parse().map_err(|e: CidrError| {
        ApiError::new(
            "InvalidParameterValue",
            format!("Value ({text}) for parameter cidrBlock is invalid: {e}"),
        )
    })
}

fn range_error(code: &str, block: &Cidr, why: &str) -> ApiError {
    ApiError::new(code, format!("The CIDR '{block}' is invalid: {why}."))
}

fn check_size(code: &str, block: &Cidr) -> Result<(), ApiError> {
    if !(MIN_PREFIX..=MAX_PREFIX).contains(&block.prefix) {
        return Err(range_error(
            code,
            block,
            &format!("the block size must be between /{MIN_PREFIX} and /{MAX_PREFIX}"),
        ));
    }
    Ok(())
}

fn vpc_shape(owner: &str, v: &VpcRow, t: &[(String, String)]) -> Vpc {
    Vpc {
        vpc_id: Some(v.id.clone()),
        owner_id: Some(owner.to_string()),
        state: Some(VpcState::Available),
        cidr_block: Some(v.cidr.clone()),
        cidr_block_association_set: Some(vec![VpcCidrBlockAssociation {
            association_id: Some(format!(
                "vpc-cidr-assoc-{}",
                v.id.trim_start_matches("vpc-")
            )),
            cidr_block: Some(v.cidr.clone()),
            cidr_block_state: Some(VpcCidrBlockState {
                state: Some(VpcCidrBlockStateCode::Associated),
                status_message: None,
            }),
        }]),
        ipv6_cidr_block_association_set: Some(Vec::new()),
        dhcp_options_id: Some("default".into()),
        instance_tenancy: Some(Tenancy::Default),
        is_default: Some(v.is_default),
        tags: tag_set(t),
        ..Vpc::default()
    }
}

/// Free addresses of a subnet: its assignable ones less those its ENIs hold.
fn available_ips(s: &SubnetRow, used: usize) -> u64 {
    let total = s
        .cidr
        .parse::<Cidr>()
        .map(|c| c.size().saturating_sub(5))
        .unwrap_or(0);
    total.saturating_sub(used as u64)
}

fn subnet_shape(owner: &str, s: &SubnetRow, used: usize, t: &[(String, String)]) -> Subnet {
    Subnet {
        subnet_id: Some(s.id.clone()),
        subnet_arn: Some(format!(
            "arn:aws:ec2:{}:{owner}:subnet/{}",
            super::REGION,
            s.id
        )),
        owner_id: Some(owner.to_string()),
        state: Some(SubnetState::Available),
        vpc_id: Some(s.vpc_id.clone()),
        cidr_block: Some(s.cidr.clone()),
        ipv6_cidr_block_association_set: Some(Vec::new()),
        // A subnet is at most a /16: its count always fits.
        available_ip_address_count: Some(i32::try_from(available_ips(s, used)).unwrap_or(i32::MAX)),
        availability_zone: Some(s.availability_zone.clone()),
        availability_zone_id: Some("local1-az1".into()),
        default_for_az: Some(s.is_default),
        map_public_ip_on_launch: Some(s.map_public_ip),
        assign_ipv6_address_on_creation: Some(false),
        ipv6_native: Some(false),
        tags: tag_set(t),
        ..Subnet::default()
    }
}

/// CreateVpc: `CidrBlock` /16 to /28, overlapping no other VPC on this host nor the public
/// pool; makes the VPC's default security group and its bridge.
pub async fn create_vpc(
    c: &Call<'_>,
    input: CreateVpcRequest,
) -> Result<CreateVpcResult, ApiError> {
    let block = cidr_param(input.cidr_block.as_deref())?;
    check_size("InvalidVpc.Range", &block)?;
    if let Some(t) = input.instance_tenancy
        && t != Tenancy::Default
    {
        return Err(ApiError::invalid(
            "InstanceTenancy",
            format!("'{t}' is not supported; the allowed value is default"),
        ));
    }
    let pool = c.st.network.config.public_pool;
    if block.overlaps(&pool) {
        return Err(range_error(
            "InvalidVpc.Range",
            &block,
            &format!("it overlaps this host's public address pool {pool}"),
        ));
    }
    let tag_list = typed::tag_specifications(input.tag_specifications.as_deref(), "vpc")?;
    let (row, group) = {
        let mut conn = c.st.db.lock();
        let tx = conn.transaction()?;
        for other in vpcs::vpcs(&tx)? {
            if other.cidr.parse::<Cidr>().is_ok_and(|o| o.overlaps(&block)) {
                return Err(range_error(
                    "InvalidVpc.Range",
                    &block,
                    &format!(
                        "it overlaps {} ({}); this host routes every VPC itself, so VPC blocks \
                         may not overlap",
                        other.id, other.cidr
                    ),
                ));
            }
        }
        let row = vpcs::insert_vpc(&tx, &new_id("vpc"), &block.to_string(), false)?;
        let group = addressing::create_default_group(&tx, &row.id)?;
        tags::put(&tx, &row.id, &tag_list)?;
        tx.commit()?;
        (row, group)
    };
    tracing::info!(vpc = %row.id, cidr = %row.cidr, group = %group.id, "VPC created");
    sync_bridges(c).await?;
    Ok(CreateVpcResult {
        vpc: Some(vpc_shape(&c.st.account_id, &row, &tag_list)),
    })
}

/// DeleteVpc: refused while it has subnets, security groups other than its default one, or
/// network interfaces.
pub async fn delete_vpc(c: &Call<'_>, input: DeleteVpcRequest) -> Result<Empty, ApiError> {
    let id = non_empty(&input.vpc_id, "VpcId")?;
    {
        let mut conn = c.st.db.lock();
        let tx = conn.transaction()?;
        let v = vpc(&tx, id)?;
        let dependency = |what: String| {
            ApiError::new(
                "DependencyViolation",
                format!(
                    "The vpc '{}' has dependencies and cannot be deleted: {what}.",
                    v.id
                ),
            )
        };
        if let Some(s) = vpcs::subnets_of(&tx, &v.id)?.first() {
            return Err(dependency(format!("subnet {}", s.id)));
        }
        let groups: Vec<_> = security_groups::groups(&tx)?
            .into_iter()
            .filter(|g| g.vpc_id == v.id)
            .collect();
        if let Some(g) = groups.iter().find(|g| g.name != "default") {
            return Err(dependency(format!("security group {}", g.id)));
        }
        if let Some(e) = enis::all(&tx)?.iter().find(|e| e.vpc_id == v.id) {
            return Err(dependency(format!("network interface {}", e.id)));
        }
        for g in &groups {
            security_groups::delete_group(&tx, &g.id)?;
            tags::delete_all(&tx, &g.id)?;
        }
        vpcs::delete_vpc(&tx, &v.id)?;
        tags::delete_all(&tx, &v.id)?;
        tx.commit()?;
    }
    sync_bridges(c).await?;
    Ok(Empty::default())
}

/// DescribeVpcs: `VpcId.N`; filters `vpc-id`, `cidr`, `cidr-block-association.cidr-block`,
/// `is-default`, `state`, `owner-id`, `tag:KEY`, `tag-key`; pages of 5 to 1000.
pub fn describe_vpcs(
    c: &Call<'_>,
    input: DescribeVpcsRequest,
) -> Result<DescribeVpcsResult, ApiError> {
    let ids = input.vpc_ids.unwrap_or_default();
    let filters = typed::filters(input.filters.as_deref())?;
    let page = Page::new(input.max_results, input.next_token.as_deref(), 5, 1000)?;
    let (rows, tag_map) = {
        let conn = c.st.db.lock();
        let rows = vpcs::vpcs(&conn)?;
        let refs: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let tag_map = tags::for_resources(&conn, &refs)?;
        (rows, tag_map)
    };
    if let Some(missing) = ids.iter().find(|i| !rows.iter().any(|r| &r.id == *i)) {
        return Err(vpc_not_found(missing));
    }
    let owner = &c.st.account_id;
    let mut out = Vec::new();
    for v in rows
        .iter()
        .filter(|v| ids.is_empty() || ids.contains(&v.id))
    {
        let t = tag_map.get(&v.id).map_or(&[][..], Vec::as_slice);
        let keep = filters_match(
            &filters,
            t,
            "vpc-id, cidr, cidr-block-association.cidr-block, is-default, state, owner-id",
            |name| match name {
                "vpc-id" => Some(vec![v.id.clone()]),
                "cidr" | "cidr-block-association.cidr-block" => Some(vec![v.cidr.clone()]),
                "is-default" => Some(vec![bool_text(v.is_default).into()]),
                "state" => Some(vec!["available".into()]),
                "owner-id" => Some(vec![owner.clone()]),
                _ => None,
            },
        )?;
        if keep {
            out.push(vpc_shape(owner, v, t));
        }
    }
    let (vpcs, next_token) = page.apply(out, |v| v.vpc_id.as_deref().unwrap_or_default());
    Ok(DescribeVpcsResult {
        vpcs: Some(vpcs),
        next_token,
    })
}

fn subnet_not_found(id: &str) -> ApiError {
    ApiError::new(
        "InvalidSubnetID.NotFound",
        format!("The subnet ID '{id}' does not exist"),
    )
}

/// CreateSubnet: `VpcId`, `CidrBlock` (/16 to /28, inside the VPC, overlapping none of its
/// subnets), `AvailabilityZone` (only `local-1a`).
pub async fn create_subnet(
    c: &Call<'_>,
    input: CreateSubnetRequest,
) -> Result<CreateSubnetResult, ApiError> {
    let vpc_id = non_empty(&input.vpc_id, "VpcId")?;
    let block = cidr_param(input.cidr_block.as_deref())?;
    if let Some(zone) = input.availability_zone.as_deref()
        && zone != AVAILABILITY_ZONE
    {
        return Err(ApiError::new(
            "InvalidParameterValue",
            format!(
                "Value ({zone}) for parameter availabilityZone is invalid. Subnets can currently \
                 only be created in the following availability zones: {AVAILABILITY_ZONE}."
            ),
        ));
    }
    if let Some(zone) = input.availability_zone_id.as_deref()
        && zone != "local1-az1"
    {
        return Err(ApiError::invalid(
            "AvailabilityZoneId",
            format!("'{zone}' is not a zone of this region; the only zone is local1-az1"),
        ));
    }
    let tag_list = typed::tag_specifications(input.tag_specifications.as_deref(), "subnet")?;
    let row = {
        let mut conn = c.st.db.lock();
        let tx = conn.transaction()?;
        let v = vpc(&tx, vpc_id)?;
        check_size("InvalidSubnet.Range", &block)?;
        let vpc_block: Cidr = v.cidr.parse().map_err(|e| ApiError::internal(&e))?;
        if !vpc_block.contains_block(&block) {
            return Err(range_error(
                "InvalidSubnet.Range",
                &block,
                &format!("it is not inside the block {vpc_block} of {}", v.id),
            ));
        }
        for s in vpcs::subnets_of(&tx, &v.id)? {
            if s.cidr.parse::<Cidr>().is_ok_and(|o| o.overlaps(&block)) {
                return Err(ApiError::new(
                    "InvalidSubnet.Conflict",
                    format!(
                        "The CIDR '{block}' conflicts with another subnet: {} ({})",
                        s.id, s.cidr
                    ),
                ));
            }
        }
        let row = SubnetRow {
            id: new_id("subnet"),
            vpc_id: v.id,
            cidr: block.to_string(),
            availability_zone: AVAILABILITY_ZONE.into(),
            map_public_ip: false,
            is_default: false,
            created: now_iso(),
        };
        vpcs::insert_subnet(&tx, &row)?;
        tags::put(&tx, &row.id, &tag_list)?;
        tx.commit()?;
        row
    };
    sync_bridges(c).await?;
    Ok(CreateSubnetResult {
        subnet: Some(subnet_shape(&c.st.account_id, &row, 0, &tag_list)),
    })
}

/// DeleteSubnet: refused while network interfaces are in it.
pub async fn delete_subnet(c: &Call<'_>, input: DeleteSubnetRequest) -> Result<Empty, ApiError> {
    let id = non_empty(&input.subnet_id, "SubnetId")?;
    {
        let mut conn = c.st.db.lock();
        let tx = conn.transaction()?;
        let s = vpcs::get_subnet(&tx, id)?.ok_or_else(|| subnet_not_found(id))?;
        if let Some(e) = enis::in_subnet(&tx, &s.id)?.first() {
            return Err(ApiError::new(
                "DependencyViolation",
                format!(
                    "The subnet '{}' has dependencies and cannot be deleted: network interface {}.",
                    s.id, e.id
                ),
            ));
        }
        vpcs::delete_subnet(&tx, &s.id)?;
        tags::delete_all(&tx, &s.id)?;
        tx.commit()?;
    }
    sync_bridges(c).await?;
    Ok(Empty::default())
}

/// DescribeSubnets: `SubnetId.N`; filters `subnet-id`, `vpc-id`, `cidr-block` (and `cidr`),
/// `default-for-az`, `availability-zone`, `map-public-ip-on-launch`, `state`,
/// `owner-id`, `tag:KEY`, `tag-key`; pages of 5 to 1000.
pub fn describe_subnets(
    c: &Call<'_>,
    input: DescribeSubnetsRequest,
) -> Result<DescribeSubnetsResult, ApiError> {
    let ids = input.subnet_ids.unwrap_or_default();
    let filters = typed::filters(input.filters.as_deref())?;
    let page = Page::new(input.max_results, input.next_token.as_deref(), 5, 1000)?;
    let (rows, used, tag_map) = {
        let conn = c.st.db.lock();
        let rows = vpcs::subnets(&conn)?;
        let mut used: HashMap<String, usize> = HashMap::new();
        for e in enis::all(&conn)? {
            *used.entry(e.subnet_id).or_default() += 1;
        }
        let refs: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let tag_map = tags::for_resources(&conn, &refs)?;
        (rows, used, tag_map)
    };
    if let Some(missing) = ids.iter().find(|i| !rows.iter().any(|r| &r.id == *i)) {
        return Err(subnet_not_found(missing));
    }
    let owner = &c.st.account_id;
    let mut out = Vec::new();
    for s in rows
        .iter()
        .filter(|s| ids.is_empty() || ids.contains(&s.id))
    {
        let t = tag_map.get(&s.id).map_or(&[][..], Vec::as_slice);
        let keep = filters_match(
            &filters,
            t,
            "subnet-id, vpc-id, cidr-block, default-for-az, availability-zone, \
             map-public-ip-on-launch, state, owner-id",
            |name| match name {
                "subnet-id" => Some(vec![s.id.clone()]),
                "vpc-id" => Some(vec![s.vpc_id.clone()]),
                "cidr-block" | "cidr" => Some(vec![s.cidr.clone()]),
                "default-for-az" => Some(vec![bool_text(s.is_default).into()]),
                "availability-zone" => Some(vec![s.availability_zone.clone()]),
                "map-public-ip-on-launch" => Some(vec![bool_text(s.map_public_ip).into()]),
                "state" => Some(vec!["available".into()]),
                "owner-id" => Some(vec![owner.clone()]),
                _ => None,
            },
        )?;
        if keep {
            let used = used.get(&s.id).copied().unwrap_or(0);
            out.push(subnet_shape(owner, s, used, t));
        }
    }
    let (subnets, next_token) = page.apply(out, |s| s.subnet_id.as_deref().unwrap_or_default());
    Ok(DescribeSubnetsResult {
        subnets: Some(subnets),
        next_token,
    })
}

/// ModifySubnetAttribute: `MapPublicIpOnLaunch.Value` (the only attribute served).
pub fn modify_subnet_attribute(
    c: &Call<'_>,
    input: ModifySubnetAttributeRequest,
) -> Result<Empty, ApiError> {
    let id = non_empty(&input.subnet_id, "SubnetId")?;
    // Every other attribute, by its parameter name, in the order of those names.
    let other = [
        (
            "AssignIpv6AddressOnCreation.Value",
            input.assign_ipv6_address_on_creation.is_some(),
        ),
        (
            "CustomerOwnedIpv4Pool",
            input.customer_owned_ipv4_pool.is_some(),
        ),
        (
            "DisableLniAtDeviceIndex.Value",
            input.disable_lni_at_device_index.is_some(),
        ),
        ("EnableDns64.Value", input.enable_dns64.is_some()),
        (
            "EnableLniAtDeviceIndex",
            input.enable_lni_at_device_index.is_some(),
        ),
        (
            "EnableResourceNameDnsAAAARecordOnLaunch.Value",
            input
                .enable_resource_name_dns_aaaa_record_on_launch
                .is_some(),
        ),
        (
            "EnableResourceNameDnsARecordOnLaunch.Value",
            input.enable_resource_name_dns_a_record_on_launch.is_some(),
        ),
        (
            "MapCustomerOwnedIpOnLaunch.Value",
            input.map_customer_owned_ip_on_launch.is_some(),
        ),
        (
            "PrivateDnsHostnameTypeOnLaunch",
            input.private_dns_hostname_type_on_launch.is_some(),
        ),
    ];
    if let Some((field, _)) = other.iter().find(|(_, given)| *given) {
        return Err(ApiError::invalid(
            field,
            "only MapPublicIpOnLaunch.Value can be modified here",
        ));
    }
    let on = input
        .map_public_ip_on_launch
        .and_then(|v| v.value)
        .ok_or_else(|| ApiError::missing("MapPublicIpOnLaunch.Value"))?;
    let conn = c.st.db.lock();
    let s = vpcs::get_subnet(&conn, id)?.ok_or_else(|| subnet_not_found(id))?;
    vpcs::set_map_public_ip(&conn, &s.id, on)?;
    Ok(Empty::default())
}
