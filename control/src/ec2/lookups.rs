//! The lookups the networking commands share, each with its own refusal: a live instance, a
//! network interface, the security groups an interface is given, and the codes of the
//! address allocator's errors.

use rusqlite::Connection;

use host::network::addressing::AddressError;
use state::enis::{self, EniRow};
use state::instances::{self, InstanceRow, InstanceState};
use state::security_groups::{self, GroupRow};

use crate::Refusal;

/// Most security groups per ENI, as on EC2.
pub const MAX_GROUPS_PER_ENI: usize = 5;

pub use state::well_formed_id;

/// An instance that a change names cannot be changed.
#[derive(Debug, thiserror::Error)]
pub enum LiveInstanceError {
    /// Not an instance id.
    #[error("Invalid id: \"{0}\" (expecting \"i-...\")")]
    Malformed(String),
    /// No such instance.
    #[error("The instance ID '{0}' does not exist")]
    NotFound(String),
    /// It is terminated or shutting down.
    #[error("The instance '{id}' is not in a state from which it can be modified ({state}).")]
    Gone {
        /// The instance.
        id: String,
        /// Its state's name.
        state: &'static str,
    },
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for LiveInstanceError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Malformed(_) => Some("InvalidInstanceID.Malformed"),
            Self::NotFound(_) => Some("InvalidInstanceID.NotFound"),
            Self::Gone { .. } => Some("IncorrectInstanceState"),
            Self::Db(_) => None,
        }
    }
}

/// The instance `id` unless it is terminated or shutting down.
pub fn live_instance(conn: &Connection, id: &str) -> Result<InstanceRow, LiveInstanceError> {
    if !well_formed_id(id, "i") {
        return Err(LiveInstanceError::Malformed(id.to_owned()));
    }
    let row = instances::get(conn, id)?.ok_or_else(|| LiveInstanceError::NotFound(id.into()))?;
    if matches!(
        row.state,
        InstanceState::Terminated | InstanceState::ShuttingDown
    ) {
        return Err(LiveInstanceError::Gone {
            id: id.to_owned(),
            state: row.state.name(),
        });
    }
    Ok(row)
}

/// A network interface that a change names does not exist (or the database failed).
#[derive(Debug, thiserror::Error)]
pub enum EniLookupError {
    /// No such interface.
    #[error("The networkInterface ID '{0}' does not exist")]
    NotFound(String),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for EniLookupError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::NotFound(_) => Some("InvalidNetworkInterfaceID.NotFound"),
            Self::Db(_) => None,
        }
    }
}

/// The network interface `id`.
pub fn eni(conn: &Connection, id: &str) -> Result<EniRow, EniLookupError> {
    enis::get(conn, id)?.ok_or_else(|| EniLookupError::NotFound(id.to_owned()))
}

/// The security groups given to an interface cannot be.
#[derive(Debug, thiserror::Error)]
pub enum GroupsError {
    /// None given where some must be.
    #[error("The request must contain the parameter GroupId.1")]
    Missing,
    /// Not a group id.
    #[error("Invalid id: \"{0}\" (expecting \"sg-...\")")]
    Malformed(String),
    /// No such group.
    #[error("The security group '{0}' does not exist")]
    NotFound(String),
    /// No group of that name in the VPC.
    #[error("The security group '{name}' does not exist in VPC '{vpc}'")]
    NameNotFound {
        /// The name.
        name: String,
        /// The VPC.
        vpc: String,
    },
    /// A group of another VPC.
    #[error("Security group {id} and subnet belong to different networks ({group_vpc} and {vpc}).")]
    OtherVpc {
        /// The group.
        id: String,
        /// Its VPC.
        group_vpc: String,
        /// The interface's VPC.
        vpc: String,
    },
    /// None given, and the VPC has no default group.
    #[error("VPC '{0}' has no default security group")]
    NoDefault(String),
    /// More than [`MAX_GROUPS_PER_ENI`].
    #[error(
        "The maximum number of security groups per interface has been reached: at most \
         {MAX_GROUPS_PER_ENI}, {0} given."
    )]
    TooMany(usize),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for GroupsError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Missing => Some("MissingParameter"),
            Self::Malformed(_) => Some("InvalidGroupId.Malformed"),
            Self::NotFound(_) | Self::NameNotFound { .. } | Self::NoDefault(_) => {
                Some("InvalidGroup.NotFound")
            }
            Self::OtherVpc { .. } => Some("InvalidParameter"),
            Self::TooMany(_) => Some("SecurityGroupsPerInterfaceLimitExceeded"),
            Self::Db(_) => None,
        }
    }
}

/// The groups `ids` and `names` of `vpc_id` for a new interface, or the VPC's default group
/// when none are given.
pub fn groups_or_default(
    conn: &Connection,
    vpc_id: &str,
    ids: &[String],
    names: &[String],
) -> Result<Vec<GroupRow>, GroupsError> {
    let mut out: Vec<GroupRow> = Vec::new();
    for id in ids {
        let g = security_groups::get_group(conn, id)?
            .ok_or_else(|| GroupsError::NotFound(id.clone()))?;
        if g.vpc_id != vpc_id {
            return Err(GroupsError::OtherVpc {
                id: id.clone(),
                group_vpc: g.vpc_id,
                vpc: vpc_id.to_owned(),
            });
        }
        out.push(g);
    }
    for name in names {
        let g = security_groups::group_by_name(conn, vpc_id, name)?.ok_or_else(|| {
            GroupsError::NameNotFound {
                name: name.clone(),
                vpc: vpc_id.to_owned(),
            }
        })?;
        out.push(g);
    }
    out.dedup_by(|a, b| a.id == b.id);
    if out.is_empty() {
        out.push(
            security_groups::group_by_name(conn, vpc_id, "default")?
                .ok_or_else(|| GroupsError::NoDefault(vpc_id.to_owned()))?,
        );
    }
    if out.len() > MAX_GROUPS_PER_ENI {
        return Err(GroupsError::TooMany(out.len()));
    }
    Ok(out)
}

/// The groups `ids` (one at least, each well formed) that replace an interface's groups.
pub fn replacing_groups(
    conn: &Connection,
    vpc_id: &str,
    ids: &[String],
) -> Result<Vec<String>, GroupsError> {
    let mut unique: Vec<String> = Vec::new();
    for id in ids {
        if !unique.contains(id) {
            unique.push(id.clone());
        }
    }
    if unique.is_empty() {
        return Err(GroupsError::Missing);
    }
    for id in &unique {
        if !well_formed_id(id, "sg") {
            return Err(GroupsError::Malformed(id.clone()));
        }
        if security_groups::get_group(conn, id)?.is_none() {
            return Err(GroupsError::NotFound(id.clone()));
        }
    }
    let groups = groups_or_default(conn, vpc_id, &unique, &[])?;
    Ok(groups.into_iter().map(|g| g.id).collect())
}

/// The AWS code of an address allocator's error (`None` for the database's).
pub fn address_code(e: &AddressError) -> Option<&'static str> {
    match e {
        AddressError::SubnetFull(_) => Some("InsufficientFreeAddressesInSubnet"),
        AddressError::BadPrivateIp(_) => Some("InvalidParameterValue"),
        AddressError::InUse(_) => Some("InvalidIPAddress.InUse"),
        AddressError::PoolFull(_) => Some("AddressLimitExceeded"),
        AddressError::Db(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_a_prefix_and_8_or_17_hex_digits() {
        assert!(well_formed_id("sg-0123abcd", "sg"));
        assert!(well_formed_id("i-0123456789abcdef0", "i"));
        assert!(!well_formed_id("sg-0123abc", "sg"));
        assert!(!well_formed_id("i-0123abcd", "sg"));
        assert!(!well_formed_id("sg-0123abcg", "sg"));
    }
}
