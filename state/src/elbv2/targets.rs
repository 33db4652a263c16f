//! Target groups and their registered targets.

use rusqlite::{Connection, OptionalExtension, Row, params};

/// A target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroupRow {
    /// Creation order.
    pub seq: i64,
    /// `arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID`.
    pub arn: String,
    /// The name, unique.
    pub name: String,
    /// `HTTP`, `HTTPS` or `TCP`.
    pub protocol: String,
    /// The targets' default port.
    pub port: i32,
    /// Its VPC.
    pub vpc_id: String,
    /// `instance` or `ip`.
    pub target_type: String,
    /// Its health check (JSON).
    pub health_check: String,
    /// Its attributes (a JSON object of strings).
    pub attributes: String,
    /// Milliseconds since the epoch.
    pub created_ms: i64,
}

/// A registered target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRow {
    /// Its target group.
    pub tg_arn: String,
    /// An instance id or an IPv4 address.
    pub target_id: String,
    /// The port traffic goes to.
    pub port: i32,
    /// When it was registered (milliseconds since the epoch).
    pub registered_ms: i64,
    /// When it is deregistered for good, while it drains.
    pub drain_until_ms: Option<i64>,
}

const TG_COLUMNS: &str =
    "seq, arn, name, protocol, port, vpc_id, target_type, health_check, attributes, created_ms";

fn tg(r: &Row<'_>) -> rusqlite::Result<TargetGroupRow> {
    Ok(TargetGroupRow {
        seq: r.get(0)?,
        arn: r.get(1)?,
        name: r.get(2)?,
        protocol: r.get(3)?,
        port: r.get(4)?,
        vpc_id: r.get(5)?,
        target_type: r.get(6)?,
        health_check: r.get(7)?,
        attributes: r.get(8)?,
        created_ms: r.get(9)?,
    })
}

/// Inserts a target group.
pub fn insert_tg(conn: &Connection, t: &TargetGroupRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO elb_target_groups (arn, name, protocol, port, vpc_id, target_type, \
         health_check, attributes, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            t.arn,
            t.name,
            t.protocol,
            t.port,
            t.vpc_id,
            t.target_type,
            t.health_check,
            t.attributes,
            t.created_ms
        ],
    )?;
    Ok(())
}

/// Every target group, oldest first.
pub fn tgs(conn: &Connection) -> rusqlite::Result<Vec<TargetGroupRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TG_COLUMNS} FROM elb_target_groups ORDER BY seq"
    ))?;
    stmt.query_map([], tg)?.collect()
}

/// The target group `arn`.
pub fn tg_by_arn(conn: &Connection, arn: &str) -> rusqlite::Result<Option<TargetGroupRow>> {
    conn.query_row(
        &format!("SELECT {TG_COLUMNS} FROM elb_target_groups WHERE arn = ?1"),
        [arn],
        tg,
    )
    .optional()
}

/// The target group named `name`.
pub fn tg_by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<TargetGroupRow>> {
    conn.query_row(
        &format!("SELECT {TG_COLUMNS} FROM elb_target_groups WHERE name = ?1"),
        [name],
        tg,
    )
    .optional()
}

/// Sets a target group's health check and attributes.
pub fn update_tg(
    conn: &Connection,
    arn: &str,
    health_check: &str,
    attributes: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE elb_target_groups SET health_check = ?2, attributes = ?3 WHERE arn = ?1",
        params![arn, health_check, attributes],
    )?;
    Ok(())
}

/// Deletes a target group with its targets and tags.
pub fn delete_tg(conn: &Connection, arn: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM elb_targets WHERE tg_arn = ?1", [arn])?;
    conn.execute("DELETE FROM elb_tags WHERE arn = ?1", [arn])?;
    conn.execute("DELETE FROM elb_target_groups WHERE arn = ?1", [arn])?;
    Ok(())
}

const TARGET_COLUMNS: &str = "tg_arn, target_id, port, registered_ms, drain_until_ms";

fn target(r: &Row<'_>) -> rusqlite::Result<TargetRow> {
    Ok(TargetRow {
        tg_arn: r.get(0)?,
        target_id: r.get(1)?,
        port: r.get(2)?,
        registered_ms: r.get(3)?,
        drain_until_ms: r.get(4)?,
    })
}

/// Registers a target (again: a draining one is registered anew).
pub fn register(conn: &Connection, t: &TargetRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO elb_targets (tg_arn, target_id, port, registered_ms, drain_until_ms) \
         VALUES (?1, ?2, ?3, ?4, NULL) ON CONFLICT (tg_arn, target_id, port) DO UPDATE SET \
         registered_ms = CASE WHEN drain_until_ms IS NULL THEN registered_ms ELSE ?4 END, \
         drain_until_ms = NULL",
        params![t.tg_arn, t.target_id, t.port, t.registered_ms],
    )?;
    Ok(())
}

/// Starts draining a registered target until `until_ms`; whether it was registered (and not
/// already draining).
pub fn start_draining(
    conn: &Connection,
    tg_arn: &str,
    target_id: &str,
    port: i32,
    until_ms: i64,
) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "UPDATE elb_targets SET drain_until_ms = ?4 WHERE tg_arn = ?1 AND target_id = ?2 \
         AND port = ?3 AND drain_until_ms IS NULL",
        params![tg_arn, target_id, port, until_ms],
    )?;
    Ok(n > 0)
}

/// Removes targets whose draining ended by `now_ms`; gives their target groups.
pub fn end_draining(conn: &Connection, now_ms: i64) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT tg_arn FROM elb_targets WHERE drain_until_ms IS NOT NULL \
         AND drain_until_ms <= ?1 ORDER BY tg_arn",
    )?;
    let tgs = stmt
        .query_map([now_ms], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    conn.execute(
        "DELETE FROM elb_targets WHERE drain_until_ms IS NOT NULL AND drain_until_ms <= ?1",
        [now_ms],
    )?;
    Ok(tgs)
}

/// A target group's targets, by id and port.
pub fn targets_of(conn: &Connection, tg_arn: &str) -> rusqlite::Result<Vec<TargetRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TARGET_COLUMNS} FROM elb_targets WHERE tg_arn = ?1 ORDER BY target_id, port"
    ))?;
    stmt.query_map([tg_arn], target)?.collect()
}

/// How many target groups `target_id` is registered in.
pub fn registrations_of(conn: &Connection, target_id: &str) -> rusqlite::Result<usize> {
    conn.query_row(
        "SELECT COUNT(*) FROM elb_targets WHERE target_id = ?1",
        [target_id],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as usize)
}
