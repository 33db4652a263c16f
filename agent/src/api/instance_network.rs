//! The network part of an `Instance` in DescribeInstances and RunInstances: VPC, subnet,
//! addresses, DNS names, security groups, the `networkInterfaceSet` and `metadataOptions`,
//! loaded for many instances with a few queries.

use std::collections::HashMap;

use rusqlite::Connection;

use super::xml::Xml;
use crate::imds::source::private_dns_name;
use crate::state::enis::{self, EniRow, MetadataOptionsRow};
use crate::state::hibernation;
use crate::state::security_groups::{self, GroupRow};

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

fn group_set(x: &mut Xml, groups: &[GroupRow]) {
    x.open("groupSet");
    for g in groups {
        x.open("item")
            .leaf("groupId", &g.id)
            .leaf("groupName", &g.name)
            .close("item");
    }
    x.close("groupSet");
}

/// The network fields of an `<item>` of an instance.
pub fn render(x: &mut Xml, owner: &str, net: &InstanceNetwork) {
    let primary = net.enis.iter().find(|v| v.eni.device_index == Some(0));
    match primary {
        Some(p) => {
            x.leaf("privateDnsName", private_dns_name(&p.eni.private_ip))
                .leaf("privateIpAddress", &p.eni.private_ip)
                .leaf(
                    "dnsName",
                    p.public_ip
                        .as_deref()
                        .map(public_dns_name)
                        .unwrap_or_default(),
                )
                .leaf_opt("ipAddress", p.public_ip.as_ref())
                .leaf("subnetId", &p.eni.subnet_id)
                .leaf("vpcId", &p.eni.vpc_id)
                .leaf("sourceDestCheck", "true");
            group_set(x, &p.groups);
        }
        None => {
            x.leaf("privateDnsName", "").leaf("dnsName", "");
            group_set(x, &[]);
        }
    }
    x.open("networkInterfaceSet");
    for v in &net.enis {
        let e = &v.eni;
        x.open("item")
            .leaf("networkInterfaceId", &e.id)
            .leaf("subnetId", &e.subnet_id)
            .leaf("vpcId", &e.vpc_id)
            .leaf("description", &e.description)
            .leaf("ownerId", owner)
            .leaf("status", "in-use")
            .leaf("macAddress", &e.mac)
            .leaf("privateIpAddress", &e.private_ip)
            .leaf("privateDnsName", private_dns_name(&e.private_ip))
            .leaf("sourceDestCheck", "true")
            .leaf("interfaceType", "interface");
        group_set(x, &v.groups);
        x.open("attachment")
            .leaf_opt("attachmentId", e.attachment_id.as_ref())
            .leaf("deviceIndex", e.device_index.unwrap_or(0).to_string())
            .leaf("status", "attached")
            .leaf("deleteOnTermination", e.delete_on_termination.to_string())
            .close("attachment");
        if let Some(ip) = &v.public_ip {
            x.open("association")
                .leaf("publicIp", ip)
                .leaf("publicDnsName", public_dns_name(ip))
                .leaf("ipOwnerId", "amazon")
                .close("association");
        }
        x.open("privateIpAddressesSet")
            .open("item")
            .leaf("privateIpAddress", &e.private_ip)
            .leaf("privateDnsName", private_dns_name(&e.private_ip))
            .leaf("primary", "true");
        if let Some(ip) = &v.public_ip {
            x.open("association")
                .leaf("publicIp", ip)
                .leaf("publicDnsName", public_dns_name(ip))
                .leaf("ipOwnerId", "amazon")
                .close("association");
        }
        x.close("item").close("privateIpAddressesSet").close("item");
    }
    x.close("networkInterfaceSet");
    let o = &net.metadata;
    x.open("metadataOptions")
        .leaf("state", "applied")
        .leaf("httpTokens", &o.http_tokens)
        .leaf("httpPutResponseHopLimit", o.hop_limit.to_string())
        .leaf("httpEndpoint", &o.http_endpoint)
        .leaf("httpProtocolIpv6", "disabled")
        .leaf("instanceMetadataTags", "disabled")
        .close("metadataOptions")
        .open("hibernationOptions")
        .leaf("configured", net.hibernation_configured.to_string())
        .close("hibernationOptions");
}
