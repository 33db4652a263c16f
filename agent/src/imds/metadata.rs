//! What an instance can read about itself, as EC2's metadata tree: directories list their
//! children (subdirectories with a trailing `/`), leaves hold text or bytes.

use std::collections::BTreeMap;

/// One network interface's metadata (under `network/interfaces/macs/<mac>/`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceMetadata {
    /// MAC address.
    pub mac: String,
    /// Attachment index (0 for the primary ENI).
    pub device_number: u32,
    /// `eni-...`.
    pub interface_id: String,
    /// Private addresses.
    pub local_ipv4s: Vec<String>,
    /// Public addresses.
    pub public_ipv4s: Vec<String>,
    /// `subnet-...`.
    pub subnet_id: String,
    /// The subnet's CIDR.
    pub subnet_cidr: String,
    /// `vpc-...`.
    pub vpc_id: String,
    /// The VPC's CIDR.
    pub vpc_cidr: String,
    /// `sg-...` ids.
    pub security_group_ids: Vec<String>,
    /// Security group names.
    pub security_groups: Vec<String>,
}

/// Everything one instance's metadata holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceMetadata {
    /// `ami-...`.
    pub ami_id: String,
    /// Index within its launch.
    pub ami_launch_index: u32,
    /// `i-...`.
    pub instance_id: String,
    /// e.g. `t3.micro`.
    pub instance_type: String,
    /// Private DNS name.
    pub local_hostname: String,
    /// Primary private address.
    pub local_ipv4: String,
    /// Public address, if any.
    pub public_ipv4: Option<String>,
    /// Public DNS name, if any.
    pub public_hostname: Option<String>,
    /// Primary ENI's MAC.
    pub mac: String,
    /// Security group names.
    pub security_groups: Vec<String>,
    /// e.g. `local-1a`.
    pub availability_zone: String,
    /// e.g. `local-1`.
    pub region: String,
    /// `r-...`.
    pub reservation_id: String,
    /// Block device mapping: name (`ami`, `root`, `ebs1`...) to device (`/dev/vda`...).
    pub block_devices: Vec<(String, String)>,
    /// Network interfaces.
    pub interfaces: Vec<InterfaceMetadata>,
    /// The key pair's name and OpenSSH public key.
    pub public_key: Option<(String, String)>,
    /// User data, if any.
    pub user_data: Option<Vec<u8>>,
    /// The instance identity document (JSON).
    pub identity_document: String,
    /// Its signature (base64), if the host signs documents.
    pub identity_signature: Option<String>,
}

/// A node of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A value.
    Leaf(Vec<u8>),
    /// A directory.
    Dir(BTreeMap<String, Node>),
}

fn leaf(text: impl Into<String>) -> Node {
    Node::Leaf(text.into().into_bytes())
}

fn lines(items: &[String]) -> Node {
    leaf(items.join("\n"))
}

fn dir(entries: Vec<(&str, Node)>) -> Node {
    Node::Dir(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

impl InterfaceMetadata {
    fn node(&self) -> Node {
        dir(vec![
            ("device-number", leaf(self.device_number.to_string())),
            ("interface-id", leaf(&self.interface_id)),
            ("local-ipv4s", lines(&self.local_ipv4s)),
            ("mac", leaf(&self.mac)),
            ("public-ipv4s", lines(&self.public_ipv4s)),
            ("security-group-ids", lines(&self.security_group_ids)),
            ("security-groups", lines(&self.security_groups)),
            ("subnet-id", leaf(&self.subnet_id)),
            ("subnet-ipv4-cidr-block", leaf(&self.subnet_cidr)),
            ("vpc-id", leaf(&self.vpc_id)),
            ("vpc-ipv4-cidr-block", leaf(&self.vpc_cidr)),
        ])
    }
}

impl InstanceMetadata {
    /// The tree under `/latest/`.
    pub fn tree(&self) -> Node {
        let mut meta = vec![
            ("ami-id", leaf(&self.ami_id)),
            ("ami-launch-index", leaf(self.ami_launch_index.to_string())),
            ("hostname", leaf(&self.local_hostname)),
            ("instance-id", leaf(&self.instance_id)),
            ("instance-type", leaf(&self.instance_type)),
            ("local-hostname", leaf(&self.local_hostname)),
            ("local-ipv4", leaf(&self.local_ipv4)),
            ("mac", leaf(&self.mac)),
            ("reservation-id", leaf(&self.reservation_id)),
            ("security-groups", lines(&self.security_groups)),
            (
                "placement",
                dir(vec![
                    ("availability-zone", leaf(&self.availability_zone)),
                    ("region", leaf(&self.region)),
                ]),
            ),
            (
                "block-device-mapping",
                Node::Dir(
                    self.block_devices
                        .iter()
                        .map(|(name, dev)| (name.clone(), leaf(dev)))
                        .collect(),
                ),
            ),
            (
                "network",
                dir(vec![(
                    "interfaces",
                    dir(vec![(
                        "macs",
                        Node::Dir(
                            self.interfaces
                                .iter()
                                .map(|i| (i.mac.clone(), i.node()))
                                .collect(),
                        ),
                    )]),
                )]),
            ),
        ];
        if let Some(ip) = &self.public_ipv4 {
            meta.push(("public-ipv4", leaf(ip)));
        }
        if let Some(name) = &self.public_hostname {
            meta.push(("public-hostname", leaf(name)));
        }
        if let Some((name, key)) = &self.public_key {
            let mut keys = BTreeMap::new();
            keys.insert(format!("0={name}"), dir(vec![("openssh-key", leaf(key))]));
            meta.push(("public-keys", Node::Dir(keys)));
        }
        let mut identity = vec![("document", leaf(&self.identity_document))];
        if let Some(sig) = &self.identity_signature {
            identity.push(("signature", leaf(sig)));
        }
        let mut top = vec![
            ("meta-data", dir(meta)),
            ("dynamic", dir(vec![("instance-identity", dir(identity))])),
        ];
        if let Some(data) = &self.user_data {
            top.push(("user-data", Node::Leaf(data.clone())));
        }
        dir(top)
    }
}

impl Node {
    /// The node at `path` (segments separated by `/`; empty segments ignored). Public keys
    /// are listed as `0=name` and reached as `0`, as on EC2.
    pub fn find(&self, path: &str) -> Option<&Node> {
        path.split('/')
            .filter(|s| !s.is_empty())
            .try_fold(self, |node, segment| match node {
                Node::Dir(children) => children.get(segment).or_else(|| {
                    children
                        .iter()
                        .find(|(name, _)| {
                            name.split_once('=').is_some_and(|(idx, _)| idx == segment)
                        })
                        .map(|(_, n)| n)
                }),
                Node::Leaf(_) => None,
            })
    }

    /// What a GET of this node returns: a leaf's value, or a directory's listing.
    pub fn body(&self) -> Vec<u8> {
        match self {
            Node::Leaf(bytes) => bytes.clone(),
            Node::Dir(children) => children
                .iter()
                .map(|(name, node)| match node {
                    Node::Dir(_) if !name.contains('=') => format!("{name}/"),
                    _ => name.clone(),
                })
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> InstanceMetadata {
        InstanceMetadata {
            ami_id: "ami-0123456789abcdef0".into(),
            instance_id: "i-0123456789abcdef0".into(),
            instance_type: "t3.micro".into(),
            local_hostname: "ip-172-31-0-5.local-1.compute.internal".into(),
            local_ipv4: "172.31.0.5".into(),
            public_ipv4: Some("198.51.100.7".into()),
            mac: "02:00:00:00:00:05".into(),
            security_groups: vec!["default".into(), "web".into()],
            availability_zone: "local-1a".into(),
            region: "local-1".into(),
            reservation_id: "r-0123456789abcdef0".into(),
            block_devices: vec![
                ("ami".into(), "/dev/vda".into()),
                ("root".into(), "/dev/vda".into()),
            ],
            interfaces: vec![InterfaceMetadata {
                mac: "02:00:00:00:00:05".into(),
                interface_id: "eni-0123456789abcdef0".into(),
                local_ipv4s: vec!["172.31.0.5".into()],
                subnet_id: "subnet-0123".into(),
                subnet_cidr: "172.31.0.0/20".into(),
                vpc_id: "vpc-0123".into(),
                vpc_cidr: "172.31.0.0/16".into(),
                security_group_ids: vec!["sg-1".into(), "sg-2".into()],
                ..Default::default()
            }],
            public_key: Some(("k".into(), "ssh-ed25519 AAAA k".into())),
            user_data: Some(b"#!/bin/sh\necho hi\n".to_vec()),
            identity_document: "{\"instanceId\":\"i-0123456789abcdef0\"}".into(),
            ..Default::default()
        }
    }

    fn get(path: &str) -> Option<String> {
        sample()
            .tree()
            .find(path)
            .map(|n| String::from_utf8(n.body()).unwrap())
    }

    #[test]
    fn leaves_hold_the_values() {
        assert_eq!(
            get("meta-data/instance-id").as_deref(),
            Some("i-0123456789abcdef0")
        );
        assert_eq!(
            get("meta-data/placement/availability-zone").as_deref(),
            Some("local-1a")
        );
        assert_eq!(
            get("meta-data/public-ipv4").as_deref(),
            Some("198.51.100.7")
        );
        assert_eq!(
            get("meta-data/security-groups").as_deref(),
            Some("default\nweb")
        );
        assert_eq!(
            get("meta-data/public-keys/0/openssh-key").as_deref(),
            Some("ssh-ed25519 AAAA k")
        );
        assert_eq!(
            get("meta-data/network/interfaces/macs/02:00:00:00:00:05/security-group-ids")
                .as_deref(),
            Some("sg-1\nsg-2")
        );
        assert_eq!(get("user-data").as_deref(), Some("#!/bin/sh\necho hi\n"));
    }

    #[test]
    fn directories_list_their_children() {
        let top = get("").unwrap();
        assert_eq!(top, "dynamic/\nmeta-data/\nuser-data");
        let meta = get("meta-data/").unwrap();
        assert!(
            meta.contains("instance-id\n")
                && meta.contains("placement/")
                && meta.contains("public-keys/")
        );
        assert_eq!(get("meta-data/public-keys/").as_deref(), Some("0=k"));
        assert_eq!(
            get("meta-data/public-keys/0/").as_deref(),
            Some("openssh-key")
        );
        assert_eq!(
            get("meta-data/block-device-mapping/").as_deref(),
            Some("ami\nroot")
        );
        assert_eq!(
            get("meta-data/network/interfaces/macs/").as_deref(),
            Some("02:00:00:00:00:05/")
        );
    }

    #[test]
    fn missing_things_are_not_found() {
        let mut m = sample();
        m.user_data = None;
        m.public_ipv4 = None;
        m.public_key = None;
        let tree = m.tree();
        assert!(tree.find("user-data").is_none());
        assert!(tree.find("meta-data/public-ipv4").is_none());
        assert!(tree.find("meta-data/public-keys/0/openssh-key").is_none());
        assert!(tree.find("meta-data/instance-id/extra").is_none());
        assert!(tree.find("meta-data/nope").is_none());
    }
}
