//! Network interfaces: CreateNetworkInterface, AttachNetworkInterface,
//! DetachNetworkInterface, DeleteNetworkInterface, and the security groups of an interface
//! (ModifyNetworkInterfaceAttribute) or of an instance's primary one (ModifyInstanceAttribute's
//! `GroupId.N`). Secondary interfaces are attached to and detached from stopped instances;
//! the next start plugs every attached interface in device order.

use std::net::Ipv4Addr;

use rusqlite::Connection;

use host::network::addressing::{self, AddressError, NewEni};
use state::enis::{self, EniRow};
use state::instances::InstanceState;
use state::security_groups::{self, GroupRow};
use state::{new_id, tags, vpcs};

use super::addresses::primary_interface;
use super::lookups::{self, EniLookupError, GroupsError, LiveInstanceError, address_code};
use crate::effects::{ApplyError, Effect};
use crate::{Plane, Refusal};

/// Make a network interface.
#[derive(Debug, Clone, Default)]
pub struct CreateNetworkInterface {
    /// Its subnet.
    pub subnet_id: String,
    /// Its private address, else a free one of the subnet.
    pub private_ip: Option<Ipv4Addr>,
    /// Its security groups, else the VPC's default group.
    pub group_ids: Vec<String>,
    /// Free text.
    pub description: String,
    /// Its tags.
    pub tags: Vec<(String, String)>,
}

/// The interface made, with its groups.
#[derive(Debug, Clone)]
pub struct InterfaceCreated {
    /// The interface.
    pub eni: EniRow,
    /// Its security groups.
    pub groups: Vec<GroupRow>,
}

/// CreateNetworkInterface refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateNetworkInterfaceError {
    /// No such subnet.
    #[error("The subnet ID '{0}' does not exist")]
    SubnetNotFound(String),
    /// The groups cannot be the interface's.
    #[error(transparent)]
    Groups(#[from] GroupsError),
    /// No private address can be given.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for CreateNetworkInterfaceError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::SubnetNotFound(_) => Some("InvalidSubnetID.NotFound"),
            Self::Groups(e) => e.code(),
            Self::Address(e) => address_code(e),
            Self::Db(_) => None,
        }
    }
}

/// Records a detached interface with its groups and tags.
pub fn create(
    conn: &Connection,
    cmd: &CreateNetworkInterface,
) -> Result<(InterfaceCreated, Vec<Effect>), CreateNetworkInterfaceError> {
    let subnet = vpcs::get_subnet(conn, &cmd.subnet_id)?
        .ok_or_else(|| CreateNetworkInterfaceError::SubnetNotFound(cmd.subnet_id.clone()))?;
    let groups = lookups::groups_or_default(conn, &subnet.vpc_id, &cmd.group_ids, &[])?;
    let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    let row = addressing::create_eni(
        conn,
        &NewEni {
            subnet: &subnet,
            group_ids: &ids,
            private_ip: cmd.private_ip,
            description: cmd.description.clone(),
            attach: None,
            wants_public_ip: false,
        },
    )?;
    tags::put(conn, &row.id, &cmd.tags)?;
    Ok((InterfaceCreated { eni: row, groups }, Vec::new()))
}

/// Attach an interface to a stopped instance.
#[derive(Debug, Clone)]
pub struct AttachNetworkInterface {
    /// The interface.
    pub eni_id: String,
    /// The instance.
    pub instance_id: String,
    /// The device index, 1 to 7.
    pub device_index: u32,
}

/// AttachNetworkInterface refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachNetworkInterfaceError {
    /// No such interface.
    #[error(transparent)]
    Interface(#[from] EniLookupError),
    /// The instance cannot be changed.
    #[error(transparent)]
    Instance(#[from] LiveInstanceError),
    /// The instance is not stopped.
    #[error(
        "The instance '{instance}' is '{state}'; network interfaces are attached to stopped \
         instances only"
    )]
    NotStopped {
        /// The instance.
        instance: String,
        /// Its state's name.
        state: &'static str,
    },
    /// The interface is attached already.
    #[error("Interface: [{eni}] in use: it is attached to {instance}.")]
    InUse {
        /// The interface.
        eni: String,
        /// Its instance.
        instance: String,
    },
    /// The device index is the primary one, or taken.
    #[error("Instance '{instance}' already has an interface attached at device index '{index}'.")]
    IndexTaken {
        /// The instance.
        instance: String,
        /// The index.
        index: u32,
    },
    /// The interface is in another VPC than the instance's.
    #[error(
        "The network interface {eni} is in {eni_vpc}, the instance's interfaces in \
         {instance_vpc}; they must be in the same VPC"
    )]
    OtherVpc {
        /// The interface.
        eni: String,
        /// Its VPC.
        eni_vpc: String,
        /// The instance's VPC.
        instance_vpc: String,
    },
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for AttachNetworkInterfaceError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Interface(e) => e.code(),
            Self::Instance(e) => e.code(),
            Self::NotStopped { .. } => Some("IncorrectInstanceState"),
            Self::InUse { .. } => Some("InvalidNetworkInterface.InUse"),
            Self::IndexTaken { .. } => Some("InvalidParameterValue"),
            Self::OtherVpc { .. } => Some("InvalidParameterCombination"),
            Self::Db(_) => None,
        }
    }
}

/// Records the attachment; the instance plugs the interface at its next start. Gives the
/// attachment id.
pub fn attach(
    conn: &Connection,
    cmd: &AttachNetworkInterface,
) -> Result<(String, Vec<Effect>), AttachNetworkInterfaceError> {
    let e = lookups::eni(conn, &cmd.eni_id)?;
    let instance = lookups::live_instance(conn, &cmd.instance_id)?;
    if instance.state != InstanceState::Stopped {
        return Err(AttachNetworkInterfaceError::NotStopped {
            instance: cmd.instance_id.clone(),
            state: instance.state.name(),
        });
    }
    if let Some(other) = e.instance_id {
        return Err(AttachNetworkInterfaceError::InUse {
            eni: cmd.eni_id.clone(),
            instance: other,
        });
    }
    let index = cmd.device_index;
    let current = enis::of_instance(conn, &instance.id)?;
    if index == 0 || current.iter().any(|o| o.device_index == Some(index)) {
        return Err(AttachNetworkInterfaceError::IndexTaken {
            instance: cmd.instance_id.clone(),
            index,
        });
    }
    if let Some(primary) = current.iter().find(|o| o.device_index == Some(0))
        && primary.vpc_id != e.vpc_id
    {
        return Err(AttachNetworkInterfaceError::OtherVpc {
            eni: cmd.eni_id.clone(),
            eni_vpc: e.vpc_id,
            instance_vpc: primary.vpc_id.clone(),
        });
    }
    let attachment_id = new_id("eni-attach");
    enis::set_attachment(
        conn,
        &e.id,
        Some((&instance.id, index, &attachment_id, false)),
    )?;
    Ok((attachment_id, Vec::new()))
}

/// Detach a secondary interface from a stopped instance.
#[derive(Debug, Clone)]
pub struct DetachNetworkInterface {
    /// The attachment.
    pub attachment_id: String,
}

/// DetachNetworkInterface refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DetachNetworkInterfaceError {
    /// No such attachment.
    #[error("The attachment ID '{0}' does not exist")]
    NotFound(String),
    /// It is the primary interface.
    #[error(
        "The network interface at device index 0 ({0}) is the primary interface and cannot be \
         detached."
    )]
    Primary(String),
    /// The instance is not stopped.
    #[error(
        "The instance '{instance}' is '{state}'; network interfaces are detached from stopped \
         instances only"
    )]
    NotStopped {
        /// The instance.
        instance: String,
        /// Its state's name.
        state: &'static str,
    },
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for DetachNetworkInterfaceError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::NotFound(_) => Some("InvalidAttachmentID.NotFound"),
            Self::Primary(_) => Some("OperationNotPermitted"),
            Self::NotStopped { .. } => Some("IncorrectInstanceState"),
            Self::Db(_) => None,
        }
    }
}

/// Records the interface detached.
pub fn detach(
    conn: &Connection,
    cmd: &DetachNetworkInterface,
) -> Result<((), Vec<Effect>), DetachNetworkInterfaceError> {
    let e = enis::all(conn)?
        .into_iter()
        .find(|e| e.attachment_id.as_deref() == Some(cmd.attachment_id.as_str()))
        .ok_or_else(|| DetachNetworkInterfaceError::NotFound(cmd.attachment_id.clone()))?;
    if e.device_index == Some(0) {
        return Err(DetachNetworkInterfaceError::Primary(e.id));
    }
    if let Some(id) = &e.instance_id
        && let Some(i) = state::instances::get(conn, id)?
        && i.state != InstanceState::Stopped
    {
        return Err(DetachNetworkInterfaceError::NotStopped {
            instance: id.clone(),
            state: i.state.name(),
        });
    }
    enis::set_attachment(conn, &e.id, None)?;
    Ok(((), Vec::new()))
}

/// Delete a detached interface.
#[derive(Debug, Clone)]
pub struct DeleteNetworkInterface {
    /// The interface.
    pub eni_id: String,
}

/// DeleteNetworkInterface refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DeleteNetworkInterfaceError {
    /// No such interface.
    #[error(transparent)]
    Interface(#[from] EniLookupError),
    /// It is attached.
    #[error("Interface: [{eni}] in use: it is attached to {instance}.")]
    InUse {
        /// The interface.
        eni: String,
        /// Its instance.
        instance: String,
    },
    /// A load balancer's interface (requester-managed: it goes with its load balancer).
    #[error("Network interface [{0}] belongs to a load balancer and is deleted with it.")]
    LoadBalancer(String),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
    /// The firewall could not be brought in line.
    #[error("the interface's rules could not be removed")]
    Apply(#[from] ApplyError),
}

impl Refusal for DeleteNetworkInterfaceError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Interface(e) => e.code(),
            Self::InUse { .. } => Some("InvalidNetworkInterface.InUse"),
            Self::LoadBalancer(_) => Some("OperationNotPermitted"),
            Self::Db(_) | Self::Apply(_) => None,
        }
    }
}

/// Deletes a detached interface with its tags, disassociating its Elastic IP.
pub fn delete(
    conn: &Connection,
    cmd: &DeleteNetworkInterface,
) -> Result<((), Vec<Effect>), DeleteNetworkInterfaceError> {
    let e = lookups::eni(conn, &cmd.eni_id)?;
    if state::elbv2::interface_enis(conn)?.contains(&e.id) {
        return Err(DeleteNetworkInterfaceError::LoadBalancer(e.id));
    }
    if let Some(instance) = e.instance_id {
        return Err(DeleteNetworkInterfaceError::InUse {
            eni: cmd.eni_id.clone(),
            instance,
        });
    }
    if let Some(a) = enis::address_of_eni(conn, &e.id)? {
        enis::set_association(conn, &a.allocation_id, None)?;
    }
    enis::delete(conn, &e.id)?;
    tags::delete_all(conn, &e.id)?;
    Ok(((), vec![Effect::SyncFirewall]))
}

/// Whose security groups are replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupsOf {
    /// A network interface's (ModifyNetworkInterfaceAttribute).
    Interface(String),
    /// An instance's primary interface's (ModifyInstanceAttribute).
    Instance(String),
}

/// Replace the security groups of an interface, applied at once.
#[derive(Debug, Clone)]
pub struct SetSecurityGroups {
    /// Whose.
    pub of: GroupsOf,
    /// The groups, 1 to 5 of the interface's VPC.
    pub group_ids: Vec<String>,
}

/// Replacing an interface's groups refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum SetSecurityGroupsError {
    /// No such interface.
    #[error(transparent)]
    Interface(#[from] EniLookupError),
    /// The instance cannot be changed.
    #[error(transparent)]
    Instance(#[from] LiveInstanceError),
    /// The instance has no primary interface.
    #[error("The instance '{0}' has no primary network interface")]
    NoPrimaryInterface(String),
    /// The groups cannot be the interface's.
    #[error(transparent)]
    Groups(#[from] GroupsError),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
    /// The firewall could not be brought in line.
    #[error("the interface's rules could not be applied")]
    Apply(#[from] ApplyError),
}

impl Refusal for SetSecurityGroupsError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Interface(e) => e.code(),
            Self::Instance(e) => e.code(),
            Self::NoPrimaryInterface(_) => Some("InvalidInstanceID"),
            Self::Groups(e) => e.code(),
            Self::Db(_) | Self::Apply(_) => None,
        }
    }
}

/// Records the interface's new groups; the firewall is to be rebuilt.
pub fn set_security_groups(
    conn: &Connection,
    cmd: &SetSecurityGroups,
) -> Result<((), Vec<Effect>), SetSecurityGroupsError> {
    let e = match &cmd.of {
        GroupsOf::Interface(id) => lookups::eni(conn, id)?,
        GroupsOf::Instance(id) => primary_interface(conn, id)?
            .ok_or_else(|| SetSecurityGroupsError::NoPrimaryInterface(id.clone()))?,
    };
    let groups = lookups::replacing_groups(conn, &e.vpc_id, &cmd.group_ids)?;
    security_groups::set_eni_groups(conn, &e.id, &groups)?;
    Ok(((), vec![Effect::SyncFirewall]))
}

impl Plane {
    /// CreateNetworkInterface: detached, in its subnet, with its groups.
    pub async fn create_network_interface(
        &self,
        cmd: CreateNetworkInterface,
    ) -> Result<InterfaceCreated, CreateNetworkInterfaceError> {
        let committed = self.transact(|tx| create(tx, &cmd))?;
        // Nothing for the host to do until an instance with it starts.
        debug_assert!(committed.effects.is_empty());
        Ok(committed.value)
    }

    /// AttachNetworkInterface; gives the attachment id.
    pub async fn attach_network_interface(
        &self,
        cmd: AttachNetworkInterface,
    ) -> Result<String, AttachNetworkInterfaceError> {
        let committed = self.transact(|tx| attach(tx, &cmd))?;
        // Stopped instances only: the next start plugs it.
        debug_assert!(committed.effects.is_empty());
        Ok(committed.value)
    }

    /// DetachNetworkInterface.
    pub async fn detach_network_interface(
        &self,
        cmd: DetachNetworkInterface,
    ) -> Result<(), DetachNetworkInterfaceError> {
        let committed = self.transact(|tx| detach(tx, &cmd))?;
        debug_assert!(committed.effects.is_empty());
        Ok(())
    }

    /// DeleteNetworkInterface: only a detached one.
    pub async fn delete_network_interface(
        &self,
        cmd: DeleteNetworkInterface,
    ) -> Result<(), DeleteNetworkInterfaceError> {
        let committed = self.transact(|tx| delete(tx, &cmd))?;
        self.apply(committed.effects).await?;
        Ok(())
    }

    /// The security groups of an interface, or of an instance's primary interface.
    pub async fn set_security_groups(
        &self,
        cmd: SetSecurityGroups,
    ) -> Result<(), SetSecurityGroupsError> {
        let committed = self.transact(|tx| set_security_groups(tx, &cmd))?;
        self.apply(committed.effects).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ec2::subnets::{DeleteSubnet, delete_subnet};
    use crate::ec2::test_db;

    fn default_subnet(conn: &Connection) -> state::vpcs::SubnetRow {
        addressing::ensure_default_vpc(conn).unwrap();
        vpcs::default_subnet(conn).unwrap().unwrap()
    }

    #[test]
    fn an_interface_gets_the_default_group_and_keeps_its_subnet() {
        let (_dir, db) = test_db();
        let mut conn = db.lock();
        let tx = conn.transaction().unwrap();
        let subnet = default_subnet(&tx);
        let cmd = CreateNetworkInterface {
            subnet_id: subnet.id.clone(),
            description: "d".into(),
            ..Default::default()
        };
        let (made, effects) = create(&tx, &cmd).unwrap();
        assert!(effects.is_empty());
        assert_eq!(made.groups.len(), 1);
        assert_eq!(made.groups[0].name, "default");

        let e = delete_subnet(
            &tx,
            &DeleteSubnet {
                subnet_id: subnet.id.clone(),
            },
        )
        .unwrap_err();
        assert_eq!(e.code(), Some("DependencyViolation"));
        assert_eq!(
            e.to_string(),
            format!(
                "The subnet '{}' has dependencies and cannot be deleted: network interface {}.",
                subnet.id, made.eni.id
            )
        );

        let bad = CreateNetworkInterface {
            group_ids: vec!["sg-12345678".into()],
            ..cmd.clone()
        };
        let e = create(&tx, &bad).unwrap_err();
        assert_eq!(e.code(), Some("InvalidGroup.NotFound"));
        let e = create(
            &tx,
            &CreateNetworkInterface {
                subnet_id: "subnet-12345678".into(),
                ..cmd
            },
        )
        .unwrap_err();
        assert_eq!(e.code(), Some("InvalidSubnetID.NotFound"));
    }

    #[test]
    fn an_attached_interface_is_not_deleted_and_groups_are_checked() {
        let (_dir, db) = test_db();
        let conn = db.lock();
        let subnet = default_subnet(&conn);
        let cmd = CreateNetworkInterface {
            subnet_id: subnet.id,
            ..Default::default()
        };
        let (made, _) = create(&conn, &cmd).unwrap();
        let id = made.eni.id.clone();
        enis::set_attachment(&conn, &id, Some(("i-12345678", 1, "eni-attach-1", false))).unwrap();
        let del = DeleteNetworkInterface { eni_id: id.clone() };
        let e = delete(&conn, &del).unwrap_err();
        assert_eq!(e.code(), Some("InvalidNetworkInterface.InUse"));
        assert_eq!(
            e.to_string(),
            format!("Interface: [{id}] in use: it is attached to i-12345678.")
        );

        let set = |ids: &[&str]| {
            set_security_groups(
                &conn,
                &SetSecurityGroups {
                    of: GroupsOf::Interface(id.clone()),
                    group_ids: ids.iter().map(|s| s.to_string()).collect(),
                },
            )
        };
        assert_eq!(
            set(&["sg-1"]).unwrap_err().code(),
            Some("InvalidGroupId.Malformed")
        );
        assert_eq!(
            set(&["sg-12345678"]).unwrap_err().code(),
            Some("InvalidGroup.NotFound")
        );
        assert_eq!(set(&[]).unwrap_err().code(), Some("MissingParameter"));
        let default = made.groups[0].id.as_str();
        let (_, effects) = set(&[default, default]).unwrap();
        assert_eq!(effects, vec![Effect::SyncFirewall]);

        let e = detach(
            &conn,
            &DetachNetworkInterface {
                attachment_id: "eni-attach-2".into(),
            },
        )
        .unwrap_err();
        assert_eq!(e.code(), Some("InvalidAttachmentID.NotFound"));
        // The instance is not in the state: the interface comes off.
        detach(
            &conn,
            &DetachNetworkInterface {
                attachment_id: "eni-attach-1".into(),
            },
        )
        .unwrap();
        let (_, effects) = delete(&conn, &del).unwrap();
        assert_eq!(effects, vec![Effect::SyncFirewall]);
        assert!(enis::get(&conn, &id).unwrap().is_none());
    }
}
