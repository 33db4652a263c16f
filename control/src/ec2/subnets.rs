//! CreateSubnet, DeleteSubnet and ModifySubnetAttribute. Subnets are /16 to /28 ranges of
//! their VPC that do not overlap; each gives its VPC's bridge a router address.

use rusqlite::{Connection, Transaction};

use host::network::cidr::{Cidr, CidrError};
use host::placement::AVAILABILITY_ZONE;
use state::vpcs::{self, SubnetRow};
use state::{enis, new_id, now_iso, tags};

use super::vpcs::{MAX_PREFIX, MIN_PREFIX, size_allowed};
use crate::effects::{ApplyError, Effect};
use crate::{Plane, Refusal};

/// Make a subnet.
#[derive(Debug, Clone)]
pub struct CreateSubnet {
    /// Its VPC.
    pub vpc_id: String,
    /// Its block.
    pub cidr: Cidr,
    /// Its tags.
    pub tags: Vec<(String, String)>,
}

/// CreateSubnet refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateSubnetError {
    /// No such VPC.
    #[error("The vpc ID '{0}' does not exist")]
    VpcNotFound(String),
    /// The block is larger than a /16 or smaller than a /28.
    #[error(
        "The CIDR '{0}' is invalid: the block size must be between /{MIN_PREFIX} and /{MAX_PREFIX}."
    )]
    Size(Cidr),
    /// The block is not inside the VPC's.
    #[error("The CIDR '{block}' is invalid: it is not inside the block {vpc_cidr} of {vpc}.")]
    OutsideVpc {
        /// The block asked for.
        block: Cidr,
        /// The VPC's block.
        vpc_cidr: Cidr,
        /// The VPC.
        vpc: String,
    },
    /// The block overlaps another subnet's.
    #[error("The CIDR '{block}' conflicts with another subnet: {subnet} ({subnet_cidr})")]
    Conflict {
        /// The block asked for.
        block: Cidr,
        /// The other subnet.
        subnet: String,
        /// Its block.
        subnet_cidr: String,
    },
    /// The VPC's recorded block does not parse.
    #[error("the recorded block of the VPC is not a CIDR block")]
    BadVpcBlock(#[source] CidrError),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
    /// The host could not be brought in line.
    #[error("the subnet's router address could not be added")]
    Apply(#[from] ApplyError),
}

impl Refusal for CreateSubnetError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::VpcNotFound(_) => Some("InvalidVpcID.NotFound"),
            Self::Size(_) | Self::OutsideVpc { .. } => Some("InvalidSubnet.Range"),
            Self::Conflict { .. } => Some("InvalidSubnet.Conflict"),
            Self::BadVpcBlock(_) | Self::Db(_) | Self::Apply(_) => None,
        }
    }
}

/// Checks and records a new subnet and its tags; its router address is to be added.
pub fn create_subnet(
    tx: &Transaction<'_>,
    cmd: &CreateSubnet,
) -> Result<(SubnetRow, Vec<Effect>), CreateSubnetError> {
    let block = cmd.cidr;
    let v = vpcs::get_vpc(tx, &cmd.vpc_id)?
        .ok_or_else(|| CreateSubnetError::VpcNotFound(cmd.vpc_id.clone()))?;
    if !size_allowed(&block) {
        return Err(CreateSubnetError::Size(block));
    }
    let vpc_cidr: Cidr = v.cidr.parse().map_err(CreateSubnetError::BadVpcBlock)?;
    if !vpc_cidr.contains_block(&block) {
        return Err(CreateSubnetError::OutsideVpc {
            block,
            vpc_cidr,
            vpc: v.id,
        });
    }
    for s in vpcs::subnets_of(tx, &v.id)? {
        if s.cidr.parse::<Cidr>().is_ok_and(|o| o.overlaps(&block)) {
            return Err(CreateSubnetError::Conflict {
                block,
                subnet: s.id,
                subnet_cidr: s.cidr,
            });
        }
    }
    let row = SubnetRow {
        id: new_id("subnet"),
        vpc_id: v.id,
        cidr: block.to_string(),
        availability_zone: AVAILABILITY_ZONE.into(),
        map_public_ip: false,
        is_default: false,
        created: now_iso(),
    };
    vpcs::insert_subnet(tx, &row)?;
    tags::put(tx, &row.id, &cmd.tags)?;
    Ok((row, vec![Effect::SyncBridges]))
}

/// Delete a subnet.
#[derive(Debug, Clone)]
pub struct DeleteSubnet {
    /// The subnet.
    pub subnet_id: String,
}

/// DeleteSubnet refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DeleteSubnetError {
    /// No such subnet.
    #[error("The subnet ID '{0}' does not exist")]
    NotFound(String),
    /// A network interface is in it.
    #[error(
        "The subnet '{subnet}' has dependencies and cannot be deleted: network interface {eni}."
    )]
    HasInterface {
        /// The subnet.
        subnet: String,
        /// The interface.
        eni: String,
    },
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
    /// The host could not be brought in line.
    #[error("the subnet's router address could not be removed")]
    Apply(#[from] ApplyError),
}

impl Refusal for DeleteSubnetError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::NotFound(_) => Some("InvalidSubnetID.NotFound"),
            Self::HasInterface { .. } => Some("DependencyViolation"),
            Self::Db(_) | Self::Apply(_) => None,
        }
    }
}

/// Checks that no interface is in the subnet, then deletes it and its tags.
pub fn delete_subnet(
    tx: &Transaction<'_>,
    cmd: &DeleteSubnet,
) -> Result<((), Vec<Effect>), DeleteSubnetError> {
    let s = vpcs::get_subnet(tx, &cmd.subnet_id)?
        .ok_or_else(|| DeleteSubnetError::NotFound(cmd.subnet_id.clone()))?;
    if let Some(e) = enis::in_subnet(tx, &s.id)?.first() {
        return Err(DeleteSubnetError::HasInterface {
            subnet: s.id,
            eni: e.id.clone(),
        });
    }
    vpcs::delete_subnet(tx, &s.id)?;
    tags::delete_all(tx, &s.id)?;
    Ok(((), vec![Effect::SyncBridges]))
}

/// Whether instances launched in a subnet get a public address.
#[derive(Debug, Clone)]
pub struct SetMapPublicIp {
    /// The subnet.
    pub subnet_id: String,
    /// The new value.
    pub on: bool,
}

/// ModifySubnetAttribute refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum SetMapPublicIpError {
    /// No such subnet.
    #[error("The subnet ID '{0}' does not exist")]
    NotFound(String),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
    /// The host could not be brought in line.
    #[error("the effects could not be applied")]
    Apply(#[from] ApplyError),
}

impl Refusal for SetMapPublicIpError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::NotFound(_) => Some("InvalidSubnetID.NotFound"),
            Self::Db(_) | Self::Apply(_) => None,
        }
    }
}

/// Records the subnet's `MapPublicIpOnLaunch`; it matters at the next launch only.
pub fn set_map_public_ip(
    conn: &Connection,
    cmd: &SetMapPublicIp,
) -> Result<((), Vec<Effect>), SetMapPublicIpError> {
    let s = vpcs::get_subnet(conn, &cmd.subnet_id)?
        .ok_or_else(|| SetMapPublicIpError::NotFound(cmd.subnet_id.clone()))?;
    vpcs::set_map_public_ip(conn, &s.id, cmd.on)?;
    Ok(((), Vec::new()))
}

impl Plane {
    /// CreateSubnet: a /16 to /28 block inside its VPC, overlapping none of its subnets.
    pub async fn create_subnet(&self, cmd: CreateSubnet) -> Result<SubnetRow, CreateSubnetError> {
        let committed = self.transact(|tx| create_subnet(tx, &cmd))?;
        self.apply(committed.effects).await?;
        Ok(committed.value)
    }

    /// DeleteSubnet: refused while network interfaces are in it.
    pub async fn delete_subnet(&self, cmd: DeleteSubnet) -> Result<(), DeleteSubnetError> {
        let committed = self.transact(|tx| delete_subnet(tx, &cmd))?;
        self.apply(committed.effects).await?;
        Ok(())
    }

    /// ModifySubnetAttribute's `MapPublicIpOnLaunch`.
    pub async fn set_map_public_ip(&self, cmd: SetMapPublicIp) -> Result<(), SetMapPublicIpError> {
        let committed = self.transact(|tx| set_map_public_ip(tx, &cmd))?;
        self.apply(committed.effects).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ec2::test_db;
    use crate::ec2::vpcs::{CreateVpc, create_vpc};

    fn subnet(
        tx: &Transaction<'_>,
        vpc: &str,
        block: &str,
    ) -> Result<SubnetRow, CreateSubnetError> {
        let cmd = CreateSubnet {
            vpc_id: vpc.into(),
            cidr: block.parse().unwrap(),
            tags: Vec::new(),
        };
        create_subnet(tx, &cmd).map(|(row, _)| row)
    }

    #[test]
    fn subnets_are_inside_their_vpc_and_do_not_overlap() {
        let (_dir, db) = test_db();
        let mut conn = db.lock();
        let tx = conn.transaction().unwrap();
        let cmd = CreateVpc {
            cidr: "10.1.0.0/16".parse().unwrap(),
            tags: Vec::new(),
        };
        let vpc = create_vpc(&tx, &"198.51.100.0/24".parse().unwrap(), &cmd)
            .unwrap()
            .0
            .vpc
            .id;
        let first = subnet(&tx, &vpc, "10.1.0.0/24").unwrap();
        let e = subnet(&tx, &vpc, "10.1.0.128/25").unwrap_err();
        assert_eq!(e.code(), Some("InvalidSubnet.Conflict"));
        assert_eq!(
            e.to_string(),
            format!(
                "The CIDR '10.1.0.128/25' conflicts with another subnet: {} (10.1.0.0/24)",
                first.id
            )
        );
        let e = subnet(&tx, &vpc, "10.2.0.0/24").unwrap_err();
        assert_eq!(e.code(), Some("InvalidSubnet.Range"));
        let e = subnet(&tx, &vpc, "10.1.0.0/29").unwrap_err();
        assert!(matches!(e, CreateSubnetError::Size(_)), "{e}");
        let e = subnet(&tx, "vpc-12345678", "10.1.1.0/24").unwrap_err();
        assert_eq!(e.code(), Some("InvalidVpcID.NotFound"));
        subnet(&tx, &vpc, "10.1.1.0/24").unwrap();

        let del = DeleteSubnet {
            subnet_id: first.id.clone(),
        };
        let (_, effects) = delete_subnet(&tx, &del).unwrap();
        assert_eq!(effects, vec![Effect::SyncBridges]);
        let e = delete_subnet(&tx, &del).unwrap_err();
        assert_eq!(e.code(), Some("InvalidSubnetID.NotFound"));
    }
}
