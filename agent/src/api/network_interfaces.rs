//! Network-interface actions: DescribeNetworkInterfaces, CreateNetworkInterface,
//! AttachNetworkInterface, DetachNetworkInterface, DeleteNetworkInterface and
//! ModifyNetworkInterfaceAttribute. Secondary interfaces are attached to and detached from
//! stopped instances; the next start plugs every attached interface in device order.

use std::collections::HashMap;

use super::addresses::eni;
use super::errors::ApiError;
use super::filters::filters_match;
use super::instance_network::public_dns_name;
use super::launch_network::{self, private_ip};
use super::metadata_options::live_instance;
use super::security_groups::groups_for_eni;
use super::vpcs::{bool_text, sync};
use super::xml::Xml;
use super::{AVAILABILITY_ZONE, Call};
use crate::imds::source::private_dns_name;
use crate::network::addressing::{self, NewEni};
use crate::state::enis::{self, AddressRow, EniRow};
use crate::state::instances::InstanceState;
use crate::state::security_groups::{self, GroupRow};
use crate::state::{new_id, tags};

/// Most interfaces one instance may have (device indices 0 to 7).
pub const MAX_ENIS_PER_INSTANCE: u32 = 8;

fn status(e: &EniRow) -> &'static str {
    if e.instance_id.is_some() {
        "in-use"
    } else {
        "available"
    }
}

/// One `NetworkInterface`'s fields (inside an element the caller opens).
fn render(
    x: &mut Xml,
    owner: &str,
    e: &EniRow,
    groups: &[GroupRow],
    eip: Option<&AddressRow>,
    t: &[(String, String)],
) {
    let public = eip.map(|a| a.public_ip.clone()).or(e.public_ip.clone());
    x.leaf("networkInterfaceId", &e.id)
        .leaf("subnetId", &e.subnet_id)
        .leaf("vpcId", &e.vpc_id)
        .leaf("availabilityZone", AVAILABILITY_ZONE)
        .leaf("description", &e.description)
        .leaf("ownerId", owner)
        .leaf("requesterManaged", "false")
        .leaf("status", status(e))
        .leaf("macAddress", &e.mac)
        .leaf("privateIpAddress", &e.private_ip)
        .leaf("privateDnsName", private_dns_name(&e.private_ip))
        .leaf("sourceDestCheck", "true")
        .leaf("interfaceType", "interface")
        .open("groupSet");
    for g in groups {
        x.open("item")
            .leaf("groupId", &g.id)
            .leaf("groupName", &g.name)
            .close("item");
    }
    x.close("groupSet");
    if let (Some(instance), Some(index)) = (&e.instance_id, e.device_index) {
        x.open("attachment")
            .leaf_opt("attachmentId", e.attachment_id.as_ref())
            .leaf("instanceId", instance)
            .leaf("instanceOwnerId", owner)
            .leaf("deviceIndex", index.to_string())
            .leaf("networkCardIndex", "0")
            .leaf("status", "attached")
            .leaf("deleteOnTermination", bool_text(e.delete_on_termination))
            .close("attachment");
    }
    let association = |x: &mut Xml| {
        if let Some(ip) = &public {
            x.open("association")
                .leaf("publicIp", ip)
                .leaf("publicDnsName", public_dns_name(ip))
                .leaf("ipOwnerId", if eip.is_some() { owner } else { "amazon" })
                .leaf_opt("allocationId", eip.map(|a| &a.allocation_id))
                .leaf_opt("associationId", eip.and_then(|a| a.association_id.as_ref()))
                .close("association");
        }
    };
    association(x);
    x.open("privateIpAddressesSet")
        .open("item")
        .leaf("privateIpAddress", &e.private_ip)
        .leaf("privateDnsName", private_dns_name(&e.private_ip))
        .leaf("primary", "true");
    association(x);
    x.close("item")
        .close("privateIpAddressesSet")
        .open("ipv6AddressesSet")
        .close("ipv6AddressesSet");
    if !t.is_empty() {
        x.tag_set(t);
    }
}

/// DescribeNetworkInterfaces: `NetworkInterfaceId.N`; filters `network-interface-id`,
/// `subnet-id`, `vpc-id`, `attachment.instance-id`, `attachment.attachment-id`,
/// `attachment.device-index`, `status`, `private-ip-address`, `mac-address`, `group-id`,
/// `description`, `availability-zone`, `tag:KEY`, `tag-key`.
pub fn describe(c: &Call<'_>) -> Result<String, ApiError> {
    let ids = c.p.list("NetworkInterfaceId");
    let filters = c.p.filters()?;
    let (rows, groups, eips, tag_map) = {
        let conn = c.st.db.lock();
        let rows = enis::all(&conn)?;
        let groups = security_groups::groups_by_eni(&conn)?;
        let eips: HashMap<String, AddressRow> = enis::addresses(&conn)?
            .into_iter()
            .filter_map(|a| a.eni_id.clone().map(|e| (e, a)))
            .collect();
        let refs: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let tag_map = tags::for_resources(&conn, &refs)?;
        (rows, groups, eips, tag_map)
    };
    if let Some(missing) = ids.iter().find(|i| !rows.iter().any(|r| &r.id == *i)) {
        return Err(ApiError::new(
            "InvalidNetworkInterfaceID.NotFound",
            format!("The networkInterface ID '{missing}' does not exist"),
        ));
    }
    let owner = &c.st.account_id;
    let mut x = Xml::response("DescribeNetworkInterfaces", c.request_id);
    x.open("networkInterfaceSet");
    for e in rows
        .iter()
        .filter(|e| ids.is_empty() || ids.contains(&e.id))
    {
        let t = tag_map.get(&e.id).map_or(&[][..], Vec::as_slice);
        let g = groups.get(&e.id).map_or(&[][..], Vec::as_slice);
        let opt = |v: Option<String>| v.map(|s| vec![s]).unwrap_or_default();
        let keep = filters_match(
            &filters,
            t,
            "network-interface-id, subnet-id, vpc-id, attachment.instance-id, \
             attachment.attachment-id, attachment.device-index, status, private-ip-address, \
             mac-address, group-id, description, availability-zone",
            |name| match name {
                "network-interface-id" => Some(vec![e.id.clone()]),
                "subnet-id" => Some(vec![e.subnet_id.clone()]),
                "vpc-id" => Some(vec![e.vpc_id.clone()]),
                "attachment.instance-id" => Some(opt(e.instance_id.clone())),
                "attachment.attachment-id" => Some(opt(e.attachment_id.clone())),
                "attachment.device-index" => Some(opt(e.device_index.map(|i| i.to_string()))),
                "status" => Some(vec![status(e).into()]),
                "private-ip-address" | "addresses.private-ip-address" => {
                    Some(vec![e.private_ip.clone()])
                }
                "mac-address" => Some(vec![e.mac.clone()]),
                "group-id" => Some(g.iter().map(|g| g.id.clone()).collect()),
                "description" => Some(vec![e.description.clone()]),
                "availability-zone" => Some(vec![AVAILABILITY_ZONE.into()]),
                _ => None,
            },
        )?;
        if keep {
            x.open("item");
            render(&mut x, owner, e, g, eips.get(&e.id), t);
            x.close("item");
        }
    }
    x.close("networkInterfaceSet");
    Ok(x.finish())
}

/// CreateNetworkInterface: `SubnetId`, `PrivateIpAddress`, `SecurityGroupId.N` (default: the
/// VPC's default group), `Description`, `TagSpecification.N`.
pub fn create(c: &Call<'_>) -> Result<String, ApiError> {
    let subnet_id = c.p.required("SubnetId")?;
    let wanted_ip = private_ip(c.p, "PrivateIpAddress")?;
    let description = c.p.get("Description").unwrap_or("").to_owned();
    if description.chars().count() > 255 {
        return Err(ApiError::invalid(
            "Description",
            "descriptions are at most 255 characters",
        ));
    }
    let tag_list = c.p.tag_specifications("network-interface")?;
    let (row, groups) = {
        let mut conn = c.st.db.lock();
        let tx = conn.transaction()?;
        let subnet = launch_network::subnet(&tx, subnet_id)?;
        let group_ids = c.p.list("SecurityGroupId");
        let groups = launch_network::groups(&tx, &subnet.vpc_id, &group_ids, &[])?;
        let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
        let row = addressing::create_eni(
            &tx,
            &NewEni {
                subnet: &subnet,
                group_ids: &ids,
                private_ip: wanted_ip,
                description,
                attach: None,
                wants_public_ip: false,
            },
        )?;
        tags::put(&tx, &row.id, &tag_list)?;
        tx.commit()?;
        (row, groups)
    };
    let mut x = Xml::response("CreateNetworkInterface", c.request_id);
    x.open("networkInterface");
    render(&mut x, &c.st.account_id, &row, &groups, None, &tag_list);
    x.close("networkInterface");
    Ok(x.finish())
}

/// AttachNetworkInterface: `NetworkInterfaceId`, `InstanceId` (stopped), `DeviceIndex` (1 to
/// 7, free on the instance); the interface must be available and in the instance's VPC.
pub fn attach(c: &Call<'_>) -> Result<String, ApiError> {
    let eni_id = c.p.required("NetworkInterfaceId")?;
    let instance_id = c.p.required("InstanceId")?;
    let index =
        c.p.int("DeviceIndex", 0, i64::from(MAX_ENIS_PER_INSTANCE) - 1)?
            .ok_or_else(|| ApiError::missing("DeviceIndex"))? as u32;
    let mut conn = c.st.db.lock();
    let tx = conn.transaction()?;
    let e = eni(&tx, eni_id)?;
    let instance = live_instance(&tx, instance_id)?;
    if instance.state != InstanceState::Stopped {
        return Err(ApiError::new(
            "IncorrectInstanceState",
            format!(
                "The instance '{instance_id}' is '{}'; network interfaces are attached to stopped \
                 instances only",
                instance.state.name()
            ),
        ));
    }
    if let Some(other) = &e.instance_id {
        return Err(ApiError::new(
            "InvalidNetworkInterface.InUse",
            format!("Interface: [{eni_id}] in use: it is attached to {other}."),
        ));
    }
    let current = enis::of_instance(&tx, &instance.id)?;
    if index == 0 || current.iter().any(|o| o.device_index == Some(index)) {
        return Err(ApiError::new(
            "InvalidParameterValue",
            format!(
                "Instance '{instance_id}' already has an interface attached at device index '{index}'."
            ),
        ));
    }
    if let Some(primary) = current.iter().find(|o| o.device_index == Some(0))
        && primary.vpc_id != e.vpc_id
    {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            format!(
                "The network interface {eni_id} is in {}, the instance's interfaces in {}; they \
                 must be in the same VPC",
                e.vpc_id, primary.vpc_id
            ),
        ));
    }
    let attachment_id = new_id("eni-attach");
    enis::set_attachment(
        &tx,
        &e.id,
        Some((&instance.id, index, &attachment_id, false)),
    )?;
    tx.commit()?;
    let mut x = Xml::response("AttachNetworkInterface", c.request_id);
    x.leaf("attachmentId", &attachment_id)
        .leaf("networkCardIndex", "0");
    Ok(x.finish())
}

/// DetachNetworkInterface: `AttachmentId` of a secondary interface of a stopped instance.
pub fn detach(c: &Call<'_>) -> Result<String, ApiError> {
    let attachment = c.p.required("AttachmentId")?;
    let mut conn = c.st.db.lock();
    let tx = conn.transaction()?;
    let e = enis::all(&tx)?
        .into_iter()
        .find(|e| e.attachment_id.as_deref() == Some(attachment))
        .ok_or_else(|| {
            ApiError::new(
                "InvalidAttachmentID.NotFound",
                format!("The attachment ID '{attachment}' does not exist"),
            )
        })?;
    if e.device_index == Some(0) {
        return Err(ApiError::new(
            "OperationNotPermitted",
            format!(
                "The network interface at device index 0 ({}) is the primary interface and \
                 cannot be detached.",
                e.id
            ),
        ));
    }
    if let Some(id) = &e.instance_id
        && let Some(i) = crate::state::instances::get(&tx, id)?
        && i.state != InstanceState::Stopped
    {
        return Err(ApiError::new(
            "IncorrectInstanceState",
            format!(
                "The instance '{id}' is '{}'; network interfaces are detached from stopped \
                 instances only",
                i.state.name()
            ),
        ));
    }
    enis::set_attachment(&tx, &e.id, None)?;
    tx.commit()?;
    Ok(Xml::returns_true("DetachNetworkInterface", c.request_id))
}

/// DeleteNetworkInterface: only an available (detached) interface; its Elastic IP, if any, is
/// disassociated.
pub async fn delete(c: &Call<'_>) -> Result<String, ApiError> {
    let id = c.p.required("NetworkInterfaceId")?;
    {
        let mut conn = c.st.db.lock();
        let tx = conn.transaction()?;
        let e = eni(&tx, id)?;
        if let Some(instance) = &e.instance_id {
            return Err(ApiError::new(
                "InvalidNetworkInterface.InUse",
                format!("Interface: [{id}] in use: it is attached to {instance}."),
            ));
        }
        if let Some(a) = enis::address_of_eni(&tx, &e.id)? {
            enis::set_association(&tx, &a.allocation_id, None)?;
        }
        enis::delete(&tx, &e.id)?;
        tags::delete_all(&tx, &e.id)?;
        tx.commit()?;
    }
    sync(c).await?;
    Ok(Xml::returns_true("DeleteNetworkInterface", c.request_id))
}

/// ModifyNetworkInterfaceAttribute: `SecurityGroupId.N` (1 to 5 groups of its VPC), applied
/// at once.
pub async fn modify(c: &Call<'_>) -> Result<String, ApiError> {
    let id = c.p.required("NetworkInterfaceId")?;
    let group_ids = c.p.list("SecurityGroupId");
    if group_ids.is_empty() {
        let field = [
            "Description.Value",
            "SourceDestCheck.Value",
            "Attachment.AttachmentId",
        ]
        .into_iter()
        .find(|f| c.p.get(f).is_some());
        return Err(match field {
            Some(f) => ApiError::invalid(
                f,
                "only the security groups (SecurityGroupId.N) can be modified",
            ),
            None => ApiError::missing("SecurityGroupId.1"),
        });
    }
    {
        let mut conn = c.st.db.lock();
        let tx = conn.transaction()?;
        let e = eni(&tx, id)?;
        let groups = groups_for_eni(&tx, &e.vpc_id, &group_ids)?;
        security_groups::set_eni_groups(&tx, &e.id, &groups)?;
        tx.commit()?;
    }
    sync(c).await?;
    Ok(Xml::returns_true(
        "ModifyNetworkInterfaceAttribute",
        c.request_id,
    ))
}
