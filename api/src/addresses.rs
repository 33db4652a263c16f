//! Elastic IP actions: AllocateAddress, AssociateAddress, DisassociateAddress,
//! ReleaseAddress, DescribeAddresses. Addresses come from the host's public pool; an
//! associated one replaces the interface's ephemeral public address and stays with it across
//! stop and start.

use std::net::Ipv4Addr;

use shapes::Empty;
use shapes::ec2::{
    Address, AllocateAddressRequest, AllocateAddressResult, AssociateAddressRequest,
    AssociateAddressResult, DescribeAddressesRequest, DescribeAddressesResult,
    DisassociateAddressRequest, DomainType, ReleaseAddressRequest,
};

use super::errors::ApiError;
use super::filters::filters_match;
use super::typed::{self, tag_set};
use super::{Call, REGION};
use control::ec2::addresses::{
    AddressRef, AllocateAddress, AssociateAddress, AssociationRef, AssociationTarget,
    DisassociateAddress, ReleaseAddress,
};
use state::enis;
use state::tags;

fn allocation_not_found(id: &str) -> ApiError {
    ApiError::new(
        "InvalidAllocationID.NotFound",
        format!("The allocation ID '{id}' does not exist"),
    )
}

fn address_not_found(ip: &str) -> ApiError {
    ApiError::new(
        "InvalidAddress.NotFound",
        format!("The address '{ip}' does not belong to you."),
    )
}

/// The address named by `AllocationId`, else by `PublicIp`.
fn address_ref(
    allocation_id: Option<&str>,
    public_ip: Option<&str>,
) -> Result<AddressRef, ApiError> {
    match (allocation_id, public_ip) {
        (Some(id), _) => Ok(AddressRef::AllocationId(id.to_owned())),
        (None, Some(ip)) => Ok(AddressRef::PublicIp(ip.to_owned())),
        (None, None) => Err(ApiError::missing("AllocationId")),
    }
}

/// AllocateAddress: `Domain` `vpc` (the default); `Address` asks for one address of the pool.
pub async fn allocate(
    c: &Call<'_>,
    input: AllocateAddressRequest,
) -> Result<AllocateAddressResult, ApiError> {
    if let Some(d) = input.domain
        && d != DomainType::Vpc
    {
        return Err(ApiError::invalid(
            "Domain",
            format!("'{d}' is not supported; the allowed value is vpc"),
        ));
    }
    let address = input
        .address
        .as_deref()
        .map(|v| {
            v.parse::<Ipv4Addr>()
                .map_err(|_| ApiError::invalid("Address", format!("'{v}' is not an IPv4 address")))
        })
        .transpose()?;
    let tags = typed::tag_specifications(input.tag_specifications.as_deref(), "elastic-ip")?;
    let row =
        c.st.plane
            .allocate_address(AllocateAddress { address, tags })
            .await
            .map_err(|e| ApiError::refused(&e))?;
    Ok(AllocateAddressResult {
        public_ip: Some(row.public_ip),
        domain: Some(DomainType::Vpc),
        allocation_id: Some(row.allocation_id),
        public_ipv4_pool: Some("amazon".into()),
        network_border_group: Some(REGION.into()),
        ..AllocateAddressResult::default()
    })
}

/// AssociateAddress: `AllocationId` (or `PublicIp`) to `InstanceId` (its primary interface)
/// or `NetworkInterfaceId`. The interface's ephemeral public address, and any Elastic IP it
/// had, give way; an address associated elsewhere moves only with `AllowReassociation`.
pub async fn associate(
    c: &Call<'_>,
    input: AssociateAddressRequest,
) -> Result<AssociateAddressResult, ApiError> {
    let address = address_ref(input.allocation_id.as_deref(), input.public_ip.as_deref())?;
    let target = match (input.instance_id, input.network_interface_id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                "InvalidParameterCombination",
                "Give InstanceId or NetworkInterfaceId, not both",
            ));
        }
        (Some(id), None) => AssociationTarget::Instance(id),
        (None, Some(id)) => AssociationTarget::NetworkInterface(id),
        (None, None) => return Err(ApiError::missing("InstanceId")),
    };
    let association_id =
        c.st.plane
            .associate_address(AssociateAddress {
                address,
                target,
                private_ip: input.private_ip_address,
                allow_reassociation: input.allow_reassociation.unwrap_or(false),
            })
            .await
            .map_err(|e| ApiError::refused(&e))?;
    Ok(AssociateAddressResult {
        association_id: Some(association_id),
    })
}

/// DisassociateAddress: `AssociationId` (or `PublicIp`). An interface that wants a public
/// address gets a new ephemeral one if its instance is running.
pub async fn disassociate(
    c: &Call<'_>,
    input: DisassociateAddressRequest,
) -> Result<Empty, ApiError> {
    let association = match (input.association_id, input.public_ip) {
        (Some(id), _) => AssociationRef::AssociationId(id),
        (None, Some(ip)) => AssociationRef::PublicIp(ip),
        (None, None) => return Err(ApiError::missing("AssociationId")),
    };
    c.st.plane
        .disassociate_address(DisassociateAddress { association })
        .await
        .map_err(|e| ApiError::refused(&e))?;
    Ok(Empty::default())
}

/// ReleaseAddress: `AllocationId` (or `PublicIp`); refused while associated.
pub async fn release(c: &Call<'_>, input: ReleaseAddressRequest) -> Result<Empty, ApiError> {
    let address = address_ref(input.allocation_id.as_deref(), input.public_ip.as_deref())?;
    c.st.plane
        .release_address(ReleaseAddress { address })
        .await
        .map_err(|e| ApiError::refused(&e))?;
    Ok(Empty::default())
}

/// DescribeAddresses: `AllocationId.N`, `PublicIp.N`; filters `allocation-id`,
/// `association-id`, `instance-id`, `network-interface-id`, `private-ip-address`,
/// `public-ip`, `domain`, `tag:KEY`, `tag-key`.
pub fn describe(
    c: &Call<'_>,
    input: DescribeAddressesRequest,
) -> Result<DescribeAddressesResult, ApiError> {
    let ids = input.allocation_ids.unwrap_or_default();
    let ips = input.public_ips.unwrap_or_default();
    let filters = typed::filters(input.filters.as_deref())?;
    let (rows, all_enis, tag_map) = {
        let conn = c.st.db.lock();
        let rows = enis::addresses(&conn)?;
        let refs: Vec<&str> = rows.iter().map(|r| r.allocation_id.as_str()).collect();
        let tag_map = tags::for_resources(&conn, &refs)?;
        (rows, enis::all(&conn)?, tag_map)
    };
    if let Some(missing) = ids
        .iter()
        .find(|i| !rows.iter().any(|r| &r.allocation_id == *i))
    {
        return Err(allocation_not_found(missing));
    }
    if let Some(missing) = ips
        .iter()
        .find(|i| !rows.iter().any(|r| &r.public_ip == *i))
    {
        return Err(address_not_found(missing));
    }
    let owner = &c.st.account_id;
    let mut out = Vec::new();
    for a in &rows {
        if (!ids.is_empty() || !ips.is_empty())
            && !ids.contains(&a.allocation_id)
            && !ips.contains(&a.public_ip)
        {
            continue;
        }
        let e = a
            .eni_id
            .as_ref()
            .and_then(|id| all_enis.iter().find(|e| &e.id == id));
        let t = tag_map.get(&a.allocation_id).map_or(&[][..], Vec::as_slice);
        let opt = |v: Option<&String>| v.map(|s| vec![s.clone()]).unwrap_or_default();
        let keep = filters_match(
            &filters,
            t,
            "allocation-id, association-id, instance-id, network-interface-id, \
             private-ip-address, public-ip, domain",
            |name| match name {
                "allocation-id" => Some(vec![a.allocation_id.clone()]),
                "association-id" => Some(opt(a.association_id.as_ref())),
                "instance-id" => Some(opt(e.and_then(|e| e.instance_id.as_ref()))),
                "network-interface-id" => Some(opt(a.eni_id.as_ref())),
                "private-ip-address" => Some(opt(e.map(|e| &e.private_ip))),
                "public-ip" => Some(vec![a.public_ip.clone()]),
                "domain" => Some(vec!["vpc".into()]),
                _ => None,
            },
        )?;
        if !keep {
            continue;
        }
        out.push(Address {
            public_ip: Some(a.public_ip.clone()),
            allocation_id: Some(a.allocation_id.clone()),
            domain: Some(DomainType::Vpc),
            instance_id: e.and_then(|e| e.instance_id.clone()),
            association_id: a.association_id.clone(),
            network_interface_id: a.eni_id.clone(),
            network_interface_owner_id: e.map(|_| owner.clone()),
            private_ip_address: e.map(|e| e.private_ip.clone()),
            subnet_id: e.map(|e| e.subnet_id.clone()),
            public_ipv4_pool: Some("amazon".into()),
            network_border_group: Some(REGION.into()),
            tags: tag_set(t),
            ..Address::default()
        });
    }
    Ok(DescribeAddressesResult {
        addresses: Some(out),
    })
}
