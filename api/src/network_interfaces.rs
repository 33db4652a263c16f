//! Network-interface actions: DescribeNetworkInterfaces, CreateNetworkInterface,
//! AttachNetworkInterface, DetachNetworkInterface, DeleteNetworkInterface and
//! ModifyNetworkInterfaceAttribute. Secondary interfaces are attached to and detached from
//! stopped instances; the next start plugs every attached interface in device order.

use std::collections::HashMap;

use shapes::Empty;
use shapes::ec2::{
    AttachNetworkInterfaceRequest, AttachNetworkInterfaceResult, AttachmentStatus,
    CreateNetworkInterfaceRequest, CreateNetworkInterfaceResult, DeleteNetworkInterfaceRequest,
    DescribeNetworkInterfacesRequest, DescribeNetworkInterfacesResult,
    DetachNetworkInterfaceRequest, GroupIdentifier, ModifyNetworkInterfaceAttributeRequest,
    NetworkInterface, NetworkInterfaceAssociation, NetworkInterfaceAttachment,
    NetworkInterfacePrivateIpAddress, NetworkInterfaceStatus, NetworkInterfaceType,
};

use super::errors::ApiError;
use super::filters::filters_match;
use super::instance_network::public_dns_name;
use super::typed::non_empty;
use super::typed::{self, Page, tag_set};
use super::{AVAILABILITY_ZONE, Call};
use control::ec2::network_interfaces::{
    AttachNetworkInterface, CreateNetworkInterface, DeleteNetworkInterface, DetachNetworkInterface,
    GroupsOf, SetSecurityGroups,
};
use host::imds::source::private_dns_name;
use state::enis::{self, AddressRow, EniRow};
use state::security_groups::{self, GroupRow};
use state::tags;

/// Most interfaces one instance may have (device indices 0 to 7).
pub const MAX_ENIS_PER_INSTANCE: u32 = 8;

fn status(e: &EniRow) -> &'static str {
    if e.instance_id.is_some() {
        "in-use"
    } else {
        "available"
    }
}

/// One `NetworkInterface`.
fn render(
    owner: &str,
    e: &EniRow,
    groups: &[GroupRow],
    eip: Option<&AddressRow>,
    t: &[(String, String)],
) -> NetworkInterface {
    let public = eip.map(|a| a.public_ip.clone()).or(e.public_ip.clone());
    let association = public.map(|ip| NetworkInterfaceAssociation {
        public_dns_name: Some(public_dns_name(&ip)),
        public_ip: Some(ip),
        ip_owner_id: Some(if eip.is_some() { owner } else { "amazon" }.to_string()),
        allocation_id: eip.map(|a| a.allocation_id.clone()),
        association_id: eip.and_then(|a| a.association_id.clone()),
        ..NetworkInterfaceAssociation::default()
    });
    let attachment = match (&e.instance_id, e.device_index) {
        (Some(instance), Some(index)) => Some(NetworkInterfaceAttachment {
            attachment_id: e.attachment_id.clone(),
            instance_id: Some(instance.clone()),
            instance_owner_id: Some(owner.to_string()),
            // Device indices are 0 to 7.
            device_index: i32::try_from(index).ok(),
            network_card_index: Some(0),
            status: Some(AttachmentStatus::Attached),
            delete_on_termination: Some(e.delete_on_termination),
            ..NetworkInterfaceAttachment::default()
        }),
        _ => None,
    };
    NetworkInterface {
        network_interface_id: Some(e.id.clone()),
        subnet_id: Some(e.subnet_id.clone()),
        vpc_id: Some(e.vpc_id.clone()),
        availability_zone: Some(AVAILABILITY_ZONE.into()),
        description: Some(e.description.clone()),
        owner_id: Some(owner.to_string()),
        // A load balancer's interfaces are managed by ELB (their description says whose).
        requester_managed: Some(e.description.starts_with("ELB ") && e.instance_id.is_none()),
        status: NetworkInterfaceStatus::from_wire(status(e)),
        mac_address: Some(e.mac.clone()),
        private_ip_address: Some(e.private_ip.clone()),
        private_dns_name: Some(private_dns_name(&e.private_ip)),
        source_dest_check: Some(true),
        interface_type: Some(NetworkInterfaceType::Interface),
        groups: Some(
            groups
                .iter()
                .map(|g| GroupIdentifier {
                    group_id: Some(g.id.clone()),
                    group_name: Some(g.name.clone()),
                })
                .collect(),
        ),
        attachment,
        association: association.clone(),
        private_ip_addresses: Some(vec![NetworkInterfacePrivateIpAddress {
            private_ip_address: Some(e.private_ip.clone()),
            private_dns_name: Some(private_dns_name(&e.private_ip)),
            primary: Some(true),
            association,
        }]),
        ipv6_addresses: Some(Vec::new()),
        tag_set: tag_set(t),
        ..NetworkInterface::default()
    }
}

/// DescribeNetworkInterfaces: `NetworkInterfaceId.N`; filters `network-interface-id`,
/// `subnet-id`, `vpc-id`, `attachment.instance-id`, `attachment.attachment-id`,
/// `attachment.device-index`, `status`, `private-ip-address`, `mac-address`, `group-id`,
/// `description`, `availability-zone`, `tag:KEY`, `tag-key`; pages of 5 to 1000.
pub fn describe(
    c: &Call<'_>,
    input: DescribeNetworkInterfacesRequest,
) -> Result<DescribeNetworkInterfacesResult, ApiError> {
    let ids = input.network_interface_ids.unwrap_or_default();
    let filters = typed::filters(input.filters.as_deref())?;
    let page = Page::new(input.max_results, input.next_token.as_deref(), 5, 1000)?;
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
    let mut out = Vec::new();
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
            out.push(render(owner, e, g, eips.get(&e.id), t));
        }
    }
    let (network_interfaces, next_token) = page.apply(out, |e| {
        e.network_interface_id.as_deref().unwrap_or_default()
    });
    Ok(DescribeNetworkInterfacesResult {
        network_interfaces: Some(network_interfaces),
        next_token,
    })
}

/// CreateNetworkInterface: `SubnetId`, `PrivateIpAddress`, `SecurityGroupId.N` (default: the
/// VPC's default group), `Description`, `TagSpecification.N`.
pub async fn create(
    c: &Call<'_>,
    input: CreateNetworkInterfaceRequest,
) -> Result<CreateNetworkInterfaceResult, ApiError> {
    let subnet_id = non_empty(&input.subnet_id, "SubnetId")?;
    let wanted_ip =
        super::launch_network::ipv4(input.private_ip_address.as_deref(), "PrivateIpAddress")?;
    let description = input.description.clone().unwrap_or_default();
    if description.chars().count() > 255 {
        return Err(ApiError::invalid(
            "Description",
            "descriptions are at most 255 characters",
        ));
    }
    let tags = typed::tag_specifications(input.tag_specifications.as_deref(), "network-interface")?;
    let created =
        c.st.plane
            .create_network_interface(CreateNetworkInterface {
                subnet_id: subnet_id.to_owned(),
                private_ip: wanted_ip,
                group_ids: input.groups.unwrap_or_default(),
                description,
                tags: tags.clone(),
            })
            .await
            .map_err(|e| ApiError::refused(&e))?;
    Ok(CreateNetworkInterfaceResult {
        network_interface: Some(render(
            &c.st.account_id,
            &created.eni,
            &created.groups,
            None,
            &tags,
        )),
        client_token: None,
    })
}

/// AttachNetworkInterface: `NetworkInterfaceId`, `InstanceId` (stopped), `DeviceIndex` (1 to
/// 7, free on the instance); the interface must be available and in the instance's VPC.
pub async fn attach(
    c: &Call<'_>,
    input: AttachNetworkInterfaceRequest,
) -> Result<AttachNetworkInterfaceResult, ApiError> {
    let eni_id = non_empty(&input.network_interface_id, "NetworkInterfaceId")?;
    let instance_id = non_empty(&input.instance_id, "InstanceId")?;
    let index = u32::try_from(input.device_index)
        .ok()
        .filter(|i| *i < MAX_ENIS_PER_INSTANCE)
        .ok_or_else(|| {
            ApiError::invalid(
                "DeviceIndex",
                format!(
                    "'{}' is not an integer from 0 to {}",
                    input.device_index,
                    MAX_ENIS_PER_INSTANCE - 1
                ),
            )
        })?;
    let attachment_id =
        c.st.plane
            .attach_network_interface(AttachNetworkInterface {
                eni_id: eni_id.to_owned(),
                instance_id: instance_id.to_owned(),
                device_index: index,
            })
            .await
            .map_err(|e| ApiError::refused(&e))?;
    Ok(AttachNetworkInterfaceResult {
        attachment_id: Some(attachment_id),
        network_card_index: Some(0),
    })
}

/// DetachNetworkInterface: `AttachmentId` of a secondary interface of a stopped instance.
pub async fn detach(c: &Call<'_>, input: DetachNetworkInterfaceRequest) -> Result<Empty, ApiError> {
    let attachment = non_empty(&input.attachment_id, "AttachmentId")?;
    c.st.plane
        .detach_network_interface(DetachNetworkInterface {
            attachment_id: attachment.to_owned(),
        })
        .await
        .map_err(|e| ApiError::refused(&e))?;
    Ok(Empty::default())
}

/// DeleteNetworkInterface: only an available (detached) interface; its Elastic IP, if any, is
/// disassociated.
pub async fn delete(c: &Call<'_>, input: DeleteNetworkInterfaceRequest) -> Result<Empty, ApiError> {
    let id = non_empty(&input.network_interface_id, "NetworkInterfaceId")?;
    c.st.plane
        .delete_network_interface(DeleteNetworkInterface {
            eni_id: id.to_owned(),
        })
        .await
        .map_err(|e| ApiError::refused(&e))?;
    Ok(Empty::default())
}

/// ModifyNetworkInterfaceAttribute: `SecurityGroupId.N` (1 to 5 groups of its VPC), applied
/// at once.
pub async fn modify(
    c: &Call<'_>,
    input: ModifyNetworkInterfaceAttributeRequest,
) -> Result<Empty, ApiError> {
    let id = non_empty(&input.network_interface_id, "NetworkInterfaceId")?;
    let group_ids = input.groups.unwrap_or_default();
    if group_ids.is_empty() {
        let field = [
            (
                "Description.Value",
                input.description.is_some_and(|d| d.value.is_some()),
            ),
            (
                "SourceDestCheck.Value",
                input.source_dest_check.is_some_and(|d| d.value.is_some()),
            ),
            (
                "Attachment.AttachmentId",
                input.attachment.is_some_and(|a| a.attachment_id.is_some()),
            ),
        ]
        .into_iter()
        .find_map(|(f, given)| given.then_some(f));
        return Err(match field {
            Some(f) => ApiError::invalid(
                f,
                "only the security groups (SecurityGroupId.N) can be modified",
            ),
            None => ApiError::missing("SecurityGroupId.1"),
        });
    }
    c.st.plane
        .set_security_groups(SetSecurityGroups {
            of: GroupsOf::Interface(id.to_owned()),
            group_ids,
        })
        .await
        .map_err(|e| ApiError::refused(&e))?;
    Ok(Empty::default())
}
