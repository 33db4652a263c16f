//! VPC and subnet actions: CreateVpc, DeleteVpc, DescribeVpcs, CreateSubnet, DeleteSubnet,
//! DescribeSubnets, ModifySubnetAttribute; and the helpers the other networking families
//! share. The changes are the control plane's commands (`control::ec2::vpcs`,
//! `control::ec2::subnets`); the handlers translate.

use std::collections::HashMap;

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
use control::ec2::subnets::{CreateSubnet, DeleteSubnet, SetMapPublicIp};
use control::ec2::vpcs::{CreateVpc, DeleteVpc};
use host::network::cidr::{Cidr, CidrError};
use state::enis;
use state::tags;
use state::vpcs::{self, SubnetRow, VpcRow};

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
    if let Some(t) = input.instance_tenancy
        && t != Tenancy::Default
    {
        return Err(ApiError::invalid(
            "InstanceTenancy",
            format!("'{t}' is not supported; the allowed value is default"),
        ));
    }
    let tags = typed::tag_specifications(input.tag_specifications.as_deref(), "vpc")?;
    let created =
        c.st.plane
            .create_vpc(CreateVpc {
                cidr: block,
                tags: tags.clone(),
            })
            .await
            .map_err(|e| ApiError::refused(&e))?;
    Ok(CreateVpcResult {
        vpc: Some(vpc_shape(&c.st.account_id, &created.vpc, &tags)),
    })
}

/// DeleteVpc: refused while it has subnets, security groups other than its default one, or
/// network interfaces.
pub async fn delete_vpc(c: &Call<'_>, input: DeleteVpcRequest) -> Result<Empty, ApiError> {
    let id = non_empty(&input.vpc_id, "VpcId")?;
    c.st.plane
        .delete_vpc(DeleteVpc {
            vpc_id: id.to_owned(),
        })
        .await
        .map_err(|e| ApiError::refused(&e))?;
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
    let tags = typed::tag_specifications(input.tag_specifications.as_deref(), "subnet")?;
    let row =
        c.st.plane
            .create_subnet(CreateSubnet {
                vpc_id: vpc_id.to_owned(),
                cidr: block,
                tags: tags.clone(),
            })
            .await
            .map_err(|e| ApiError::refused(&e))?;
    Ok(CreateSubnetResult {
        subnet: Some(subnet_shape(&c.st.account_id, &row, 0, &tags)),
    })
}

/// DeleteSubnet: refused while network interfaces are in it.
pub async fn delete_subnet(c: &Call<'_>, input: DeleteSubnetRequest) -> Result<Empty, ApiError> {
    let id = non_empty(&input.subnet_id, "SubnetId")?;
    c.st.plane
        .delete_subnet(DeleteSubnet {
            subnet_id: id.to_owned(),
        })
        .await
        .map_err(|e| ApiError::refused(&e))?;
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
pub async fn modify_subnet_attribute(
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
    c.st.plane
        .set_map_public_ip(SetMapPublicIp {
            subnet_id: id.to_owned(),
            on,
        })
        .await
        .map_err(|e| ApiError::refused(&e))?;
    Ok(Empty::default())
}
