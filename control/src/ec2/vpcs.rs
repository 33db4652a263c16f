//! CreateVpc and DeleteVpc. This host routes every VPC itself, so VPC blocks may not overlap
//! each other nor the public pool; a VPC is made with its default security group, and
//! deleted with it once nothing else depends on it.

use rusqlite::Transaction;

use host::network::addressing;
use host::network::cidr::Cidr;
use state::security_groups::{self, GroupRow};
use state::vpcs::{self, VpcRow};
use state::{enis, new_id, tags};

use crate::effects::{ApplyError, Effect};
use crate::{Plane, Refusal};

/// The smallest prefix (largest block) a VPC or subnet may have, as on EC2.
pub const MIN_PREFIX: u8 = 16;
/// The largest prefix (smallest block).
pub const MAX_PREFIX: u8 = 28;

/// Whether `block`'s size is one EC2 allows for a VPC or a subnet.
pub fn size_allowed(block: &Cidr) -> bool {
    (MIN_PREFIX..=MAX_PREFIX).contains(&block.prefix)
}

/// Make a VPC.
#[derive(Debug, Clone)]
pub struct CreateVpc {
    /// Its block.
    pub cidr: Cidr,
    /// Its tags.
    pub tags: Vec<(String, String)>,
}

/// The VPC made, with its default group.
#[derive(Debug, Clone)]
pub struct VpcCreated {
    /// The VPC.
    pub vpc: VpcRow,
    /// Its default security group.
    pub default_group: GroupRow,
}

/// CreateVpc refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateVpcError {
    /// The block is larger than a /16 or smaller than a /28.
    #[error(
        "The CIDR '{0}' is invalid: the block size must be between /{MIN_PREFIX} and /{MAX_PREFIX}."
    )]
    Size(Cidr),
    /// The block overlaps the public pool.
    #[error("The CIDR '{block}' is invalid: it overlaps this host's public address pool {pool}.")]
    OverlapsPool {
        /// The block asked for.
        block: Cidr,
        /// The pool.
        pool: Cidr,
    },
    /// The block overlaps another VPC's.
    #[error(
        "The CIDR '{block}' is invalid: it overlaps {vpc} ({vpc_cidr}); this host routes every \
         VPC itself, so VPC blocks may not overlap."
    )]
    OverlapsVpc {
        /// The block asked for.
        block: Cidr,
        /// The other VPC.
        vpc: String,
        /// Its block.
        vpc_cidr: String,
    },
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
    /// The host could not be brought in line.
    #[error("the new VPC's bridge could not be made")]
    Apply(#[from] ApplyError),
}

impl Refusal for CreateVpcError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Size(_) | Self::OverlapsPool { .. } | Self::OverlapsVpc { .. } => {
                Some("InvalidVpc.Range")
            }
            Self::Db(_) | Self::Apply(_) => None,
        }
    }
}

/// Checks and records a new VPC, its default group and its tags; its bridge is to be made.
pub fn create_vpc(
    tx: &Transaction<'_>,
    pool: &Cidr,
    cmd: &CreateVpc,
) -> Result<(VpcCreated, Vec<Effect>), CreateVpcError> {
    let block = cmd.cidr;
    if !size_allowed(&block) {
        return Err(CreateVpcError::Size(block));
    }
    if block.overlaps(pool) {
        return Err(CreateVpcError::OverlapsPool { block, pool: *pool });
    }
    for other in vpcs::vpcs(tx)? {
        if other.cidr.parse::<Cidr>().is_ok_and(|o| o.overlaps(&block)) {
            return Err(CreateVpcError::OverlapsVpc {
                block,
                vpc: other.id,
                vpc_cidr: other.cidr,
            });
        }
    }
    let vpc = vpcs::insert_vpc(tx, &new_id("vpc"), &block.to_string(), false)?;
    let default_group = addressing::create_default_group(tx, &vpc.id)?;
    tags::put(tx, &vpc.id, &cmd.tags)?;
    Ok((VpcCreated { vpc, default_group }, vec![Effect::SyncBridges]))
}

/// Delete a VPC.
#[derive(Debug, Clone)]
pub struct DeleteVpc {
    /// The VPC.
    pub vpc_id: String,
}

/// DeleteVpc refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DeleteVpcError {
    /// No such VPC.
    #[error("The vpc ID '{0}' does not exist")]
    NotFound(String),
    /// A subnet is in it.
    #[error("The vpc '{vpc}' has dependencies and cannot be deleted: subnet {subnet}.")]
    HasSubnet {
        /// The VPC.
        vpc: String,
        /// One of its subnets.
        subnet: String,
    },
    /// A security group other than its default one is in it.
    #[error("The vpc '{vpc}' has dependencies and cannot be deleted: security group {group}.")]
    HasGroup {
        /// The VPC.
        vpc: String,
        /// The group.
        group: String,
    },
    /// A network interface is in it.
    #[error("The vpc '{vpc}' has dependencies and cannot be deleted: network interface {eni}.")]
    HasInterface {
        /// The VPC.
        vpc: String,
        /// The interface.
        eni: String,
    },
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
    /// The host could not be brought in line.
    #[error("the VPC's bridge could not be removed")]
    Apply(#[from] ApplyError),
}

impl Refusal for DeleteVpcError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::NotFound(_) => Some("InvalidVpcID.NotFound"),
            Self::HasSubnet { .. } | Self::HasGroup { .. } | Self::HasInterface { .. } => {
                Some("DependencyViolation")
            }
            Self::Db(_) | Self::Apply(_) => None,
        }
    }
}

/// Checks that nothing depends on the VPC, then deletes it with its default group and tags;
/// its bridge is to be removed.
pub fn delete_vpc(
    tx: &Transaction<'_>,
    cmd: &DeleteVpc,
) -> Result<((), Vec<Effect>), DeleteVpcError> {
    let v = vpcs::get_vpc(tx, &cmd.vpc_id)?
        .ok_or_else(|| DeleteVpcError::NotFound(cmd.vpc_id.clone()))?;
    if let Some(s) = vpcs::subnets_of(tx, &v.id)?.first() {
        return Err(DeleteVpcError::HasSubnet {
            vpc: v.id,
            subnet: s.id.clone(),
        });
    }
    let groups: Vec<_> = security_groups::groups(tx)?
        .into_iter()
        .filter(|g| g.vpc_id == v.id)
        .collect();
    if let Some(g) = groups.iter().find(|g| g.name != "default") {
        return Err(DeleteVpcError::HasGroup {
            vpc: v.id,
            group: g.id.clone(),
        });
    }
    if let Some(e) = enis::all(tx)?.iter().find(|e| e.vpc_id == v.id) {
        return Err(DeleteVpcError::HasInterface {
            vpc: v.id,
            eni: e.id.clone(),
        });
    }
    for g in &groups {
        security_groups::delete_group(tx, &g.id)?;
        tags::delete_all(tx, &g.id)?;
    }
    vpcs::delete_vpc(tx, &v.id)?;
    tags::delete_all(tx, &v.id)?;
    Ok(((), vec![Effect::SyncBridges]))
}

impl Plane {
    /// CreateVpc: `cidr` /16 to /28, overlapping no other VPC on this host nor the public
    /// pool; makes the VPC's default security group and its bridge.
    pub async fn create_vpc(&self, cmd: CreateVpc) -> Result<VpcCreated, CreateVpcError> {
        let pool = self.network.config.public_pool;
        let committed = self.transact(|tx| create_vpc(tx, &pool, &cmd))?;
        let created = committed.value;
        tracing::info!(
            vpc = %created.vpc.id,
            cidr = %created.vpc.cidr,
            group = %created.default_group.id,
            "VPC created"
        );
        self.apply(committed.effects).await?;
        Ok(created)
    }

    /// DeleteVpc: refused while it has subnets, security groups other than its default one,
    /// or network interfaces.
    pub async fn delete_vpc(&self, cmd: DeleteVpc) -> Result<(), DeleteVpcError> {
        let committed = self.transact(|tx| delete_vpc(tx, &cmd))?;
        self.apply(committed.effects).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ec2::test_db;

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn create(tx: &Transaction<'_>, block: &str) -> Result<VpcCreated, CreateVpcError> {
        let cmd = CreateVpc {
            cidr: cidr(block),
            tags: vec![("Name".into(), "n".into())],
        };
        create_vpc(tx, &cidr("198.51.100.0/24"), &cmd).map(|(v, effects)| {
            assert_eq!(effects, vec![Effect::SyncBridges]);
            v
        })
    }

    #[test]
    fn a_vpc_comes_with_its_default_group_and_tags() {
        let (_dir, db) = test_db();
        let mut conn = db.lock();
        let tx = conn.transaction().unwrap();
        let made = create(&tx, "10.1.0.0/16").unwrap();
        assert_eq!(made.default_group.vpc_id, made.vpc.id);
        assert_eq!(made.default_group.name, "default");
        let t = tags::for_resources(&tx, &[made.vpc.id.as_str()]).unwrap();
        assert_eq!(t[&made.vpc.id].len(), 1);
    }

    #[test]
    fn overlapping_blocks_and_bad_sizes_are_refused() {
        let (_dir, db) = test_db();
        let mut conn = db.lock();
        let tx = conn.transaction().unwrap();
        let first = create(&tx, "10.1.0.0/16").unwrap();
        let e = create(&tx, "10.1.128.0/20").unwrap_err();
        assert!(matches!(&e, CreateVpcError::OverlapsVpc { vpc, .. } if *vpc == first.vpc.id));
        assert_eq!(e.code(), Some("InvalidVpc.Range"));
        assert!(
            e.to_string()
                .starts_with("The CIDR '10.1.128.0/20' is invalid: it overlaps vpc-")
        );
        let e = create(&tx, "198.51.100.0/26").unwrap_err();
        assert!(matches!(e, CreateVpcError::OverlapsPool { .. }), "{e}");
        let e = create(&tx, "10.0.0.0/8").unwrap_err();
        assert_eq!(
            e.to_string(),
            "The CIDR '10.0.0.0/8' is invalid: the block size must be between /16 and /28."
        );
        assert_eq!(e.code(), Some("InvalidVpc.Range"));
        create(&tx, "10.2.0.0/28").unwrap();
    }

    #[test]
    fn a_vpc_with_dependencies_is_not_deleted() {
        let (_dir, db) = test_db();
        let mut conn = db.lock();
        let tx = conn.transaction().unwrap();
        let made = create(&tx, "10.1.0.0/16").unwrap();
        let id = made.vpc.id.clone();
        let subnet = state::vpcs::SubnetRow {
            id: new_id("subnet"),
            vpc_id: id.clone(),
            cidr: "10.1.0.0/24".into(),
            availability_zone: "local-1a".into(),
            map_public_ip: false,
            is_default: false,
            created: state::now_iso(),
        };
        vpcs::insert_subnet(&tx, &subnet).unwrap();
        let cmd = DeleteVpc { vpc_id: id.clone() };
        let e = delete_vpc(&tx, &cmd).unwrap_err();
        assert_eq!(e.code(), Some("DependencyViolation"));
        assert_eq!(
            e.to_string(),
            format!(
                "The vpc '{id}' has dependencies and cannot be deleted: subnet {}.",
                subnet.id
            )
        );
        vpcs::delete_subnet(&tx, &subnet.id).unwrap();
        let other = GroupRow {
            id: new_id("sg"),
            vpc_id: id.clone(),
            name: "web".into(),
            description: "web".into(),
        };
        security_groups::insert_group(&tx, &other).unwrap();
        let e = delete_vpc(&tx, &cmd).unwrap_err();
        assert!(matches!(&e, DeleteVpcError::HasGroup { group, .. } if *group == other.id));
        security_groups::delete_group(&tx, &other.id).unwrap();
        let (_, effects) = delete_vpc(&tx, &cmd).unwrap();
        assert_eq!(effects, vec![Effect::SyncBridges]);
        assert!(vpcs::get_vpc(&tx, &id).unwrap().is_none());
        assert!(
            security_groups::groups(&tx)
                .unwrap()
                .iter()
                .all(|g| g.vpc_id != id)
        );
        let e = delete_vpc(&tx, &cmd).unwrap_err();
        assert_eq!(e.code(), Some("InvalidVpcID.NotFound"));
    }
}
