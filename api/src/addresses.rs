//! Elastic IP actions: AllocateAddress, AssociateAddress, DisassociateAddress,
//! ReleaseAddress, DescribeAddresses. Addresses come from the host's public pool; an
//! associated one replaces the interface's ephemeral public address and stays with it across
//! stop and start.

use std::net::Ipv4Addr;

use rusqlite::Connection;
use shapes::Empty;
use shapes::ec2::{
    Address, AllocateAddressRequest, AllocateAddressResult, AssociateAddressRequest,
    AssociateAddressResult, DescribeAddressesRequest, DescribeAddressesResult,
    DisassociateAddressRequest, DomainType, ReleaseAddressRequest,
};

use super::errors::ApiError;
use super::filters::filters_match;
use super::metadata_options::live_instance;
use super::typed::{self, tag_set};
use super::vpcs::sync;
use super::{Call, REGION};
use host::network::addressing::{self, AddressError};
use state::enis::{self, AddressRow, EniRow};
use state::instances::{self, InstanceState};
use state::{new_id, tags};

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
fn named_address(
    conn: &Connection,
    allocation_id: Option<&str>,
    public_ip: Option<&str>,
) -> Result<AddressRow, ApiError> {
    let all = enis::addresses(conn)?;
    if let Some(id) = allocation_id {
        return all
            .into_iter()
            .find(|a| a.allocation_id == id)
            .ok_or_else(|| allocation_not_found(id));
    }
    if let Some(ip) = public_ip {
        return all
            .into_iter()
            .find(|a| a.public_ip == ip)
            .ok_or_else(|| address_not_found(ip));
    }
    Err(ApiError::missing("AllocationId"))
}

/// The network interface `id`, or `InvalidNetworkInterfaceID.NotFound`.
pub fn eni(conn: &Connection, id: &str) -> Result<EniRow, ApiError> {
    enis::get(conn, id)?.ok_or_else(|| {
        ApiError::new(
            "InvalidNetworkInterfaceID.NotFound",
            format!("The networkInterface ID '{id}' does not exist"),
        )
    })
}

/// AllocateAddress: `Domain` `vpc` (the default); `Address` asks for one address of the pool.
pub fn allocate(
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
    let pool = c.st.network.config.public_pool;
    let wanted = input
        .address
        .as_deref()
        .map(|v| {
            v.parse::<Ipv4Addr>()
                .map_err(|_| ApiError::invalid("Address", format!("'{v}' is not an IPv4 address")))
        })
        .transpose()?;
    let tag_list = typed::tag_specifications(input.tag_specifications.as_deref(), "elastic-ip")?;
    let row = {
        let mut conn = c.st.db.lock();
        let tx = conn.transaction()?;
        let ip = match wanted {
            Some(ip) => {
                let usable = pool.contains(ip)
                    && ip != pool.network
                    && ip != pool.router()
                    && ip != pool.last();
                if !usable {
                    return Err(ApiError::new(
                        "InvalidAddress.NotFound",
                        format!("The address {ip} is not an instance address of the pool {pool}"),
                    ));
                }
                if enis::public_ips_in_use(&tx)?.contains(&ip.to_string()) {
                    return Err(AddressError::InUse(ip.to_string()).into());
                }
                ip
            }
            None => addressing::free_public_ip(&tx, &pool, None)?,
        };
        let row = AddressRow {
            allocation_id: new_id("eipalloc"),
            public_ip: ip.to_string(),
            eni_id: None,
            association_id: None,
        };
        enis::insert_address(&tx, &row)?;
        tags::put(&tx, &row.allocation_id, &tag_list)?;
        tx.commit()?;
        row
    };
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
    let reassociate = input.allow_reassociation.unwrap_or(false);
    let association_id = {
        let mut conn = c.st.db.lock();
        let tx = conn.transaction()?;
        let address = named_address(
            &tx,
            input.allocation_id.as_deref(),
            input.public_ip.as_deref(),
        )?;
        let target = match (
            input.instance_id.as_deref(),
            input.network_interface_id.as_deref(),
        ) {
            (Some(_), Some(_)) => {
                return Err(ApiError::new(
                    "InvalidParameterCombination",
                    "Give InstanceId or NetworkInterfaceId, not both",
                ));
            }
            (Some(id), None) => {
                let row = live_instance(&tx, id)?;
                enis::of_instance(&tx, &row.id)?
                    .into_iter()
                    .find(|e| e.device_index == Some(0))
                    .ok_or_else(|| {
                        ApiError::new(
                            "InvalidInstanceID",
                            format!("The instance '{id}' has no primary network interface"),
                        )
                    })?
            }
            (None, Some(id)) => eni(&tx, id)?,
            (None, None) => return Err(ApiError::missing("InstanceId")),
        };
        if let Some(ip) = input.private_ip_address.as_deref()
            && ip != target.private_ip
        {
            return Err(ApiError::invalid(
                "PrivateIpAddress",
                format!(
                    "{ip} is not an address of {} ({})",
                    target.id, target.private_ip
                ),
            ));
        }
        match (&address.eni_id, &address.association_id) {
            (Some(current), Some(assoc)) if *current == target.id => {
                return Ok(answer(assoc));
            }
            (Some(current), _) if !reassociate => {
                return Err(ApiError::new(
                    "Resource.AlreadyAssociated",
                    format!(
                        "resource {} is already associated with associate-id {} (interface \
                         {current}); pass AllowReassociation=true to move it",
                        address.allocation_id,
                        address.association_id.as_deref().unwrap_or("")
                    ),
                ));
            }
            _ => {}
        }
        if let Some(old) = enis::address_of_eni(&tx, &target.id)? {
            enis::set_association(&tx, &old.allocation_id, None)?;
        }
        let association_id = new_id("eipassoc");
        enis::set_association(
            &tx,
            &address.allocation_id,
            Some((&target.id, &association_id)),
        )?;
        enis::set_public_ip(&tx, &target.id, None)?;
        tx.commit()?;
        association_id
    };
    sync(c).await?;
    Ok(answer(&association_id))
}

fn answer(association_id: &str) -> AssociateAddressResult {
    AssociateAddressResult {
        association_id: Some(association_id.to_string()),
    }
}

/// DisassociateAddress: `AssociationId` (or `PublicIp`). An interface that wants a public
/// address gets a new ephemeral one if its instance is running.
pub async fn disassociate(
    c: &Call<'_>,
    input: DisassociateAddressRequest,
) -> Result<Empty, ApiError> {
    {
        let mut conn = c.st.db.lock();
        let tx = conn.transaction()?;
        let all = enis::addresses(&tx)?;
        let address = match (input.association_id.as_deref(), input.public_ip.as_deref()) {
            (Some(id), _) => all
                .into_iter()
                .find(|a| a.association_id.as_deref() == Some(id))
                .ok_or_else(|| {
                    ApiError::new(
                        "InvalidAssociationID.NotFound",
                        format!("The association ID '{id}' does not exist"),
                    )
                })?,
            (None, Some(ip)) => all
                .into_iter()
                .find(|a| a.public_ip == ip)
                .ok_or_else(|| address_not_found(ip))?,
            (None, None) => return Err(ApiError::missing("AssociationId")),
        };
        enis::set_association(&tx, &address.allocation_id, None)?;
        if let Some(eni_id) = &address.eni_id
            && let Some(e) = enis::get(&tx, eni_id)?
            && e.wants_public_ip
            && let Some(instance) = &e.instance_id
            && instances::get(&tx, instance)?
                .is_some_and(|i| matches!(i.state, InstanceState::Running | InstanceState::Pending))
        {
            let ip = addressing::free_public_ip(&tx, &c.st.network.config.public_pool, None)?;
            enis::set_public_ip(&tx, &e.id, Some(&ip.to_string()))?;
        }
        tx.commit()?;
    }
    sync(c).await?;
    Ok(Empty::default())
}

/// ReleaseAddress: `AllocationId` (or `PublicIp`); refused while associated.
pub fn release(c: &Call<'_>, input: ReleaseAddressRequest) -> Result<Empty, ApiError> {
    let mut conn = c.st.db.lock();
    let tx = conn.transaction()?;
    let address = named_address(
        &tx,
        input.allocation_id.as_deref(),
        input.public_ip.as_deref(),
    )?;
    if let Some(eni) = &address.eni_id {
        return Err(ApiError::new(
            "InvalidIPAddress.InUse",
            format!(
                "Address {} is in use: it is associated with {eni} ({}); disassociate it first",
                address.public_ip,
                address.association_id.as_deref().unwrap_or("")
            ),
        ));
    }
    enis::delete_address(&tx, &address.allocation_id)?;
    tags::delete_all(&tx, &address.allocation_id)?;
    tx.commit()?;
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
