//! The network_interfaces table (ENIs), Elastic IPs (addresses) and instances' metadata
//! options.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Row, params};

/// An elastic network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EniRow {
    /// Insertion order; names the tap (`kec2t<seq>`).
    pub seq: i64,
    /// `eni-...`.
    pub id: String,
    /// Its subnet.
    pub subnet_id: String,
    /// Its subnet's VPC.
    pub vpc_id: String,
    /// `02:xx:xx:xx:xx:xx`, locally administered.
    pub mac: String,
    /// Its private address, fixed for its life.
    pub private_ip: String,
    /// Free text.
    pub description: String,
    /// The instance it is attached to.
    pub instance_id: Option<String>,
    /// Its device index on that instance (0 = primary).
    pub device_index: Option<u32>,
    /// `eni-attach-...`.
    pub attachment_id: Option<String>,
    /// Deleted with its instance.
    pub delete_on_termination: bool,
    /// Gets an ephemeral public address while its instance runs.
    pub wants_public_ip: bool,
    /// The ephemeral public address it holds now.
    pub public_ip: Option<String>,
}

impl EniRow {
    /// The tap device of this ENI (at most 15 bytes, as Linux requires).
    pub fn tap(&self) -> String {
        format!("kec2t{}", self.seq)
    }
}

/// An Elastic IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRow {
    /// `eipalloc-...`.
    pub allocation_id: String,
    /// The address, from the public pool.
    pub public_ip: String,
    /// The ENI it is associated with.
    pub eni_id: Option<String>,
    /// `eipassoc-...`.
    pub association_id: Option<String>,
}

/// An instance's metadata options, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataOptionsRow {
    /// `optional` or `required`.
    pub http_tokens: String,
    /// `enabled` or `disabled`.
    pub http_endpoint: String,
    /// 1 to 64.
    pub hop_limit: u8,
}

impl Default for MetadataOptionsRow {
    fn default() -> Self {
        MetadataOptionsRow {
            http_tokens: "optional".into(),
            http_endpoint: "enabled".into(),
            hop_limit: 1,
        }
    }
}

const ENI: &str = "SELECT seq, id, subnet_id, vpc_id, mac, private_ip, description, instance_id, \
                   device_index, attachment_id, delete_on_termination, wants_public_ip, \
                   public_ip FROM network_interfaces";
const ADDRESS: &str = "SELECT allocation_id, public_ip, eni_id, association_id FROM addresses";

fn eni(r: &Row<'_>) -> rusqlite::Result<EniRow> {
    Ok(EniRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        subnet_id: r.get(2)?,
        vpc_id: r.get(3)?,
        mac: r.get(4)?,
        private_ip: r.get(5)?,
        description: r.get(6)?,
        instance_id: r.get(7)?,
        device_index: r.get(8)?,
        attachment_id: r.get(9)?,
        delete_on_termination: r.get(10)?,
        wants_public_ip: r.get(11)?,
        public_ip: r.get(12)?,
    })
}

fn address(r: &Row<'_>) -> rusqlite::Result<AddressRow> {
    Ok(AddressRow {
        allocation_id: r.get(0)?,
        public_ip: r.get(1)?,
        eni_id: r.get(2)?,
        association_id: r.get(3)?,
    })
}

/// Inserts an ENI (its `seq` is assigned by the database) and returns the stored row.
pub fn insert(conn: &Connection, e: &EniRow) -> rusqlite::Result<EniRow> {
    conn.execute(
        "INSERT INTO network_interfaces (id, subnet_id, vpc_id, mac, private_ip, description, \
         instance_id, device_index, attachment_id, delete_on_termination, wants_public_ip, \
         public_ip, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            e.id,
            e.subnet_id,
            e.vpc_id,
            e.mac,
            e.private_ip,
            e.description,
            e.instance_id,
            e.device_index,
            e.attachment_id,
            e.delete_on_termination,
            e.wants_public_ip,
            e.public_ip,
            super::now_iso()
        ],
    )?;
    Ok(get(conn, &e.id)?.expect("just inserted"))
}

/// One ENI.
pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<EniRow>> {
    conn.query_row(&format!("{ENI} WHERE id = ?1"), [id], eni)
        .optional()
}

/// Every ENI, oldest first.
pub fn all(conn: &Connection) -> rusqlite::Result<Vec<EniRow>> {
    let mut stmt = conn.prepare(&format!("{ENI} ORDER BY seq"))?;
    stmt.query_map([], eni)?.collect()
}

/// The ENIs of an instance, by device index.
pub fn of_instance(conn: &Connection, instance_id: &str) -> rusqlite::Result<Vec<EniRow>> {
    let mut stmt = conn.prepare(&format!(
        "{ENI} WHERE instance_id = ?1 ORDER BY device_index"
    ))?;
    stmt.query_map([instance_id], eni)?.collect()
}

/// The ENIs in a subnet.
pub fn in_subnet(conn: &Connection, subnet_id: &str) -> rusqlite::Result<Vec<EniRow>> {
    let mut stmt = conn.prepare(&format!("{ENI} WHERE subnet_id = ?1 ORDER BY seq"))?;
    stmt.query_map([subnet_id], eni)?.collect()
}

/// The private addresses of the ENIs in a subnet (only the addresses: read for every
/// address handed out).
pub fn private_ips_in_subnet(conn: &Connection, subnet_id: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT private_ip FROM network_interfaces WHERE subnet_id = ?1")?;
    stmt.query_map([subnet_id], |r| r.get(0))?.collect()
}

/// Whether address `ip` belongs in the set of group `group_id`: an ENI of the group has it
/// and is attached to an instance or serves a load balancer.
pub fn group_has_member(conn: &Connection, group_id: &str, ip: &str) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare_cached(
        "SELECT 1 FROM network_interface_groups m JOIN network_interfaces n ON n.id = m.eni_id \
         WHERE m.group_id = ?1 AND n.private_ip = ?2 \
         AND (n.instance_id IS NOT NULL OR n.id IN (SELECT eni_id FROM elb_interfaces))",
    )?;
    stmt.exists([group_id, ip])
}

/// Whether an ENI has MAC `mac` (by its unique index).
pub fn mac_in_use(conn: &Connection, mac: &str) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM network_interfaces WHERE mac = ?1")?;
    stmt.exists([mac])
}

/// Attaches (or, with `None`, detaches) an ENI.
pub fn set_attachment(
    conn: &Connection,
    id: &str,
    attachment: Option<(&str, u32, &str, bool)>,
) -> rusqlite::Result<()> {
    match attachment {
        Some((instance, index, attachment_id, delete)) => conn.execute(
            "UPDATE network_interfaces SET instance_id = ?2, device_index = ?3, \
             attachment_id = ?4, delete_on_termination = ?5 WHERE id = ?1",
            params![id, instance, index, attachment_id, delete],
        )?,
        None => conn.execute(
            "UPDATE network_interfaces SET instance_id = NULL, device_index = NULL, \
             attachment_id = NULL, delete_on_termination = 0, public_ip = NULL WHERE id = ?1",
            [id],
        )?,
    };
    Ok(())
}

/// Sets or clears the ephemeral public address.
pub fn set_public_ip(conn: &Connection, id: &str, ip: Option<&str>) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE network_interfaces SET public_ip = ?2 WHERE id = ?1",
        params![id, ip],
    )?;
    Ok(())
}

/// Deletes an ENI and its group memberships.
pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM network_interface_groups WHERE eni_id = ?1",
        [id],
    )?;
    conn.execute("DELETE FROM network_interfaces WHERE id = ?1", [id])?;
    Ok(())
}

/// The sequence numbers of the interfaces of instances that are neither stopped nor
/// terminated (the ones whose taps should exist).
pub fn seqs_of_live_instances(conn: &Connection) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT n.seq FROM network_interfaces n JOIN instances i \
         ON i.id = n.instance_id WHERE i.state NOT IN ('stopped', 'terminated')",
    )?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

/// Instances whose network should be given back: terminated ones with interfaces, and
/// stopped ones whose interfaces still hold a public address; each with whether it is
/// terminated.
pub fn instances_to_unplug(conn: &Connection) -> rusqlite::Result<Vec<(String, bool)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT i.id, i.state = 'terminated' FROM network_interfaces n \
         JOIN instances i ON i.id = n.instance_id WHERE i.state = 'terminated' \
         OR (i.state = 'stopped' AND n.public_ip IS NOT NULL)",
    )?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// The ids of the interfaces in security group `group_id`.
pub fn enis_in_group(conn: &Connection, group_id: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT eni_id FROM network_interface_groups WHERE group_id = ?1")?;
    stmt.query_map([group_id], |r| r.get(0))?.collect()
}

/// Inserts an Elastic IP.
pub fn insert_address(conn: &Connection, a: &AddressRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO addresses (allocation_id, public_ip, eni_id, association_id) \
         VALUES (?1, ?2, ?3, ?4)",
        params![a.allocation_id, a.public_ip, a.eni_id, a.association_id],
    )?;
    Ok(())
}

/// Every Elastic IP.
pub fn addresses(conn: &Connection) -> rusqlite::Result<Vec<AddressRow>> {
    let mut stmt = conn.prepare(&format!("{ADDRESS} ORDER BY seq"))?;
    stmt.query_map([], address)?.collect()
}

/// The Elastic IP associated with an ENI, if any.
pub fn address_of_eni(conn: &Connection, eni_id: &str) -> rusqlite::Result<Option<AddressRow>> {
    conn.query_row(&format!("{ADDRESS} WHERE eni_id = ?1"), [eni_id], address)
        .optional()
}

/// Associates (or, with `None`, disassociates) an Elastic IP.
pub fn set_association(
    conn: &Connection,
    allocation_id: &str,
    association: Option<(&str, &str)>,
) -> rusqlite::Result<()> {
    let (eni, assoc) = association.unzip();
    conn.execute(
        "UPDATE addresses SET eni_id = ?2, association_id = ?3 WHERE allocation_id = ?1",
        params![allocation_id, eni, assoc],
    )?;
    Ok(())
}

/// Releases an Elastic IP.
pub fn delete_address(conn: &Connection, allocation_id: &str) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM addresses WHERE allocation_id = ?1",
        [allocation_id],
    )?;
    Ok(())
}

/// Every public address in use: Elastic IPs, ephemeral ones and load balancers'.
pub fn public_ips_in_use(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT public_ip FROM addresses UNION \
         SELECT public_ip FROM network_interfaces WHERE public_ip IS NOT NULL UNION \
         SELECT public_ip FROM elb_load_balancers WHERE public_ip IS NOT NULL",
    )?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

/// An instance's metadata options (defaults when never set).
pub fn metadata_options(
    conn: &Connection,
    instance_id: &str,
) -> rusqlite::Result<MetadataOptionsRow> {
    Ok(conn
        .query_row(
            "SELECT http_tokens, http_endpoint, hop_limit FROM metadata_options \
             WHERE instance_id = ?1",
            [instance_id],
            options_row,
        )
        .optional()?
        .unwrap_or_default())
}

/// The metadata options of every instance that has some stored, by instance id.
pub fn all_metadata_options(
    conn: &Connection,
) -> rusqlite::Result<HashMap<String, MetadataOptionsRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT http_tokens, http_endpoint, hop_limit, instance_id FROM metadata_options",
    )?;
    stmt.query_map([], |r| Ok((r.get::<_, String>(3)?, options_row(r)?)))?
        .collect()
}

fn options_row(r: &Row<'_>) -> rusqlite::Result<MetadataOptionsRow> {
    Ok(MetadataOptionsRow {
        http_tokens: r.get(0)?,
        http_endpoint: r.get(1)?,
        hop_limit: r.get(2)?,
    })
}

/// Stores an instance's metadata options.
pub fn set_metadata_options(
    conn: &Connection,
    instance_id: &str,
    o: &MetadataOptionsRow,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO metadata_options (instance_id, http_tokens, http_endpoint, hop_limit) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT(instance_id) DO UPDATE SET \
         http_tokens = excluded.http_tokens, http_endpoint = excluded.http_endpoint, \
         hop_limit = excluded.hop_limit",
        params![instance_id, o.http_tokens, o.http_endpoint, o.hop_limit],
    )?;
    Ok(())
}
