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
    /// The account owning the interface.
    pub owner_id: String,
    /// Private DNS name of its first private address.
    pub local_hostname: String,
    /// Public DNS name, if it has a public address.
    pub public_hostname: Option<String>,
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

/// Adds `name` to `entries` when `items` holds something: EC2 leaves a list without items
/// out of its directory (an interface without a public address has no `public-ipv4s`).
fn push_lines<'a>(entries: &mut Vec<(&'a str, Node)>, name: &'a str, items: &[String]) {
    if !items.is_empty() {
        entries.push((name, lines(items)));
    }
}

impl InterfaceMetadata {
    fn node(&self) -> Node {
        let mut entries = vec![
            ("device-number", leaf(self.device_number.to_string())),
            ("interface-id", leaf(&self.interface_id)),
            ("local-hostname", leaf(&self.local_hostname)),
            ("mac", leaf(&self.mac)),
            ("owner-id", leaf(&self.owner_id)),
            ("subnet-id", leaf(&self.subnet_id)),
            ("subnet-ipv4-cidr-block", leaf(&self.subnet_cidr)),
            ("vpc-id", leaf(&self.vpc_id)),
            ("vpc-ipv4-cidr-block", leaf(&self.vpc_cidr)),
            ("vpc-ipv4-cidr-blocks", leaf(&self.vpc_cidr)),
        ];
        push_lines(&mut entries, "local-ipv4s", &self.local_ipv4s);
        push_lines(&mut entries, "public-ipv4s", &self.public_ipv4s);
        push_lines(&mut entries, "security-group-ids", &self.security_group_ids);
        push_lines(&mut entries, "security-groups", &self.security_groups);
        if let Some(name) = &self.public_hostname {
            entries.push(("public-hostname", leaf(name)));
        }
        // Each public address maps to the private one it is translated to.
        if let Some(private) = self.local_ipv4s.first() {
            let associations: BTreeMap<String, Node> = self
                .public_ipv4s
                .iter()
                .map(|public| (public.clone(), leaf(private)))
                .collect();
            if !associations.is_empty() {
                entries.push(("ipv4-associations", Node::Dir(associations)));
            }
        }
        dir(entries)
    }
}

impl InstanceMetadata {
    /// The tree under `/latest/` (and every dated version).
    pub fn tree(&self) -> Node {
        let mut meta = vec![
            ("ami-id", leaf(&self.ami_id)),
            ("ami-launch-index", leaf(self.ami_launch_index.to_string())),
            ("ami-manifest-path", leaf("(unknown)")),
            ("hostname", leaf(&self.local_hostname)),
            ("instance-action", leaf("none")),
            ("instance-id", leaf(&self.instance_id)),
            ("instance-life-cycle", leaf("on-demand")),
            ("instance-type", leaf(&self.instance_type)),
            ("local-hostname", leaf(&self.local_hostname)),
            ("local-ipv4", leaf(&self.local_ipv4)),
            ("mac", leaf(&self.mac)),
            ("profile", leaf("default-hvm")),
            ("reservation-id", leaf(&self.reservation_id)),
            (
                "placement",
                dir(vec![
                    ("availability-zone", leaf(&self.availability_zone)),
                    ("region", leaf(&self.region)),
                ]),
            ),
            (
                "services",
                dir(vec![
                    ("domain", leaf("amazonaws.com")),
                    ("partition", leaf("aws")),
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
        push_lines(&mut meta, "security-groups", &self.security_groups);
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

    /// What a GET of a version's root returns: its entries' names alone, one a line
    /// (`dynamic`, `meta-data`, `user-data`), as EC2 lists them there.
    pub fn names(&self) -> String {
        match self {
            Node::Leaf(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            Node::Dir(children) => children.keys().cloned().collect::<Vec<_>>().join("\n"),
        }
    }

    /// What a GET of this node returns: a leaf's value, or a directory's listing, each
    /// subdirectory with a trailing `/` (a public key's `0=name` without one, as on EC2).
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
            public_hostname: Some("ec2-198-51-100-7.local-1.compute.amazonaws.com".into()),
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
                security_groups: vec!["default".into(), "web".into()],
                owner_id: "000000000000".into(),
                local_hostname: "ip-172-31-0-5.local-1.compute.internal".into(),
                public_ipv4s: vec!["198.51.100.7".into()],
                public_hostname: Some("ec2-198-51-100-7.local-1.compute.amazonaws.com".into()),
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
    fn listings_are_ecs() {
        assert_eq!(sample().tree().names(), "dynamic\nmeta-data\nuser-data");
        assert_eq!(
            get("meta-data/").unwrap(),
            "ami-id\nami-launch-index\nami-manifest-path\nblock-device-mapping/\nhostname\n\
             instance-action\ninstance-id\ninstance-life-cycle\ninstance-type\n\
             local-hostname\nlocal-ipv4\nmac\nnetwork/\nplacement/\nprofile\n\
             public-hostname\npublic-ipv4\npublic-keys/\nreservation-id\nsecurity-groups\n\
             services/"
        );
        assert_eq!(
            get("meta-data/network/interfaces/macs/02:00:00:00:00:05/").unwrap(),
            "device-number\ninterface-id\nipv4-associations/\nlocal-hostname\nlocal-ipv4s\n\
             mac\nowner-id\npublic-hostname\npublic-ipv4s\nsecurity-group-ids\n\
             security-groups\nsubnet-id\nsubnet-ipv4-cidr-block\nvpc-id\n\
             vpc-ipv4-cidr-block\nvpc-ipv4-cidr-blocks"
        );
        let mac = "meta-data/network/interfaces/macs/02:00:00:00:00:05";
        assert_eq!(
            get(&format!("{mac}/ipv4-associations/198.51.100.7")).as_deref(),
            Some("172.31.0.5")
        );
        assert_eq!(
            get(&format!("{mac}/vpc-ipv4-cidr-blocks")).as_deref(),
            Some("172.31.0.0/16")
        );
        assert_eq!(
            get("meta-data/services/").as_deref(),
            Some("domain\npartition")
        );
        assert_eq!(
            get("meta-data/services/domain").as_deref(),
            Some("amazonaws.com")
        );
        assert_eq!(get("dynamic/").as_deref(), Some("instance-identity/"));
        assert_eq!(
            get("dynamic/instance-identity/").as_deref(),
            Some("document")
        );
    }

    #[test]
    fn empty_lists_are_left_out_as_on_ec2() {
        let mut m = sample();
        m.security_groups.clear();
        let interface = &mut m.interfaces[0];
        interface.public_ipv4s.clear();
        interface.public_hostname = None;
        interface.security_groups.clear();
        interface.security_group_ids.clear();
        let tree = m.tree();
        let listing = |path: &str| String::from_utf8(tree.find(path).unwrap().body()).unwrap();
        assert!(!listing("meta-data/").contains("security-groups"));
        assert_eq!(
            listing("meta-data/network/interfaces/macs/02:00:00:00:00:05/"),
            "device-number\ninterface-id\nlocal-hostname\nlocal-ipv4s\nmac\nowner-id\n\
             subnet-id\nsubnet-ipv4-cidr-block\nvpc-id\nvpc-ipv4-cidr-block\n\
             vpc-ipv4-cidr-blocks"
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
