//! RunInstances' network: the subnet (the default one when none is named), the security
//! groups (by id or name, the VPC's default one when none), a private address, whether the
//! instance wants a public address, and its metadata options.

use std::net::Ipv4Addr;

use rusqlite::Connection;

use host::compute::launch::NetworkRequest;
use state::enis::MetadataOptionsRow;
use state::vpcs;

use super::lookups::{GroupsError, groups_or_default};
use super::metadata_options::{ModifyMetadataOptions, changed};
use crate::Refusal;

/// What a RunInstances request asks of the network.
#[derive(Debug, Clone, Default)]
pub struct LaunchNetwork {
    /// The subnet; the default subnet when `None`.
    pub subnet_id: Option<String>,
    /// Security groups by id.
    pub group_ids: Vec<String>,
    /// Security groups by name, in the subnet's VPC.
    pub group_names: Vec<String>,
    /// A private address (one instance only).
    pub private_ip: Option<Ipv4Addr>,
    /// Whether to give a public address; the subnet's `MapPublicIpOnLaunch` when `None`.
    pub public_ip: Option<bool>,
    /// The instances' metadata options (the instance id is not used).
    pub metadata: ModifyMetadataOptions,
    /// How many instances at most (`MaxCount`).
    pub max_count: u32,
}

/// Why RunInstances' network is refused.
#[derive(Debug, thiserror::Error)]
pub enum LaunchNetworkError {
    /// A private address for more than one instance.
    #[error(
        "Cannot specify an explicit private IP address for more than one instance (MaxCount > 1)"
    )]
    PrivateIpForMany,
    /// No subnet has that id.
    #[error("The subnet ID '{0}' does not exist")]
    NoSubnet(String),
    /// No subnet named and no default VPC.
    #[error("No default VPC for this user; give a SubnetId")]
    NoDefaultVpc,
    /// The groups cannot be used.
    #[error(transparent)]
    Groups(#[from] GroupsError),
    /// The hop limit is out of range.
    #[error(
        "Value for parameter MetadataOptions.HttpPutResponseHopLimit is invalid: '{0}' is not an \
         integer from 1 to 64"
    )]
    HopLimit(i32),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for LaunchNetworkError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::PrivateIpForMany => Some("InvalidParameterCombination"),
            Self::NoSubnet(_) => Some("InvalidSubnetID.NotFound"),
            Self::NoDefaultVpc => Some("VPCIdNotSpecified"),
            Self::Groups(e) => e.code(),
            Self::HopLimit(_) => Some("InvalidParameterValue"),
            Self::Db(_) => None,
        }
    }
}

/// The network of a launch, checked and resolved against the state.
pub fn resolve(
    conn: &Connection,
    asked: &LaunchNetwork,
) -> Result<NetworkRequest, LaunchNetworkError> {
    if asked.private_ip.is_some() && asked.max_count > 1 {
        return Err(LaunchNetworkError::PrivateIpForMany);
    }
    let subnet = match &asked.subnet_id {
        Some(id) => {
            vpcs::get_subnet(conn, id)?.ok_or_else(|| LaunchNetworkError::NoSubnet(id.clone()))?
        }
        None => vpcs::default_subnet(conn)?.ok_or(LaunchNetworkError::NoDefaultVpc)?,
    };
    let groups = groups_or_default(conn, &subnet.vpc_id, &asked.group_ids, &asked.group_names)?;
    let metadata = changed(MetadataOptionsRow::default(), &asked.metadata)
        .map_err(LaunchNetworkError::HopLimit)?;
    Ok(NetworkRequest {
        wants_public_ip: asked.public_ip.unwrap_or(subnet.map_public_ip),
        subnet,
        group_ids: groups.into_iter().map(|g| g.id).collect(),
        private_ip: asked.private_ip,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launch_takes_the_default_subnet_and_group_and_checks_the_rest() {
        let (_dir, db) = crate::ec2::test_db();
        let conn = db.lock();
        let e = resolve(&conn, &LaunchNetwork::default()).unwrap_err();
        assert_eq!(e.code(), Some("VPCIdNotSpecified"));
        let e = resolve(
            &conn,
            &LaunchNetwork {
                private_ip: Some(Ipv4Addr::new(10, 0, 0, 5)),
                max_count: 2,
                ..LaunchNetwork::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.code(), Some("InvalidParameterCombination"));
        let e = resolve(
            &conn,
            &LaunchNetwork {
                subnet_id: Some("subnet-00000001".into()),
                ..LaunchNetwork::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.code(), Some("InvalidSubnetID.NotFound"));
    }

    #[test]
    fn a_hop_limit_out_of_range_is_named_as_run_instances_names_it() {
        let mut asked = LaunchNetwork::default();
        asked.metadata.hop_limit = Some(65);
        let (_dir, db) = crate::ec2::test_db();
        let conn = db.lock();
        state::vpcs::insert_vpc(&conn, "vpc-00000001", "10.0.0.0/16", true).unwrap();
        state::vpcs::insert_subnet(
            &conn,
            &state::vpcs::SubnetRow {
                id: "subnet-00000001".into(),
                vpc_id: "vpc-00000001".into(),
                cidr: "10.0.0.0/24".into(),
                availability_zone: "local-1a".into(),
                map_public_ip: false,
                is_default: true,
                created: String::new(),
            },
        )
        .unwrap();
        super::super::security_groups::create_group(
            &conn,
            &super::super::security_groups::CreateGroup {
                name: "default".into(),
                description: "default".into(),
                vpc_id: Some("vpc-00000001".into()),
                tags: Vec::new(),
            },
        )
        .unwrap();
        let e = resolve(&conn, &asked).unwrap_err();
        assert!(
            e.to_string()
                .contains("MetadataOptions.HttpPutResponseHopLimit is invalid: '65'"),
            "{e}"
        );
        asked.metadata.hop_limit = Some(2);
        let net = resolve(&conn, &asked).unwrap();
        assert_eq!(net.metadata.hop_limit, 2);
        assert_eq!(net.group_ids.len(), 1, "the VPC's default group");
        assert!(!net.wants_public_ip, "the subnet's MapPublicIpOnLaunch");
    }
}
