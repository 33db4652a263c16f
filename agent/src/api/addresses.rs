//! Elastic IP actions: AllocateAddress, AssociateAddress, DisassociateAddress,
//! ReleaseAddress, DescribeAddresses. Addresses come from the host's public pool; an
//! associated one replaces the interface's ephemeral public address and stays with it across
//! stop and start.

use std::net::Ipv4Addr;

use rusqlite::Connection;

use super::errors::ApiError;
use super::filters::filters_match;
use super::metadata_options::live_instance;
use super::vpcs::sync;
use super::xml::Xml;
use super::{Call, REGION};
use crate::network::addressing::{self, AddressError};
use crate::state::enis::{self, AddressRow, EniRow};
use crate::state::instances::{self, InstanceState};
use crate::state::{new_id, tags};

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
fn named_address(conn: &Connection, c: &Call<'_>) -> Result<AddressRow, ApiError> {
    let all = enis::addresses(conn)?;
    if let Some(id) = c.p.get("AllocationId") {
        return all
            .into_iter()
            .find(|a| a.allocation_id == id)
            .ok_or_else(|| allocation_not_found(id));
    }
    if let Some(ip) = c.p.get("PublicIp") {
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
pub fn allocate(c: &Call<'_>) -> Result<String, ApiError> {
    if let Some(d) = c.p.get("Domain")
        && d != "vpc"
    {
        return Err(ApiError::invalid(
            "Domain",
            format!("'{d}' is not supported; the allowed value is vpc"),
        ));
    }
    let pool = c.st.network.config.public_pool;
    let wanted = c
        .p
        .get("Address")
        .map(|v| {
            v.parse::<Ipv4Addr>()
                .map_err(|_| ApiError::invalid("Address", format!("'{v}' is not an IPv4 address")))
        })
        .transpose()?;
    let tag_list = c.p.tag_specifications("elastic-ip")?;
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
    let mut x = Xml::response("AllocateAddress", c.request_id);
    x.leaf("publicIp", &row.public_ip)
        .leaf("domain", "vpc")
        .leaf("allocationId", &row.allocation_id)
        .leaf("publicIpv4Pool", "amazon")
        .leaf("networkBorderGroup", REGION);
    if !tag_list.is_empty() {
        x.tag_set(&tag_list);
    }
    Ok(x.finish())
}

/// AssociateAddress: `AllocationId` (or `PublicIp`) to `InstanceId` (its primary interface)
/// or `NetworkInterfaceId`. The interface's ephemeral public address, and any Elastic IP it
/// had, give way; an address associated elsewhere moves only with `AllowReassociation`.
pub async fn associate(c: &Call<'_>) -> Result<String, ApiError> {
    let reassociate = c.p.bool("AllowReassociation")?;
    let association_id = {
        let mut conn = c.st.db.lock();
        let tx = conn.transaction()?;
        let address = named_address(&tx, c)?;
        let target = match (c.p.get("InstanceId"), c.p.get("NetworkInterfaceId")) {
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
        if let Some(ip) = c.p.get("PrivateIpAddress")
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
                return Ok(answer(c, assoc));
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
    Ok(answer(c, &association_id))
}

fn answer(c: &Call<'_>, association_id: &str) -> String {
    let mut x = Xml::response("AssociateAddress", c.request_id);
    x.leaf("return", "true")
        .leaf("associationId", association_id);
    x.finish()
}

/// DisassociateAddress: `AssociationId` (or `PublicIp`). An interface that wants a public
/// address gets a new ephemeral one if its instance is running.
pub async fn disassociate(c: &Call<'_>) -> Result<String, ApiError> {
    {
        let mut conn = c.st.db.lock();
        let tx = conn.transaction()?;
        let all = enis::addresses(&tx)?;
        let address = match (c.p.get("AssociationId"), c.p.get("PublicIp")) {
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
    Ok(Xml::returns_true("DisassociateAddress", c.request_id))
}

/// ReleaseAddress: `AllocationId` (or `PublicIp`); refused while associated.
pub fn release(c: &Call<'_>) -> Result<String, ApiError> {
    let mut conn = c.st.db.lock();
    let tx = conn.transaction()?;
    let address = named_address(&tx, c)?;
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
    Ok(Xml::returns_true("ReleaseAddress", c.request_id))
}

/// DescribeAddresses: `AllocationId.N`, `PublicIp.N`; filters `allocation-id`,
/// `association-id`, `instance-id`, `network-interface-id`, `private-ip-address`,
/// `public-ip`, `domain`, `tag:KEY`, `tag-key`.
pub fn describe(c: &Call<'_>) -> Result<String, ApiError> {
    let ids = c.p.list("AllocationId");
    let ips = c.p.list("PublicIp");
    let filters = c.p.filters()?;
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
    let mut x = Xml::response("DescribeAddresses", c.request_id);
    x.open("addressesSet");
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
        x.open("item")
            .leaf("publicIp", &a.public_ip)
            .leaf("allocationId", &a.allocation_id)
            .leaf("domain", "vpc")
            .leaf_opt("instanceId", e.and_then(|e| e.instance_id.as_ref()))
            .leaf_opt("associationId", a.association_id.as_ref())
            .leaf_opt("networkInterfaceId", a.eni_id.as_ref())
            .leaf_opt("networkInterfaceOwnerId", e.map(|_| owner))
            .leaf_opt("privateIpAddress", e.map(|e| &e.private_ip))
            .leaf_opt("subnetId", e.map(|e| &e.subnet_id))
            .leaf("publicIpv4Pool", "amazon")
            .leaf("networkBorderGroup", REGION);
        if !t.is_empty() {
            x.tag_set(t);
        }
        x.close("item");
    }
    x.close("addressesSet");
    Ok(x.finish())
}
