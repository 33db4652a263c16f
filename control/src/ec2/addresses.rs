//! Elastic IPs: AllocateAddress, AssociateAddress, DisassociateAddress, ReleaseAddress.
//! Addresses come from the host's public pool; an associated one replaces the interface's
//! ephemeral public address and stays with it across stop and start.

use std::net::Ipv4Addr;

use rusqlite::Connection;

use host::network::addressing::{self, AddressError};
use host::network::cidr::Cidr;
use state::enis::{self, AddressRow, EniRow};
use state::instances::{self, InstanceState};
use state::{new_id, tags};

use super::lookups::{self, EniLookupError, LiveInstanceError, address_code};
use crate::effects::{ApplyError, Effect};
use crate::{Plane, Refusal};

/// How a command names an Elastic IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressRef {
    /// By `AllocationId`.
    AllocationId(String),
    /// By `PublicIp`.
    PublicIp(String),
}

/// An Elastic IP named by a command is not one of ours.
#[derive(Debug, thiserror::Error)]
pub enum AddressLookupError {
    /// No such allocation.
    #[error("The allocation ID '{0}' does not exist")]
    AllocationNotFound(String),
    /// No such address.
    #[error("The address '{0}' does not belong to you.")]
    AddressNotFound(String),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for AddressLookupError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::AllocationNotFound(_) => Some("InvalidAllocationID.NotFound"),
            Self::AddressNotFound(_) => Some("InvalidAddress.NotFound"),
            Self::Db(_) => None,
        }
    }
}

fn named(conn: &Connection, by: &AddressRef) -> Result<AddressRow, AddressLookupError> {
    let all = enis::addresses(conn)?;
    match by {
        AddressRef::AllocationId(id) => all
            .into_iter()
            .find(|a| a.allocation_id == *id)
            .ok_or_else(|| AddressLookupError::AllocationNotFound(id.clone())),
        AddressRef::PublicIp(ip) => all
            .into_iter()
            .find(|a| a.public_ip == *ip)
            .ok_or_else(|| AddressLookupError::AddressNotFound(ip.clone())),
    }
}

/// Allocate an Elastic IP.
#[derive(Debug, Clone, Default)]
pub struct AllocateAddress {
    /// One address of the pool asked for, else any free one.
    pub address: Option<Ipv4Addr>,
    /// Its tags.
    pub tags: Vec<(String, String)>,
}

/// AllocateAddress refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AllocateAddressError {
    /// The address asked for is not an instance address of the pool.
    #[error("The address {ip} is not an instance address of the pool {pool}")]
    NotInPool {
        /// The address.
        ip: Ipv4Addr,
        /// The pool.
        pool: Cidr,
    },
    /// The address asked for is taken, or the pool is exhausted.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for AllocateAddressError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::NotInPool { .. } => Some("InvalidAddress.NotFound"),
            Self::Address(e) => address_code(e),
            Self::Db(_) => None,
        }
    }
}

/// Takes an address of `pool` and records it with its tags.
pub fn allocate(
    conn: &Connection,
    pool: &Cidr,
    cmd: &AllocateAddress,
) -> Result<(AddressRow, Vec<Effect>), AllocateAddressError> {
    let ip = match cmd.address {
        Some(ip) => {
            let usable =
                pool.contains(ip) && ip != pool.network && ip != pool.router() && ip != pool.last();
            if !usable {
                return Err(AllocateAddressError::NotInPool { ip, pool: *pool });
            }
            if enis::public_ips_in_use(conn)?.contains(&ip.to_string()) {
                return Err(AddressError::InUse(ip.to_string()).into());
            }
            ip
        }
        None => addressing::free_public_ip(conn, pool, None)?,
    };
    let row = AddressRow {
        allocation_id: new_id("eipalloc"),
        public_ip: ip.to_string(),
        eni_id: None,
        association_id: None,
    };
    enis::insert_address(conn, &row)?;
    tags::put(conn, &row.allocation_id, &cmd.tags)?;
    Ok((row, Vec::new()))
}

/// What an Elastic IP is associated with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssociationTarget {
    /// An instance's primary interface.
    Instance(String),
    /// A network interface.
    NetworkInterface(String),
}

/// Associate an Elastic IP.
#[derive(Debug, Clone)]
pub struct AssociateAddress {
    /// The address.
    pub address: AddressRef,
    /// What with.
    pub target: AssociationTarget,
    /// The interface's private address, if the caller names it.
    pub private_ip: Option<String>,
    /// Move the address if it is associated elsewhere.
    pub allow_reassociation: bool,
}

/// AssociateAddress refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AssociateAddressError {
    /// The address is not ours.
    #[error(transparent)]
    Address(#[from] AddressLookupError),
    /// The instance cannot be changed.
    #[error(transparent)]
    Instance(#[from] LiveInstanceError),
    /// The instance has no primary interface.
    #[error("The instance '{0}' has no primary network interface")]
    NoPrimaryInterface(String),
    /// The interface does not exist.
    #[error(transparent)]
    Interface(#[from] EniLookupError),
    /// The private address named is not the interface's.
    #[error(
        "Value for parameter PrivateIpAddress is invalid: {ip} is not an address of {eni} ({private_ip})"
    )]
    NotTheInterfacesAddress {
        /// The address named.
        ip: String,
        /// The interface.
        eni: String,
        /// Its address.
        private_ip: String,
    },
    /// The address is associated elsewhere and may not move.
    #[error(
        "resource {allocation} is already associated with associate-id {association} (interface \
         {eni}); pass AllowReassociation=true to move it"
    )]
    AlreadyAssociated {
        /// The address's allocation.
        allocation: String,
        /// Its association.
        association: String,
        /// The interface it is associated with.
        eni: String,
    },
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
    /// The firewall could not be brought in line.
    #[error("the address's rules could not be applied")]
    Apply(#[from] ApplyError),
}

impl Refusal for AssociateAddressError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Address(e) => e.code(),
            Self::Instance(e) => e.code(),
            Self::NoPrimaryInterface(_) => Some("InvalidInstanceID"),
            Self::Interface(e) => e.code(),
            Self::NotTheInterfacesAddress { .. } => Some("InvalidParameterValue"),
            Self::AlreadyAssociated { .. } => Some("Resource.AlreadyAssociated"),
            Self::Db(_) | Self::Apply(_) => None,
        }
    }
}

/// The primary interface of the instance `id`.
pub(crate) fn primary_interface(
    conn: &Connection,
    id: &str,
) -> Result<Option<EniRow>, LiveInstanceError> {
    let row = lookups::live_instance(conn, id)?;
    Ok(enis::of_instance(conn, &row.id)?
        .into_iter()
        .find(|e| e.device_index == Some(0)))
}

/// Associates the address with the interface: the interface's ephemeral public address
/// and any Elastic IP it had give way; an address associated elsewhere moves only when
/// allowed. Gives the association id (the current one when it is associated there already).
pub fn associate(
    conn: &Connection,
    cmd: &AssociateAddress,
) -> Result<(String, Vec<Effect>), AssociateAddressError> {
    let address = named(conn, &cmd.address)?;
    let target = match &cmd.target {
        AssociationTarget::Instance(id) => primary_interface(conn, id)?
            .ok_or_else(|| AssociateAddressError::NoPrimaryInterface(id.clone()))?,
        AssociationTarget::NetworkInterface(id) => lookups::eni(conn, id)?,
    };
    if let Some(ip) = &cmd.private_ip
        && *ip != target.private_ip
    {
        return Err(AssociateAddressError::NotTheInterfacesAddress {
            ip: ip.clone(),
            eni: target.id,
            private_ip: target.private_ip,
        });
    }
    match (&address.eni_id, &address.association_id) {
        (Some(current), Some(assoc)) if *current == target.id => {
            return Ok((assoc.clone(), Vec::new()));
        }
        (Some(current), _) if !cmd.allow_reassociation => {
            return Err(AssociateAddressError::AlreadyAssociated {
                allocation: address.allocation_id,
                association: address.association_id.unwrap_or_default(),
                eni: current.clone(),
            });
        }
        _ => {}
    }
    if let Some(old) = enis::address_of_eni(conn, &target.id)? {
        enis::set_association(conn, &old.allocation_id, None)?;
    }
    let association_id = new_id("eipassoc");
    enis::set_association(
        conn,
        &address.allocation_id,
        Some((&target.id, &association_id)),
    )?;
    enis::set_public_ip(conn, &target.id, None)?;
    Ok((association_id, vec![Effect::SyncFirewall]))
}

/// How a command names an association.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssociationRef {
    /// By `AssociationId`.
    AssociationId(String),
    /// By the address (`PublicIp`).
    PublicIp(String),
}

/// Disassociate an Elastic IP.
#[derive(Debug, Clone)]
pub struct DisassociateAddress {
    /// The association.
    pub association: AssociationRef,
}

/// DisassociateAddress refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DisassociateAddressError {
    /// No such association.
    #[error("The association ID '{0}' does not exist")]
    AssociationNotFound(String),
    /// No such address.
    #[error("The address '{0}' does not belong to you.")]
    AddressNotFound(String),
    /// No ephemeral public address is left for the interface.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
    /// The firewall could not be brought in line.
    #[error("the address's rules could not be removed")]
    Apply(#[from] ApplyError),
}

impl Refusal for DisassociateAddressError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::AssociationNotFound(_) => Some("InvalidAssociationID.NotFound"),
            Self::AddressNotFound(_) => Some("InvalidAddress.NotFound"),
            Self::Address(e) => address_code(e),
            Self::Db(_) | Self::Apply(_) => None,
        }
    }
}

/// Ends the association; an interface that wants a public address gets a new ephemeral one
/// of `pool` if its instance is running.
pub fn disassociate(
    conn: &Connection,
    pool: &Cidr,
    cmd: &DisassociateAddress,
) -> Result<((), Vec<Effect>), DisassociateAddressError> {
    let all = enis::addresses(conn)?;
    let address = match &cmd.association {
        AssociationRef::AssociationId(id) => all
            .into_iter()
            .find(|a| a.association_id.as_deref() == Some(id))
            .ok_or_else(|| DisassociateAddressError::AssociationNotFound(id.clone()))?,
        AssociationRef::PublicIp(ip) => all
            .into_iter()
            .find(|a| a.public_ip == *ip)
            .ok_or_else(|| DisassociateAddressError::AddressNotFound(ip.clone()))?,
    };
    enis::set_association(conn, &address.allocation_id, None)?;
    if let Some(eni_id) = &address.eni_id
        && let Some(e) = enis::get(conn, eni_id)?
        && e.wants_public_ip
        && let Some(instance) = &e.instance_id
        && instances::get(conn, instance)?
            .is_some_and(|i| matches!(i.state, InstanceState::Running | InstanceState::Pending))
    {
        let ip = addressing::free_public_ip(conn, pool, None)?;
        enis::set_public_ip(conn, &e.id, Some(&ip.to_string()))?;
    }
    Ok(((), vec![Effect::SyncFirewall]))
}

/// Release an Elastic IP.
#[derive(Debug, Clone)]
pub struct ReleaseAddress {
    /// The address.
    pub address: AddressRef,
}

/// ReleaseAddress refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseAddressError {
    /// The address is not ours.
    #[error(transparent)]
    Address(#[from] AddressLookupError),
    /// It is associated.
    #[error(
        "Address {ip} is in use: it is associated with {eni} ({association}); disassociate it \
         first"
    )]
    InUse {
        /// The address.
        ip: String,
        /// The interface.
        eni: String,
        /// The association.
        association: String,
    },
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
    /// The host could not be brought in line.
    #[error("the effects could not be applied")]
    Apply(#[from] ApplyError),
}

impl Refusal for ReleaseAddressError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Address(e) => e.code(),
            Self::InUse { .. } => Some("InvalidIPAddress.InUse"),
            Self::Db(_) | Self::Apply(_) => None,
        }
    }
}

/// Deletes an address that is not associated, with its tags.
pub fn release(
    conn: &Connection,
    cmd: &ReleaseAddress,
) -> Result<((), Vec<Effect>), ReleaseAddressError> {
    let address = named(conn, &cmd.address)?;
    if let Some(eni) = address.eni_id {
        return Err(ReleaseAddressError::InUse {
            ip: address.public_ip,
            eni,
            association: address.association_id.unwrap_or_default(),
        });
    }
    enis::delete_address(conn, &address.allocation_id)?;
    tags::delete_all(conn, &address.allocation_id)?;
    Ok(((), Vec::new()))
}

impl Plane {
    /// AllocateAddress: an address of the public pool.
    pub async fn allocate_address(
        &self,
        cmd: AllocateAddress,
    ) -> Result<AddressRow, AllocateAddressError> {
        let pool = self.network.config.public_pool;
        let committed = self.transact(|tx| allocate(tx, &pool, &cmd))?;
        // Nothing for the host to do until it is associated.
        debug_assert!(committed.effects.is_empty());
        Ok(committed.value)
    }

    /// AssociateAddress; gives the association id.
    pub async fn associate_address(
        &self,
        cmd: AssociateAddress,
    ) -> Result<String, AssociateAddressError> {
        let committed = self.transact(|tx| associate(tx, &cmd))?;
        self.apply(committed.effects).await?;
        Ok(committed.value)
    }

    /// DisassociateAddress.
    pub async fn disassociate_address(
        &self,
        cmd: DisassociateAddress,
    ) -> Result<(), DisassociateAddressError> {
        let pool = self.network.config.public_pool;
        let committed = self.transact(|tx| disassociate(tx, &pool, &cmd))?;
        self.apply(committed.effects).await?;
        Ok(())
    }

    /// ReleaseAddress: refused while associated.
    pub async fn release_address(&self, cmd: ReleaseAddress) -> Result<(), ReleaseAddressError> {
        let committed = self.transact(|tx| release(tx, &cmd))?;
        self.apply(committed.effects).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ec2::network_interfaces::{CreateNetworkInterface, create};
    use crate::ec2::test_db;

    const POOL: &str = "198.51.100.0/28";

    fn eni(conn: &Connection) -> EniRow {
        addressing::ensure_default_vpc(conn).unwrap();
        let subnet = state::vpcs::default_subnet(conn).unwrap().unwrap();
        let cmd = CreateNetworkInterface {
            subnet_id: subnet.id,
            ..Default::default()
        };
        create(conn, &cmd).unwrap().0.eni
    }

    fn associate_with(
        conn: &Connection,
        allocation: &str,
        eni: &str,
        allow_reassociation: bool,
    ) -> Result<(String, Vec<Effect>), AssociateAddressError> {
        let cmd = AssociateAddress {
            address: AddressRef::AllocationId(allocation.into()),
            target: AssociationTarget::NetworkInterface(eni.into()),
            private_ip: None,
            allow_reassociation,
        };
        associate(conn, &cmd)
    }

    #[test]
    fn addresses_come_from_the_pool_once() {
        let (_dir, db) = test_db();
        let conn = db.lock();
        let pool: Cidr = POOL.parse().unwrap();
        let ask = |ip: &str| AllocateAddress {
            address: Some(ip.parse().unwrap()),
            tags: Vec::new(),
        };
        let (row, effects) = allocate(&conn, &pool, &ask("198.51.100.5")).unwrap();
        assert_eq!(row.public_ip, "198.51.100.5");
        assert!(effects.is_empty());
        let e = allocate(&conn, &pool, &ask("198.51.100.5")).unwrap_err();
        assert_eq!(e.code(), Some("InvalidIPAddress.InUse"));
        assert_eq!(e.to_string(), "Address 198.51.100.5 is in use.");
        for outside in ["198.51.100.0", "198.51.100.1", "198.51.100.15", "10.0.0.5"] {
            let e = allocate(&conn, &pool, &ask(outside)).unwrap_err();
            assert_eq!(e.code(), Some("InvalidAddress.NotFound"), "{outside}");
        }
    }

    #[test]
    fn an_address_moves_only_when_reassociation_is_allowed() {
        let (_dir, db) = test_db();
        let conn = db.lock();
        let pool: Cidr = POOL.parse().unwrap();
        let (first, second) = (eni(&conn), eni(&conn));
        let (address, _) = allocate(&conn, &pool, &AllocateAddress::default()).unwrap();
        let id = &address.allocation_id;

        let (assoc, effects) = associate_with(&conn, id, &first.id, false).unwrap();
        assert_eq!(effects, vec![Effect::SyncFirewall]);
        // Again with the same interface: the same association, nothing to do.
        let (again, effects) = associate_with(&conn, id, &first.id, false).unwrap();
        assert_eq!((again.as_str(), effects.len()), (assoc.as_str(), 0));

        let e = associate_with(&conn, id, &second.id, false).unwrap_err();
        assert_eq!(e.code(), Some("Resource.AlreadyAssociated"));
        assert_eq!(
            e.to_string(),
            format!(
                "resource {id} is already associated with associate-id {assoc} (interface {}); \
                 pass AllowReassociation=true to move it",
                first.id
            )
        );
        let (moved, _) = associate_with(&conn, id, &second.id, true).unwrap();
        assert_ne!(moved, assoc);
        assert!(enis::address_of_eni(&conn, &first.id).unwrap().is_none());

        let release_it = ReleaseAddress {
            address: AddressRef::PublicIp(address.public_ip.clone()),
        };
        let e = release(&conn, &release_it).unwrap_err();
        assert_eq!(e.code(), Some("InvalidIPAddress.InUse"));

        let e = disassociate(
            &conn,
            &pool,
            &DisassociateAddress {
                association: AssociationRef::AssociationId(assoc),
            },
        )
        .unwrap_err();
        assert_eq!(e.code(), Some("InvalidAssociationID.NotFound"));
        disassociate(
            &conn,
            &pool,
            &DisassociateAddress {
                association: AssociationRef::AssociationId(moved),
            },
        )
        .unwrap();
        release(&conn, &release_it).unwrap();
        let e = release(&conn, &release_it).unwrap_err();
        assert_eq!(e.code(), Some("InvalidAddress.NotFound"));
        let e = associate_with(&conn, id, &second.id, false).unwrap_err();
        assert_eq!(e.code(), Some("InvalidAllocationID.NotFound"));
    }

    #[test]
    fn the_private_address_named_must_be_the_interfaces() {
        let (_dir, db) = test_db();
        let conn = db.lock();
        let pool: Cidr = POOL.parse().unwrap();
        let e = eni(&conn);
        let (address, _) = allocate(&conn, &pool, &AllocateAddress::default()).unwrap();
        let cmd = AssociateAddress {
            address: AddressRef::AllocationId(address.allocation_id),
            target: AssociationTarget::NetworkInterface(e.id.clone()),
            private_ip: Some("172.31.99.99".into()),
            allow_reassociation: false,
        };
        let err = associate(&conn, &cmd).unwrap_err();
        assert_eq!(err.code(), Some("InvalidParameterValue"));
        assert!(
            err.to_string()
                .starts_with("Value for parameter PrivateIpAddress is invalid")
        );
        let cmd = AssociateAddress {
            target: AssociationTarget::Instance("i-12345678".into()),
            private_ip: None,
            ..cmd
        };
        let err = associate(&conn, &cmd).unwrap_err();
        assert_eq!(err.code(), Some("InvalidInstanceID.NotFound"));
    }
}
