//! Security groups: creating and deleting them, authorizing and revoking their rules. Every
//! change that reaches the firewall records [`Effect::SyncFirewall`], so running instances
//! have it before the caller has the answer.

mod change;
pub mod permissions;

use rusqlite::Connection;

use crate::effects::Effect;
use crate::{Plane, Refusal};
use state::security_groups::{self, GroupRow, RuleRow};
use state::{new_id, tags, vpcs, well_formed_id};

pub use change::{AuthorizeError, RevokeError, RuleChange, authorize, revoke};
pub use permissions::{Peer, Permission, PermissionError};

/// Most rules per group and direction, as on EC2.
pub const MAX_RULES: usize = 60;

/// A group as a request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRef {
    /// By `GroupId`.
    Id(String),
    /// By `GroupName`, in the default VPC.
    NameInDefaultVpc(String),
}

/// Why a named group cannot be found.
#[derive(Debug, thiserror::Error)]
pub enum GroupLookupError {
    /// Not `sg-` and hex digits.
    #[error("Invalid id: \"{0}\" (expecting \"sg-...\")")]
    Malformed(String),
    /// No group has that id.
    #[error("The security group '{0}' does not exist")]
    NotFound(String),
    /// No group has that name in the default VPC.
    #[error("The security group '{name}' does not exist in default VPC '{vpc}'")]
    NotFoundInDefaultVpc {
        /// The name.
        name: String,
        /// The default VPC.
        vpc: String,
    },
    /// A name given, but there is no default VPC.
    #[error("No default VPC: name the group by GroupId")]
    NoDefaultVpc,
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for GroupLookupError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::Malformed(_) => "InvalidGroupId.Malformed",
            Self::NotFound(_) | Self::NotFoundInDefaultVpc { .. } => "InvalidGroup.NotFound",
            Self::NoDefaultVpc => "VPCIdNotSpecified",
            Self::Db(_) => return None,
        })
    }
}

/// The group `id`.
pub fn group_by_id(conn: &Connection, id: &str) -> Result<GroupRow, GroupLookupError> {
    if !well_formed_id(id, "sg") {
        return Err(GroupLookupError::Malformed(id.into()));
    }
    security_groups::get_group(conn, id)?.ok_or_else(|| GroupLookupError::NotFound(id.into()))
}

/// The group `group` names.
pub fn lookup(conn: &Connection, group: &GroupRef) -> Result<GroupRow, GroupLookupError> {
    match group {
        GroupRef::Id(id) => group_by_id(conn, id),
        GroupRef::NameInDefaultVpc(name) => {
            let vpc = vpcs::default_vpc(conn)?.ok_or(GroupLookupError::NoDefaultVpc)?;
            security_groups::group_by_name(conn, &vpc.id, name)?.ok_or_else(|| {
                GroupLookupError::NotFoundInDefaultVpc {
                    name: name.clone(),
                    vpc: vpc.id,
                }
            })
        }
    }
}

/// CreateSecurityGroup, its fields checked by the API already (names, lengths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateGroup {
    /// The name, unique in its VPC.
    pub name: String,
    /// The description.
    pub description: String,
    /// The VPC; the default VPC when `None`.
    pub vpc_id: Option<String>,
    /// Tags for the group.
    pub tags: Vec<(String, String)>,
}

/// Why CreateSecurityGroup is refused.
#[derive(Debug, thiserror::Error)]
pub enum CreateGroupError {
    /// The VPC does not exist.
    #[error("The vpc ID '{0}' does not exist")]
    NoVpc(String),
    /// No VPC given and no default VPC.
    #[error("No default VPC for this user; give a VpcId")]
    NoDefaultVpc,
    /// The VPC has a group of that name.
    #[error("The security group '{name}' already exists for VPC '{vpc}'")]
    Duplicate {
        /// The name.
        name: String,
        /// The VPC.
        vpc: String,
    },
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for CreateGroupError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::NoVpc(_) => "InvalidVpcID.NotFound",
            Self::NoDefaultVpc => "VPCIdNotSpecified",
            Self::Duplicate { .. } => "InvalidGroup.Duplicate",
            Self::Db(_) => return None,
        })
    }
}

/// Records a new group with EC2's default egress rule (all traffic to 0.0.0.0/0) and no
/// ingress; nothing reaches the firewall until an interface uses it.
pub fn create_group(conn: &Connection, cmd: &CreateGroup) -> Result<GroupRow, CreateGroupError> {
    let vpc = match &cmd.vpc_id {
        Some(id) => vpcs::get_vpc(conn, id)?.ok_or_else(|| CreateGroupError::NoVpc(id.clone()))?,
        None => vpcs::default_vpc(conn)?.ok_or(CreateGroupError::NoDefaultVpc)?,
    };
    if security_groups::group_by_name(conn, &vpc.id, &cmd.name)?.is_some() {
        return Err(CreateGroupError::Duplicate {
            name: cmd.name.clone(),
            vpc: vpc.id,
        });
    }
    let group = GroupRow {
        id: new_id("sg"),
        vpc_id: vpc.id,
        name: cmd.name.clone(),
        description: cmd.description.clone(),
    };
    security_groups::insert_group(conn, &group)?;
    security_groups::insert_rule(
        conn,
        &RuleRow {
            id: new_id("sgr"),
            group_id: group.id.clone(),
            egress: true,
            protocol: "-1".into(),
            from_port: None,
            to_port: None,
            cidr: Some("0.0.0.0/0".into()),
            peer_group_id: None,
            description: String::new(),
        },
    )?;
    tags::put(conn, &group.id, &cmd.tags)?;
    Ok(group)
}

/// Why DeleteSecurityGroup is refused.
#[derive(Debug, thiserror::Error)]
pub enum DeleteGroupError {
    /// The group cannot be found.
    #[error(transparent)]
    Lookup(#[from] GroupLookupError),
    /// A VPC's default group.
    #[error(
        "the specified group: \"{id}\" name: \"default\" is the default security group of {vpc} and cannot be deleted"
    )]
    Default {
        /// The group.
        id: String,
        /// Its VPC.
        vpc: String,
    },
    /// Interfaces use it.
    #[error("resource {id} has a dependent object: {users} network interface(s) use it")]
    InUse {
        /// The group.
        id: String,
        /// How many interfaces.
        users: u64,
    },
    /// Another group's rules name it.
    #[error("resource {id} has a dependent object: rules of {other} name it")]
    Referenced {
        /// The group.
        id: String,
        /// The group whose rules name it.
        other: String,
    },
    /// The firewall could not be brought in line (the deletion stands; the agent's next
    /// start applies it).
    #[error("the firewall could not be updated")]
    Apply(#[source] crate::effects::ApplyError),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for DeleteGroupError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Lookup(e) => e.code(),
            Self::Default { .. } => Some("CannotDelete"),
            Self::InUse { .. } | Self::Referenced { .. } => Some("DependencyViolation"),
            Self::Apply(_) | Self::Db(_) => None,
        }
    }
}

/// Removes a group that is no VPC's default, that no interface uses and that no other
/// group's rules name, with its tags.
pub fn delete_group(conn: &Connection, group: &GroupRef) -> Result<GroupRow, DeleteGroupError> {
    let g = lookup(conn, group)?;
    if g.name == "default" {
        return Err(DeleteGroupError::Default {
            id: g.id,
            vpc: g.vpc_id,
        });
    }
    let users = security_groups::eni_count(conn, &g.id)?;
    if users > 0 {
        return Err(DeleteGroupError::InUse { id: g.id, users });
    }
    if let Some(other) = security_groups::referenced_by(conn, &g.id)? {
        return Err(DeleteGroupError::Referenced { id: g.id, other });
    }
    security_groups::delete_group(conn, &g.id)?;
    tags::delete_all(conn, &g.id)?;
    Ok(g)
}

impl Plane {
    /// CreateSecurityGroup.
    pub fn create_security_group(&self, cmd: &CreateGroup) -> Result<GroupRow, CreateGroupError> {
        let committed =
            self.transact::<_, CreateGroupError>(|tx| Ok((create_group(tx, cmd)?, Vec::new())))?;
        Ok(committed.value)
    }

    /// DeleteSecurityGroup; the firewall drops the group's rules before this returns.
    pub async fn delete_security_group(
        &self,
        group: &GroupRef,
    ) -> Result<GroupRow, DeleteGroupError> {
        let committed = self.transact::<_, DeleteGroupError>(|tx| {
            Ok((delete_group(tx, group)?, vec![Effect::SyncFirewall]))
        })?;
        self.apply(committed.effects)
            .await
            .map_err(DeleteGroupError::Apply)?;
        Ok(committed.value)
    }
}

#[cfg(test)]
mod tests;
