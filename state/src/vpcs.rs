//! The vpcs and subnets tables.

use rusqlite::{Connection, OptionalExtension, Row, params};

/// A VPC: one Linux bridge with a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcRow {
    /// Insertion order; names the bridge (`kec2v<seq>`).
    pub seq: i64,
    /// `vpc-...`.
    pub id: String,
    /// Its block, e.g. `172.31.0.0/16`.
    pub cidr: String,
    /// The default VPC.
    pub is_default: bool,
    /// ISO 8601 creation time.
    pub created: String,
}

/// A subnet: a range of its VPC's block in one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetRow {
    /// `subnet-...`.
    pub id: String,
    /// Its VPC.
    pub vpc_id: String,
    /// Its block.
    pub cidr: String,
    /// `local-1a`.
    pub availability_zone: String,
    /// `MapPublicIpOnLaunch`.
    pub map_public_ip: bool,
    /// The default subnet of its zone.
    pub is_default: bool,
    /// ISO 8601 creation time.
    pub created: String,
}

fn vpc(r: &Row<'_>) -> rusqlite::Result<VpcRow> {
    Ok(VpcRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        cidr: r.get(2)?,
        is_default: r.get(3)?,
        created: r.get(4)?,
    })
}

fn subnet(r: &Row<'_>) -> rusqlite::Result<SubnetRow> {
    Ok(SubnetRow {
        id: r.get(0)?,
        vpc_id: r.get(1)?,
        cidr: r.get(2)?,
        availability_zone: r.get(3)?,
        map_public_ip: r.get(4)?,
        is_default: r.get(5)?,
        created: r.get(6)?,
    })
}

const VPC: &str = "SELECT seq, id, cidr, is_default, created FROM vpcs";
const SUBNET: &str = "SELECT id, vpc_id, cidr, availability_zone, map_public_ip, is_default, \
                      created FROM subnets";

/// Inserts a VPC and returns its row (with its sequence number).
pub fn insert_vpc(
    conn: &Connection,
    id: &str,
    cidr: &str,
    is_default: bool,
) -> rusqlite::Result<VpcRow> {
    conn.execute(
        "INSERT INTO vpcs (id, cidr, is_default, created) VALUES (?1, ?2, ?3, ?4)",
        params![id, cidr, is_default, super::now_iso()],
    )?;
    Ok(get_vpc(conn, id)?.expect("just inserted"))
}

/// One VPC.
pub fn get_vpc(conn: &Connection, id: &str) -> rusqlite::Result<Option<VpcRow>> {
    conn.query_row(&format!("{VPC} WHERE id = ?1"), [id], vpc)
        .optional()
}

/// Every VPC, oldest first.
pub fn vpcs(conn: &Connection) -> rusqlite::Result<Vec<VpcRow>> {
    let mut stmt = conn.prepare(&format!("{VPC} ORDER BY seq"))?;
    stmt.query_map([], vpc)?.collect()
}

/// The default VPC, if it exists.
pub fn default_vpc(conn: &Connection) -> rusqlite::Result<Option<VpcRow>> {
    conn.query_row(&format!("{VPC} WHERE is_default = 1"), [], vpc)
        .optional()
}

/// Deletes a VPC row.
pub fn delete_vpc(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM vpcs WHERE id = ?1", [id])?;
    Ok(())
}

/// Inserts a subnet.
pub fn insert_subnet(conn: &Connection, s: &SubnetRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO subnets (id, vpc_id, cidr, availability_zone, map_public_ip, is_default, \
         created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            s.id,
            s.vpc_id,
            s.cidr,
            s.availability_zone,
            s.map_public_ip,
            s.is_default,
            s.created
        ],
    )?;
    Ok(())
}

/// One subnet.
pub fn get_subnet(conn: &Connection, id: &str) -> rusqlite::Result<Option<SubnetRow>> {
    conn.query_row(&format!("{SUBNET} WHERE id = ?1"), [id], subnet)
        .optional()
}

/// Every subnet, oldest first.
pub fn subnets(conn: &Connection) -> rusqlite::Result<Vec<SubnetRow>> {
    let mut stmt = conn.prepare(&format!("{SUBNET} ORDER BY seq"))?;
    stmt.query_map([], subnet)?.collect()
}

/// The subnets of one VPC.
pub fn subnets_of(conn: &Connection, vpc_id: &str) -> rusqlite::Result<Vec<SubnetRow>> {
    let mut stmt = conn.prepare(&format!("{SUBNET} WHERE vpc_id = ?1 ORDER BY seq"))?;
    stmt.query_map([vpc_id], subnet)?.collect()
}

/// The default subnet (of the default VPC), if any.
pub fn default_subnet(conn: &Connection) -> rusqlite::Result<Option<SubnetRow>> {
    conn.query_row(
        &format!("{SUBNET} WHERE is_default = 1 ORDER BY seq LIMIT 1"),
        [],
        subnet,
    )
    .optional()
}

/// Sets `MapPublicIpOnLaunch`.
pub fn set_map_public_ip(conn: &Connection, id: &str, on: bool) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE subnets SET map_public_ip = ?2 WHERE id = ?1",
        params![id, on],
    )?;
    Ok(())
}

/// Deletes a subnet row.
pub fn delete_subnet(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM subnets WHERE id = ?1", [id])?;
    Ok(())
}
