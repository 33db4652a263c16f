//! The network part of an `Instance` in DescribeInstances and RunInstances: VPC, subnet,
//! addresses, DNS names, security groups, the `networkInterfaceSet` and `metadataOptions`,
//! loaded for many instances with a few queries.

use std::collections::HashMap;

use rusqlite::Connection;
use shapes::ec2;

use host::imds::source::private_dns_name;
use state::enis::{self, EniRow, MetadataOptionsRow};
use state::hibernation;
use state::security_groups::{self, GroupRow};

/// One ENI as an instance shows it.
#[derive(Debug, Clone)]
pub struct EniView {
    /// The row.
    pub eni: EniRow,
    /// Its groups.
    pub groups: Vec<GroupRow>,
    /// Its public address (Elastic or ephemeral).
    pub public_ip: Option<String>,
}

/// An instance's network.
#[derive(Debug, Clone, Default)]
pub struct InstanceNetwork {
    /// Its ENIs by device index.
    pub enis: Vec<EniView>,
    /// Its metadata options.
    pub metadata: MetadataOptionsRow,
    /// Launched with hibernation configured (shown beside the network for convenience).
    pub hibernation_configured: bool,
}

/// The public DNS name EC2 gives a public address.
pub fn public_dns_name(ip: &str) -> String {
    format!(
        "ec2-{}.{}.compute.amazonaws.com",
        ip.replace('.', "-"),
        super::REGION
    )
}

/// The networks of `ids` (instances without ENIs get an empty one).
pub fn load(conn: &Connection, ids: &[&str]) -> rusqlite::Result<HashMap<String, InstanceNetwork>> {
    let mut out: HashMap<String, InstanceNetwork> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let wanted: std::collections::HashSet<&str> = ids.iter().copied().collect();
    let mut groups_by_eni = security_groups::groups_by_eni(conn)?;
    let eips: HashMap<String, String> = enis::addresses(conn)?
        .into_iter()
        .filter_map(|a| a.eni_id.map(|e| (e, a.public_ip)))
        .collect();
    let mut options = enis::all_metadata_options(conn)?;
    options.retain(|id, _| wanted.contains(id.as_str()));
    for eni in enis::all(conn)? {
        let Some(instance) = eni.instance_id.clone() else {
            continue;
        };
        if !wanted.contains(instance.as_str()) {
            continue;
        }
        let public_ip = eips.get(&eni.id).cloned().or_else(|| eni.public_ip.clone());
        let groups = groups_by_eni.remove(&eni.id).unwrap_or_default();
        out.entry(instance).or_default().enis.push(EniView {
            eni,
            groups,
            public_ip,
        });
    }
    for (id, net) in out.iter_mut() {
        net.enis.sort_by_key(|v| v.eni.device_index);
        if let Some(o) = options.remove(id) {
            net.metadata = o;
        }
    }
    for (id, o) in options {
        out.entry(id).or_default().metadata = o;
    }
    for id in hibernation::configured(conn)? {
        if wanted.contains(id.as_str()) {
            out.entry(id).or_default().hibernation_configured = true;
        }
    }
    Ok(out)
}

fn group_set(groups: &[GroupRow]) -> Option<Vec<ec2::GroupIdentifier>> {
    Some(
        groups
            .iter()
            .map(|g| ec2::GroupIdentifier {
                group_id: Some(g.id.clone()),
                group_name: Some(g.name.clone()),
            })
            .collect(),
    )
}

fn association(ip: &str) -> ec2::InstanceNetworkInterfaceAssociation {
    ec2::InstanceNetworkInterfaceAssociation {
        public_ip: Some(ip.to_string()),
        public_dns_name: Some(public_dns_name(ip)),
        ip_owner_id: Some("amazon".to_string()),
        ..Default::default()
    }
}

/// An instance's metadata options as its answers show them.
pub fn metadata_response(o: &MetadataOptionsRow) -> ec2::InstanceMetadataOptionsResponse {
    ec2::InstanceMetadataOptionsResponse {
        state: Some(ec2::InstanceMetadataOptionsState::Applied),
        http_tokens: ec2::HttpTokensState::from_wire(&o.http_tokens),
        http_put_response_hop_limit: Some(i32::from(o.hop_limit)),
        http_endpoint: ec2::InstanceMetadataEndpointState::from_wire(&o.http_endpoint),
        http_protocol_ipv6: Some(ec2::InstanceMetadataProtocolState::Disabled),
        instance_metadata_tags: Some(ec2::InstanceMetadataTagsState::Disabled),
    }
}

/// The network members of an instance.
pub fn fill(x: &mut ec2::Instance, owner: &str, net: &InstanceNetwork) {
    let primary = net.enis.iter().find(|v| v.eni.device_index == Some(0));
    match primary {
        Some(p) => {
            x.private_dns_name = Some(private_dns_name(&p.eni.private_ip));
            x.private_ip_address = Some(p.eni.private_ip.clone());
            x.public_dns_name = Some(
                p.public_ip
                    .as_deref()
                    .map(public_dns_name)
                    .unwrap_or_default(),
            );
            x.public_ip_address = p.public_ip.clone();
            x.subnet_id = Some(p.eni.subnet_id.clone());
            x.vpc_id = Some(p.eni.vpc_id.clone());
            x.source_dest_check = Some(true);
            x.security_groups = group_set(&p.groups);
        }
        None => {
            x.private_dns_name = Some(String::new());
            x.public_dns_name = Some(String::new());
            x.security_groups = group_set(&[]);
        }
    }
    let enis = net
        .enis
        .iter()
        .map(|v| {
            let e = &v.eni;
            ec2::InstanceNetworkInterface {
                network_interface_id: Some(e.id.clone()),
                subnet_id: Some(e.subnet_id.clone()),
                vpc_id: Some(e.vpc_id.clone()),
                description: Some(e.description.clone()),
                owner_id: Some(owner.to_string()),
                status: Some(ec2::NetworkInterfaceStatus::InUse),
                mac_address: Some(e.mac.clone()),
                private_ip_address: Some(e.private_ip.clone()),
                private_dns_name: Some(private_dns_name(&e.private_ip)),
                source_dest_check: Some(true),
                interface_type: Some("interface".to_string()),
                groups: group_set(&v.groups),
                attachment: Some(ec2::InstanceNetworkInterfaceAttachment {
                    attachment_id: e.attachment_id.clone(),
                    device_index: i32::try_from(e.device_index.unwrap_or(0)).ok(),
                    status: Some(ec2::AttachmentStatus::Attached),
                    delete_on_termination: Some(e.delete_on_termination),
                    ..Default::default()
                }),
                association: v.public_ip.as_deref().map(association),
                private_ip_addresses: Some(vec![ec2::InstancePrivateIpAddress {
                    private_ip_address: Some(e.private_ip.clone()),
                    private_dns_name: Some(private_dns_name(&e.private_ip)),
                    primary: Some(true),
                    association: v.public_ip.as_deref().map(association),
                }]),
                ..Default::default()
            }
        })
        .collect();
    x.network_interfaces = Some(enis);
    x.metadata_options = Some(metadata_response(&net.metadata));
    x.hibernation_options = Some(ec2::HibernationOptions {
        configured: Some(net.hibernation_configured),
    });
}
