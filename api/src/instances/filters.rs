//! The filters DescribeInstances takes. A few narrow the SQL query itself (ids, states,
//! image, type, key, reservation, tags: exact values, so the 10,000-row describe stays an
//! indexed query); every other documented filter the agent can answer is matched here, with
//! EC2's wildcards, against the fields the instance is shown with: its primary network
//! interface (`subnet-id`, `private-ip-address`, ...), each interface
//! (`network-interface.*`), its volumes (`block-device-mapping.*`), placement, metadata and
//! hibernation options.

use crate::AVAILABILITY_ZONE;
use crate::instance_network::{EniView, InstanceNetwork, public_dns_name};
use host::compute::disks::ROOT_DEVICE;
use host::imds::source::private_dns_name;
use state::instances::InstanceRow;
use state::volumes::VolumeRow;

/// The filters answered by the SQL query when none of their values holds a wildcard.
pub const SQL_FILTERS: &[&str] = &[
    "instance-id",
    "instance-state-name",
    "instance-state-code",
    "image-id",
    "instance-type",
    "key-name",
    "reservation-id",
];

/// The filters answered by [`field`] (the SQL ones too, for values with wildcards).
pub const FIELD_FILTERS: &[&str] = &[
    "architecture",
    "availability-zone",
    "placement.availability-zone",
    "block-device-mapping.attach-time",
    "block-device-mapping.delete-on-termination",
    "block-device-mapping.device-name",
    "block-device-mapping.status",
    "block-device-mapping.volume-id",
    "client-token",
    "dns-name",
    "group-id",
    "instance.group-id",
    "group-name",
    "instance.group-name",
    "hibernation-options.configured",
    "ip-address",
    "launch-index",
    "launch-time",
    "metadata-options.http-endpoint",
    "metadata-options.http-protocol-ipv6",
    "metadata-options.http-put-response-hop-limit",
    "metadata-options.http-tokens",
    "metadata-options.instance-metadata-tags",
    "metadata-options.state",
    "monitoring-state",
    "network-interface.addresses.association.ip-owner-id",
    "network-interface.addresses.association.public-dns-name",
    "network-interface.addresses.association.public-ip",
    "network-interface.addresses.primary",
    "network-interface.addresses.private-dns-name",
    "network-interface.addresses.private-ip-address",
    "network-interface.association.ip-owner-id",
    "network-interface.association.public-dns-name",
    "network-interface.association.public-ip",
    "network-interface.attachment.attachment-id",
    "network-interface.attachment.delete-on-termination",
    "network-interface.attachment.device-index",
    "network-interface.attachment.instance-id",
    "network-interface.attachment.instance-owner-id",
    "network-interface.attachment.status",
    "network-interface.availability-zone",
    "network-interface.description",
    "network-interface.group-id",
    "network-interface.group-name",
    "network-interface.mac-address",
    "network-interface.network-interface-id",
    "network-interface.owner-id",
    "network-interface.private-dns-name",
    "network-interface.private-ip-address",
    "network-interface.source-dest-check",
    "network-interface.status",
    "network-interface.subnet-id",
    "network-interface.vpc-id",
    "owner-id",
    "placement.tenancy",
    "tenancy",
    "private-dns-name",
    "private-ip-address",
    "reason",
    "root-device-name",
    "root-device-type",
    "source-dest-check",
    "state-reason-code",
    "state-reason-message",
    "subnet-id",
    "virtualization-type",
    "vpc-id",
];

/// Whether DescribeInstances takes the filter `name` (in its documented spelling).
pub fn known(name: &str) -> bool {
    SQL_FILTERS.contains(&name)
        || FIELD_FILTERS.contains(&name)
        || name == "tag-key"
        || name.starts_with("tag:")
}

/// The names listed when a filter is refused.
pub fn supported() -> String {
    let mut names: Vec<&str> = SQL_FILTERS.iter().chain(FIELD_FILTERS).copied().collect();
    names.extend(["tag:KEY", "tag-key"]);
    names.join(", ")
}

/// One instance as DescribeInstances shows it.
pub struct Shown<'a> {
    /// The row.
    pub row: &'a InstanceRow,
    /// Its network.
    pub net: &'a InstanceNetwork,
    /// Its attached volumes.
    pub vols: &'a [VolumeRow],
    /// The account id.
    pub owner: &'a str,
}

fn one(s: impl Into<String>) -> Option<Vec<String>> {
    Some(vec![s.into()])
}

/// The instance's values for filter `name`, as its response shows them (an empty list when
/// it shows none, so that nothing matches); `None` for a name answered elsewhere.
pub fn field(name: &str, s: &Shown<'_>) -> Option<Vec<String>> {
    let (r, net) = (s.row, s.net);
    let primary = net.enis.iter().find(|v| v.eni.device_index == Some(0));
    let from_primary =
        |f: &dyn Fn(&EniView) -> Vec<String>| Some(primary.map(f).unwrap_or_default());
    let each_vol = |f: &dyn Fn(&VolumeRow) -> String| Some(s.vols.iter().map(f).collect());
    let has_root = s
        .vols
        .iter()
        .any(|v| v.device.as_deref() == Some(ROOT_DEVICE));
    match name {
        "instance-id" => one(&r.id),
        "instance-state-name" => one(r.state.name()),
        "instance-state-code" => one(r.state.code().to_string()),
        "image-id" => one(&r.image_id),
        "instance-type" => one(&r.instance_type),
        "key-name" => Some(r.key_name.iter().cloned().collect()),
        "reservation-id" => one(&r.reservation_id),
        "architecture" => one(&r.architecture),
        "availability-zone" | "placement.availability-zone" => one(AVAILABILITY_ZONE),
        "tenancy" | "placement.tenancy" => one("default"),
        "client-token" => Some(r.client_token.iter().cloned().collect()),
        "launch-index" => one(r.launch_index.to_string()),
        "launch-time" => one(&r.launch_time),
        "reason" => one(&r.transition_reason),
        "state-reason-code" => Some(r.state_reason_code.iter().cloned().collect()),
        "state-reason-message" => Some(r.state_reason_message.iter().cloned().collect()),
        "monitoring-state" => one("disabled"),
        "virtualization-type" => one("hvm"),
        "owner-id" => one(s.owner),
        "root-device-name" => one(ROOT_DEVICE),
        "root-device-type" => one(if has_root { "ebs" } else { "instance-store" }),
        "hibernation-options.configured" => one(net.hibernation_configured.to_string()),
        "metadata-options.http-tokens" => one(&net.metadata.http_tokens),
        "metadata-options.http-endpoint" => one(&net.metadata.http_endpoint),
        "metadata-options.http-put-response-hop-limit" => one(net.metadata.hop_limit.to_string()),
        "metadata-options.http-protocol-ipv6" | "metadata-options.instance-metadata-tags" => {
            one("disabled")
        }
        "metadata-options.state" => one("applied"),
        "block-device-mapping.attach-time" => {
            each_vol(&|v| v.attach_time.clone().unwrap_or_default())
        }
        "block-device-mapping.delete-on-termination" => {
            each_vol(&|v| v.delete_on_termination.to_string())
        }
        "block-device-mapping.device-name" => each_vol(&|v| v.device.clone().unwrap_or_default()),
        "block-device-mapping.status" => each_vol(&|_| "attached".into()),
        "block-device-mapping.volume-id" => each_vol(&|v| v.id.clone()),
        // The instance's own fields come from its primary interface.
        "subnet-id" => from_primary(&|p| vec![p.eni.subnet_id.clone()]),
        "vpc-id" => from_primary(&|p| vec![p.eni.vpc_id.clone()]),
        "private-ip-address" => from_primary(&|p| vec![p.eni.private_ip.clone()]),
        "private-dns-name" => from_primary(&|p| vec![private_dns_name(&p.eni.private_ip)]),
        "ip-address" => from_primary(&|p| p.public_ip.iter().cloned().collect()),
        "dns-name" => from_primary(&|p| p.public_ip.iter().map(|ip| public_dns_name(ip)).collect()),
        "source-dest-check" => from_primary(&|_| vec!["true".into()]),
        "group-id" | "instance.group-id" => {
            from_primary(&|p| p.groups.iter().map(|g| g.id.clone()).collect())
        }
        "group-name" | "instance.group-name" => {
            from_primary(&|p| p.groups.iter().map(|g| g.name.clone()).collect())
        }
        _ => eni_field(name.strip_prefix("network-interface.")?, s),
    }
}

/// The `network-interface.*` filters, over every interface of the instance.
fn eni_field(name: &str, s: &Shown<'_>) -> Option<Vec<String>> {
    let each_eni = |f: &dyn Fn(&EniView) -> Vec<String>| -> Option<Vec<String>> {
        Some(s.net.enis.iter().flat_map(f).collect())
    };
    let owner = s.owner.to_string();
    let instance = s.row.id.clone();
    let public = |v: &EniView, dns: bool| -> Vec<String> {
        v.public_ip
            .iter()
            .map(|ip| if dns { public_dns_name(ip) } else { ip.clone() })
            .collect()
    };
    match name {
        "network-interface-id" => each_eni(&|v| vec![v.eni.id.clone()]),
        "subnet-id" => each_eni(&|v| vec![v.eni.subnet_id.clone()]),
        "vpc-id" => each_eni(&|v| vec![v.eni.vpc_id.clone()]),
        "description" => each_eni(&|v| vec![v.eni.description.clone()]),
        "owner-id" | "attachment.instance-owner-id" => each_eni(&|_| vec![owner.clone()]),
        "status" => each_eni(&|_| vec!["in-use".into()]),
        "mac-address" => each_eni(&|v| vec![v.eni.mac.clone()]),
        "private-ip-address" | "addresses.private-ip-address" => {
            each_eni(&|v| vec![v.eni.private_ip.clone()])
        }
        "private-dns-name" | "addresses.private-dns-name" => {
            each_eni(&|v| vec![private_dns_name(&v.eni.private_ip)])
        }
        "addresses.primary" => each_eni(&|_| vec!["true".into()]),
        "source-dest-check" => each_eni(&|_| vec!["true".into()]),
        "availability-zone" => each_eni(&|_| vec![AVAILABILITY_ZONE.into()]),
        "group-id" => each_eni(&|v| v.groups.iter().map(|g| g.id.clone()).collect()),
        "group-name" => each_eni(&|v| v.groups.iter().map(|g| g.name.clone()).collect()),
        "attachment.attachment-id" => each_eni(&|v| v.eni.attachment_id.iter().cloned().collect()),
        "attachment.device-index" => {
            each_eni(&|v| vec![v.eni.device_index.unwrap_or(0).to_string()])
        }
        "attachment.instance-id" => each_eni(&|_| vec![instance.clone()]),
        "attachment.status" => each_eni(&|_| vec!["attached".into()]),
        "attachment.delete-on-termination" => {
            each_eni(&|v| vec![v.eni.delete_on_termination.to_string()])
        }
        "association.public-ip" | "addresses.association.public-ip" => {
            each_eni(&|v| public(v, false))
        }
        "association.public-dns-name" | "addresses.association.public-dns-name" => {
            each_eni(&|v| public(v, true))
        }
        "association.ip-owner-id" | "addresses.association.ip-owner-id" => {
            each_eni(&|v| v.public_ip.iter().map(|_| "amazon".to_string()).collect())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::enis::EniRow;
    use state::instances::InstanceState;
    use state::security_groups::GroupRow;

    fn eni(id: &str, index: u32, ip: &str) -> EniView {
        EniView {
            eni: EniRow {
                seq: 0,
                id: id.into(),
                subnet_id: format!("subnet-{index}"),
                vpc_id: "vpc-1".into(),
                mac: format!("02:00:00:00:00:0{index}"),
                private_ip: ip.into(),
                description: String::new(),
                instance_id: Some("i-1".into()),
                device_index: Some(index),
                attachment_id: Some(format!("eni-attach-{index}")),
                delete_on_termination: true,
                wants_public_ip: false,
                public_ip: None,
            },
            groups: vec![GroupRow {
                id: format!("sg-{index}"),
                vpc_id: "vpc-1".into(),
                name: format!("group-{index}"),
                description: String::new(),
            }],
            public_ip: (index == 0).then(|| "198.51.100.7".to_string()),
        }
    }

    #[test]
    fn every_listed_filter_is_answered() {
        let row = InstanceRow::example("i-1", InstanceState::Running);
        let net = InstanceNetwork {
            enis: vec![eni("eni-a", 0, "10.0.0.5"), eni("eni-b", 1, "10.0.1.5")],
            ..Default::default()
        };
        let s = Shown {
            row: &row,
            net: &net,
            vols: &[],
            owner: "123456789012",
        };
        for name in SQL_FILTERS.iter().chain(FIELD_FILTERS) {
            assert!(
                field(name, &s).is_some(),
                "{name} is listed but not answered"
            );
        }
        assert_eq!(field("colour", &s), None);
        assert_eq!(field("network-interface.colour", &s), None);
    }

    #[test]
    fn primary_and_every_interface() {
        let row = InstanceRow::example("i-1", InstanceState::Running);
        let net = InstanceNetwork {
            enis: vec![eni("eni-b", 1, "10.0.1.5"), eni("eni-a", 0, "10.0.0.5")],
            ..Default::default()
        };
        let s = Shown {
            row: &row,
            net: &net,
            vols: &[],
            owner: "123456789012",
        };
        let v = |n: &str| field(n, &s).unwrap();
        assert_eq!(v("subnet-id"), ["subnet-0"]);
        assert_eq!(v("private-ip-address"), ["10.0.0.5"]);
        assert_eq!(v("ip-address"), ["198.51.100.7"]);
        assert_eq!(v("group-id"), ["sg-0"]);
        assert_eq!(v("network-interface.subnet-id"), ["subnet-1", "subnet-0"]);
        assert_eq!(
            v("network-interface.private-ip-address"),
            ["10.0.1.5", "10.0.0.5"]
        );
        assert_eq!(v("root-device-type"), ["instance-store"]);
        assert_eq!(v("key-name"), Vec::<String>::new());
        let none = InstanceNetwork::default();
        let s = Shown { net: &none, ..s };
        assert_eq!(field("vpc-id", &s).unwrap(), Vec::<String>::new());
    }
}
