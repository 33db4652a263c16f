//! Creating ENIs and handing out addresses inside a database transaction: a private address
//! from the subnet (EC2's reserved addresses skipped), a locally administered MAC, the default
//! VPC with its default subnet and group, and ephemeral public addresses from the pool.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use rusqlite::Connection;

use super::cidr::Cidr;
use crate::placement::AVAILABILITY_ZONE;
use state::enis::{self, EniRow};
use state::security_groups::{self, GroupRow, RuleRow};
use state::vpcs::{self, SubnetRow};
use state::{new_id, now_iso};

/// The default VPC's block, as on EC2.
pub const DEFAULT_VPC_CIDR: &str = "172.31.0.0/16";
/// The default subnet's block.
pub const DEFAULT_SUBNET_CIDR: &str = "172.31.0.0/20";

/// Why an address could not be given.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    /// The subnet has no free address.
    #[error(
        "There are not enough free addresses in subnet '{0}' to satisfy the requested number of instances."
    )]
    SubnetFull(String),
    /// The requested private address is unusable.
    #[error("{0}")]
    BadPrivateIp(String),
    /// The requested private address is taken.
    #[error("Address {0} is in use.")]
    InUse(String),
    /// The public pool is exhausted.
    #[error("There are no more public addresses in the pool {0}.")]
    PoolFull(Cidr),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

/// Makes the default VPC, its default subnet and its default group if they do not exist.
pub fn ensure_default_vpc(conn: &Connection) -> rusqlite::Result<()> {
    if vpcs::default_vpc(conn)?.is_some() {
        return Ok(());
    }
    let vpc = vpcs::insert_vpc(conn, &new_id("vpc"), DEFAULT_VPC_CIDR, true)?;
    vpcs::insert_subnet(
        conn,
        &SubnetRow {
            id: new_id("subnet"),
            vpc_id: vpc.id.clone(),
            cidr: DEFAULT_SUBNET_CIDR.into(),
            availability_zone: AVAILABILITY_ZONE.into(),
            map_public_ip: true,
            is_default: true,
            created: now_iso(),
        },
    )?;
    create_default_group(conn, &vpc.id)?;
    Ok(())
}

/// A VPC's default group: all traffic from its own members in, all traffic out.
pub fn create_default_group(conn: &Connection, vpc_id: &str) -> rusqlite::Result<GroupRow> {
    let group = GroupRow {
        id: new_id("sg"),
        vpc_id: vpc_id.to_owned(),
        name: "default".into(),
        description: "default VPC security group".into(),
    };
    security_groups::insert_group(conn, &group)?;
    let rule = |egress: bool, cidr: Option<&str>, peer: Option<&str>| RuleRow {
        id: new_id("sgr"),
        group_id: group.id.clone(),
        egress,
        protocol: "-1".into(),
        from_port: None,
        to_port: None,
        cidr: cidr.map(str::to_owned),
        peer_group_id: peer.map(str::to_owned),
        description: String::new(),
    };
    security_groups::insert_rule(conn, &rule(false, None, Some(&group.id)))?;
    security_groups::insert_rule(conn, &rule(true, Some("0.0.0.0/0"), None))?;
    Ok(group)
}

/// A fresh locally administered, unicast MAC not used by any ENI (looked up by the unique
/// index, so a launch does not read every ENI).
fn new_mac(conn: &Connection) -> rusqlite::Result<String> {
    use rand::Rng;
    loop {
        let b: [u8; 4] = rand::thread_rng().r#gen();
        let mac = format!("02:6b:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3]);
        if !enis::mac_in_use(conn, &mac)? {
            return Ok(mac);
        }
    }
}

/// Picks `wanted` if it is free and usable in `subnet`, else the lowest free address.
fn private_ip(
    conn: &Connection,
    subnet: &SubnetRow,
    wanted: Option<Ipv4Addr>,
) -> Result<Ipv4Addr, AddressError> {
    let block: Cidr = subnet
        .cidr
        .parse()
        .map_err(|e: super::cidr::CidrError| AddressError::BadPrivateIp(e.to_string()))?;
    let used: HashSet<Ipv4Addr> = enis::private_ips_in_subnet(conn, &subnet.id)?
        .iter()
        .filter_map(|ip| ip.parse().ok())
        .collect();
    match wanted {
        Some(ip) => {
            if !block.contains(ip) {
                return Err(AddressError::BadPrivateIp(format!(
                    "Address {ip} does not fall within the subnet's address range ({block})."
                )));
            }
            if block.is_reserved(ip) {
                return Err(AddressError::BadPrivateIp(format!(
                    "Address {ip} is reserved: EC2 keeps the first four and the last address \
                     of subnet {block}."
                )));
            }
            if used.contains(&ip) {
                return Err(AddressError::InUse(ip.to_string()));
            }
            Ok(ip)
        }
        None => block
            .assignable()
            .find(|ip| !used.contains(ip))
            .ok_or_else(|| AddressError::SubnetFull(subnet.id.clone())),
    }
}

/// What a new ENI is made of.
#[derive(Debug, Clone)]
pub struct NewEni<'a> {
    /// Its subnet.
    pub subnet: &'a SubnetRow,
    /// Its groups (validated: same VPC, 1 to 5).
    pub group_ids: &'a [String],
    /// A requested private address.
    pub private_ip: Option<Ipv4Addr>,
    /// Free text.
    pub description: String,
    /// Attach to this instance at this device index, deleted with it or not.
    pub attach: Option<(&'a str, u32, bool)>,
    /// Gets an ephemeral public address while its instance runs.
    pub wants_public_ip: bool,
}

/// Creates an ENI with a fresh MAC and private address.
pub fn create_eni(conn: &Connection, new: &NewEni<'_>) -> Result<EniRow, AddressError> {
    let ip = private_ip(conn, new.subnet, new.private_ip)?;
    let attachment_id = new.attach.map(|_| new_id("eni-attach"));
    let row = enis::insert(
        conn,
        &EniRow {
            seq: 0,
            id: new_id("eni"),
            subnet_id: new.subnet.id.clone(),
            vpc_id: new.subnet.vpc_id.clone(),
            mac: new_mac(conn)?,
            private_ip: ip.to_string(),
            description: new.description.clone(),
            instance_id: new.attach.map(|a| a.0.to_owned()),
            device_index: new.attach.map(|a| a.1),
            attachment_id,
            delete_on_termination: new.attach.is_some_and(|a| a.2),
            wants_public_ip: new.wants_public_ip,
            public_ip: None,
        },
    )?;
    security_groups::set_eni_groups(conn, &row.id, new.group_ids)?;
    Ok(row)
}

/// The public pool's addresses an instance may get: all but the network's, the host's (the
/// first) and the broadcast address.
fn pool_range(pool: &Cidr) -> std::ops::Range<u64> {
    2..pool.size().saturating_sub(1)
}

/// Random tries at a free public address before the pool is scanned: a pool less than half
/// full gives one in fewer than 64 tries but once in 2^64.
const RANDOM_TRIES: usize = 64;

/// A free address of the public pool (its first address is the host's), picked at random
/// as EC2 does, and other than `avoid` (the address the ENI had before a stop) unless it is
/// the only one left. Random tries first, so a large pool is not walked for every launch.
pub fn free_public_ip(
    conn: &Connection,
    pool: &Cidr,
    avoid: Option<Ipv4Addr>,
) -> Result<Ipv4Addr, AddressError> {
    let used: HashSet<String> = enis::public_ips_in_use(conn)?.into_iter().collect();
    pick_free(pool, &used, avoid).ok_or(AddressError::PoolFull(*pool))
}

/// Up to `wanted` distinct free addresses of the public pool, picked at random, for a launch
/// of that many instances: fewer when the pool has fewer left. The addresses in use are read
/// once for all of them.
pub fn free_public_ips(
    conn: &Connection,
    pool: &Cidr,
    wanted: usize,
) -> rusqlite::Result<Vec<Ipv4Addr>> {
    let mut used: HashSet<String> = enis::public_ips_in_use(conn)?.into_iter().collect();
    let mut picked = Vec::new();
    while picked.len() < wanted
        && let Some(ip) = pick_free(pool, &used, None)
    {
        used.insert(ip.to_string());
        picked.push(ip);
    }
    Ok(picked)
}

/// One free address of `pool` not in `used`, at random, other than `avoid` unless it is the
/// only one left.
fn pick_free(pool: &Cidr, used: &HashSet<String>, avoid: Option<Ipv4Addr>) -> Option<Ipv4Addr> {
    use rand::Rng;
    use rand::seq::IteratorRandom;
    let range = pool_range(pool);
    let mut rng = rand::thread_rng();
    let usable = |ip: &Ipv4Addr| !used.contains(&ip.to_string()) && Some(*ip) != avoid;
    if !range.is_empty() {
        for _ in 0..RANDOM_TRIES {
            if let Some(ip) = pool.nth(rng.gen_range(range.clone())).filter(usable) {
                return Some(ip);
            }
        }
    }
    let free = range
        .filter_map(|n| pool.nth(n))
        .filter(|ip| !used.contains(&ip.to_string()));
    let (fresh, old): (Vec<Ipv4Addr>, Vec<Ipv4Addr>) = free.partition(|ip| Some(*ip) != avoid);
    fresh
        .into_iter()
        .choose(&mut rng)
        .or_else(|| old.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        state::migrations::migrate(&mut conn).unwrap();
        conn
    }

    #[test]
    fn default_vpc_is_made_once_with_its_subnet_and_group() {
        let conn = db();
        ensure_default_vpc(&conn).unwrap();
        ensure_default_vpc(&conn).unwrap();
        assert_eq!(vpcs::vpcs(&conn).unwrap().len(), 1);
        let subnet = vpcs::default_subnet(&conn).unwrap().unwrap();
        assert_eq!(subnet.cidr, "172.31.0.0/20");
        assert!(subnet.map_public_ip);
        let groups = security_groups::groups(&conn).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].name, "default");
        let rules = security_groups::rules_of(&conn, &groups[0].id).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(
            rules[0].peer_group_id.as_deref(),
            Some(groups[0].id.as_str())
        );
    }

    #[test]
    fn addresses_skip_reserved_and_used_ones() {
        let conn = db();
        ensure_default_vpc(&conn).unwrap();
        let mut subnet = vpcs::default_subnet(&conn).unwrap().unwrap();
        subnet.id = "subnet-small".into();
        subnet.cidr = "172.31.16.0/28".into();
        subnet.is_default = false;
        vpcs::insert_subnet(&conn, &subnet).unwrap();
        let new = |ip: Option<Ipv4Addr>| NewEni {
            subnet: &subnet,
            group_ids: &[],
            private_ip: ip,
            description: String::new(),
            attach: None,
            wants_public_ip: false,
        };
        let first = create_eni(&conn, &new(None)).unwrap();
        assert_eq!(first.private_ip, "172.31.16.4");
        assert!(first.mac.starts_with("02:"));
        let chosen = create_eni(&conn, &new(Some(Ipv4Addr::new(172, 31, 16, 9)))).unwrap();
        assert_eq!(chosen.private_ip, "172.31.16.9");
        assert!(matches!(
            create_eni(&conn, &new(Some(Ipv4Addr::new(172, 31, 16, 9)))),
            Err(AddressError::InUse(_))
        ));
        assert!(matches!(
            create_eni(&conn, &new(Some(Ipv4Addr::new(172, 31, 16, 15)))),
            Err(AddressError::BadPrivateIp(_))
        ));
        for _ in 0..9 {
            create_eni(&conn, &new(None)).unwrap();
        }
        assert!(matches!(
            create_eni(&conn, &new(None)),
            Err(AddressError::SubnetFull(_))
        ));
    }
}
