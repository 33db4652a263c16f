//! The security_groups and security_group_rules tables, and group membership of ENIs.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Row, params};

/// A security group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    /// `sg-...`.
    pub id: String,
    /// Its VPC.
    pub vpc_id: String,
    /// Unique in its VPC; `default` for the VPC's default group.
    pub name: String,
    /// Free text.
    pub description: String,
}

/// One permission of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRow {
    /// `sgr-...`.
    pub id: String,
    /// The group it belongs to.
    pub group_id: String,
    /// Egress (true) or ingress.
    pub egress: bool,
    /// `tcp`, `udp`, `icmp` or `-1` (all).
    pub protocol: String,
    /// First port (TCP/UDP), or ICMP type; `None` for all.
    pub from_port: Option<i32>,
    /// Last port (TCP/UDP), or ICMP code; `None` for all.
    pub to_port: Option<i32>,
    /// The peer as a CIDR block...
    pub cidr: Option<String>,
    /// ...or as the members of a group.
    pub peer_group_id: Option<String>,
    /// Free text.
    pub description: String,
}

impl RuleRow {
    /// Whether two rules grant the same permission (ids and descriptions aside).
    pub fn same_permission(&self, other: &RuleRow) -> bool {
        self.group_id == other.group_id
            && self.egress == other.egress
            && self.protocol == other.protocol
            && self.from_port == other.from_port
            && self.to_port == other.to_port
            && self.cidr == other.cidr
            && self.peer_group_id == other.peer_group_id
    }
}

const GROUP: &str = "SELECT id, vpc_id, name, description FROM security_groups";
const RULE: &str = "SELECT id, group_id, egress, protocol, from_port, to_port, cidr, \
                    peer_group_id, description FROM security_group_rules";

fn group(r: &Row<'_>) -> rusqlite::Result<GroupRow> {
    Ok(GroupRow {
        id: r.get(0)?,
        vpc_id: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
    })
}

fn rule(r: &Row<'_>) -> rusqlite::Result<RuleRow> {
    Ok(RuleRow {
        id: r.get(0)?,
        group_id: r.get(1)?,
        egress: r.get(2)?,
        protocol: r.get(3)?,
        from_port: r.get(4)?,
        to_port: r.get(5)?,
        cidr: r.get(6)?,
        peer_group_id: r.get(7)?,
        description: r.get(8)?,
    })
}

/// Inserts a group.
pub fn insert_group(conn: &Connection, g: &GroupRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO security_groups (id, vpc_id, name, description) VALUES (?1, ?2, ?3, ?4)",
        params![g.id, g.vpc_id, g.name, g.description],
    )?;
    Ok(())
}

/// One group by id.
pub fn get_group(conn: &Connection, id: &str) -> rusqlite::Result<Option<GroupRow>> {
    conn.query_row(&format!("{GROUP} WHERE id = ?1"), [id], group)
        .optional()
}

/// One group by VPC and name.
pub fn group_by_name(
    conn: &Connection,
    vpc_id: &str,
    name: &str,
) -> rusqlite::Result<Option<GroupRow>> {
    conn.query_row(
        &format!("{GROUP} WHERE vpc_id = ?1 AND name = ?2"),
        [vpc_id, name],
        group,
    )
    .optional()
}

/// Every group, oldest first.
pub fn groups(conn: &Connection) -> rusqlite::Result<Vec<GroupRow>> {
    let mut stmt = conn.prepare(&format!("{GROUP} ORDER BY seq"))?;
    stmt.query_map([], group)?.collect()
}

/// Deletes a group and its rules.
pub fn delete_group(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM security_group_rules WHERE group_id = ?1", [id])?;
    conn.execute("DELETE FROM security_groups WHERE id = ?1", [id])?;
    Ok(())
}

/// Inserts a rule.
pub fn insert_rule(conn: &Connection, r: &RuleRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO security_group_rules (id, group_id, egress, protocol, from_port, to_port, \
         cidr, peer_group_id, description) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            r.id,
            r.group_id,
            r.egress,
            r.protocol,
            r.from_port,
            r.to_port,
            r.cidr,
            r.peer_group_id,
            r.description
        ],
    )?;
    Ok(())
}

/// Deletes a rule by id.
pub fn delete_rule(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM security_group_rules WHERE id = ?1", [id])?;
    Ok(())
}

/// Every rule, in insertion order.
pub fn rules(conn: &Connection) -> rusqlite::Result<Vec<RuleRow>> {
    let mut stmt = conn.prepare(&format!("{RULE} ORDER BY seq"))?;
    stmt.query_map([], rule)?.collect()
}

/// The rules of one group.
pub fn rules_of(conn: &Connection, group_id: &str) -> rusqlite::Result<Vec<RuleRow>> {
    let mut stmt = conn.prepare(&format!("{RULE} WHERE group_id = ?1 ORDER BY seq"))?;
    stmt.query_map([group_id], rule)?.collect()
}

/// The rules of every group of ENI `eni_id`, in insertion order (as [`rules`] gives them).
pub fn rules_of_eni(conn: &Connection, eni_id: &str) -> rusqlite::Result<Vec<RuleRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{RULE} WHERE group_id IN \
         (SELECT group_id FROM network_interface_groups WHERE eni_id = ?1) ORDER BY seq"
    ))?;
    stmt.query_map([eni_id], rule)?.collect()
}

/// Whether any rule of another group names `group_id` as its peer.
pub fn referenced_by(conn: &Connection, group_id: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT group_id FROM security_group_rules WHERE peer_group_id = ?1 AND group_id != ?1 \
         LIMIT 1",
        [group_id],
        |r| r.get(0),
    )
    .optional()
}

/// The groups of an ENI, in the order given.
pub fn groups_of_eni(conn: &Connection, eni_id: &str) -> rusqlite::Result<Vec<GroupRow>> {
    let mut stmt = conn.prepare(
        "SELECT g.id, g.vpc_id, g.name, g.description FROM network_interface_groups m \
         JOIN security_groups g ON g.id = m.group_id WHERE m.eni_id = ?1 ORDER BY m.position",
    )?;
    stmt.query_map([eni_id], group)?.collect()
}

/// The groups of every ENI, by ENI id, each in its order.
pub fn groups_by_eni(conn: &Connection) -> rusqlite::Result<HashMap<String, Vec<GroupRow>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT g.id, g.vpc_id, g.name, g.description, m.eni_id FROM network_interface_groups m \
         JOIN security_groups g ON g.id = m.group_id ORDER BY m.eni_id, m.position",
    )?;
    let mut out: HashMap<String, Vec<GroupRow>> = HashMap::new();
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(4)?, group(r)?)))? {
        let (eni, g) = row?;
        out.entry(eni).or_default().push(g);
    }
    Ok(out)
}

/// Replaces an ENI's groups.
pub fn set_eni_groups(
    conn: &Connection,
    eni_id: &str,
    group_ids: &[String],
) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM network_interface_groups WHERE eni_id = ?1",
        [eni_id],
    )?;
    for (i, g) in group_ids.iter().enumerate() {
        conn.execute(
            "INSERT INTO network_interface_groups (eni_id, group_id, position) VALUES (?1, ?2, ?3)",
            params![eni_id, g, i as i64],
        )?;
    }
    Ok(())
}

/// How many ENIs use a group.
pub fn eni_count(conn: &Connection, group_id: &str) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT COUNT(*) FROM network_interface_groups WHERE group_id = ?1",
        [group_id],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
}
