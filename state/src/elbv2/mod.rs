//! Elastic Load Balancing v2's tables: load balancers with their interfaces and groups,
//! listeners, rules, which target groups they forward to, and tags (this file); target groups
//! and their targets (`targets.rs`). Health checks, attributes, conditions and actions are
//! JSON texts whose meaning is the control plane's.

pub mod targets;

use rusqlite::{Connection, OptionalExtension, Row, params};

pub use targets::{TargetGroupRow, TargetRow};

/// A load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerRow {
    /// Creation order.
    pub seq: i64,
    /// `arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/app/NAME/ID`.
    pub arn: String,
    /// The name, unique.
    pub name: String,
    /// `application` or `network`.
    pub kind: String,
    /// `internet-facing` or `internal`.
    pub scheme: String,
    /// Its VPC.
    pub vpc_id: String,
    /// The address its listeners bind (from the public pool).
    pub public_ip: Option<String>,
    /// `NAME-ID.local-1.elb.localhost`.
    pub dns_name: String,
    /// `provisioning`, `active` or `failed`.
    pub state: String,
    /// Its attributes (a JSON object of strings).
    pub attributes: String,
    /// Milliseconds since the epoch.
    pub created_ms: i64,
}

/// A listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerRow {
    /// Creation order.
    pub seq: i64,
    /// Its ARN.
    pub arn: String,
    /// Its load balancer.
    pub lb_arn: String,
    /// `HTTP`, `HTTPS` or `TCP`.
    pub protocol: String,
    /// Its port.
    pub port: i32,
    /// Its certificates (JSON).
    pub certificates: String,
    /// Its default actions (JSON).
    pub default_actions: String,
}

/// A listener rule (the default rule is the listener's default actions, not a row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRow {
    /// Creation order.
    pub seq: i64,
    /// Its ARN.
    pub arn: String,
    /// Its listener.
    pub listener_arn: String,
    /// 1 to 50000, unique per listener.
    pub priority: i32,
    /// Its conditions (JSON).
    pub conditions: String,
    /// Its actions (JSON).
    pub actions: String,
}

const LB_COLUMNS: &str = "seq, arn, name, kind, scheme, vpc_id, public_ip, dns_name, state, \
                          attributes, created_ms";

fn lb(r: &Row<'_>) -> rusqlite::Result<LoadBalancerRow> {
    Ok(LoadBalancerRow {
        seq: r.get(0)?,
        arn: r.get(1)?,
        name: r.get(2)?,
        kind: r.get(3)?,
        scheme: r.get(4)?,
        vpc_id: r.get(5)?,
        public_ip: r.get(6)?,
        dns_name: r.get(7)?,
        state: r.get(8)?,
        attributes: r.get(9)?,
        created_ms: r.get(10)?,
    })
}

/// Inserts a load balancer.
pub fn insert_lb(conn: &Connection, l: &LoadBalancerRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO elb_load_balancers (arn, name, kind, scheme, vpc_id, public_ip, dns_name, \
         state, attributes, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            l.arn,
            l.name,
            l.kind,
            l.scheme,
            l.vpc_id,
            l.public_ip,
            l.dns_name,
            l.state,
            l.attributes,
            l.created_ms
        ],
    )?;
    Ok(())
}

/// Every load balancer, oldest first.
pub fn lbs(conn: &Connection) -> rusqlite::Result<Vec<LoadBalancerRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {LB_COLUMNS} FROM elb_load_balancers ORDER BY seq"
    ))?;
    stmt.query_map([], lb)?.collect()
}

/// The load balancer `arn`.
pub fn lb_by_arn(conn: &Connection, arn: &str) -> rusqlite::Result<Option<LoadBalancerRow>> {
    conn.query_row(
        &format!("SELECT {LB_COLUMNS} FROM elb_load_balancers WHERE arn = ?1"),
        [arn],
        lb,
    )
    .optional()
}

/// The load balancer named `name`.
pub fn lb_by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<LoadBalancerRow>> {
    conn.query_row(
        &format!("SELECT {LB_COLUMNS} FROM elb_load_balancers WHERE name = ?1"),
        [name],
        lb,
    )
    .optional()
}

/// Sets a load balancer's state.
pub fn set_lb_state(conn: &Connection, arn: &str, state: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE elb_load_balancers SET state = ?2 WHERE arn = ?1",
        params![arn, state],
    )?;
    Ok(())
}

/// Sets a load balancer's attributes.
pub fn set_lb_attributes(conn: &Connection, arn: &str, attributes: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE elb_load_balancers SET attributes = ?2 WHERE arn = ?1",
        params![arn, attributes],
    )?;
    Ok(())
}

/// Deletes a load balancer's row, interfaces' rows, groups, listeners, rules, forwards and
/// tags (not the ENIs: the caller deletes those).
pub fn delete_lb(conn: &Connection, arn: &str) -> rusqlite::Result<()> {
    for listener in listeners_of(conn, arn)? {
        delete_listener(conn, &listener.arn)?;
    }
    conn.execute("DELETE FROM elb_interfaces WHERE lb_arn = ?1", [arn])?;
    conn.execute("DELETE FROM elb_lb_groups WHERE lb_arn = ?1", [arn])?;
    conn.execute("DELETE FROM elb_forwards WHERE lb_arn = ?1", [arn])?;
    conn.execute("DELETE FROM elb_tags WHERE arn = ?1", [arn])?;
    conn.execute("DELETE FROM elb_load_balancers WHERE arn = ?1", [arn])?;
    Ok(())
}

/// Records a load balancer's interface in a subnet.
pub fn insert_interface(
    conn: &Connection,
    lb_arn: &str,
    subnet_id: &str,
    eni_id: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO elb_interfaces (lb_arn, subnet_id, eni_id) VALUES (?1, ?2, ?3)",
        params![lb_arn, subnet_id, eni_id],
    )?;
    Ok(())
}

/// A load balancer's interfaces as `(subnet, ENI)`, in subnet order.
pub fn interfaces_of(conn: &Connection, lb_arn: &str) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT subnet_id, eni_id FROM elb_interfaces WHERE lb_arn = ?1 ORDER BY subnet_id",
    )?;
    stmt.query_map([lb_arn], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Every load balancer interface's ENI id.
pub fn interface_enis(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT eni_id FROM elb_interfaces")?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

/// The addresses the host side holds for load balancers: each interface's private address
/// with its VPC, and each load balancer's public address.
pub fn host_addresses(conn: &Connection) -> rusqlite::Result<HostAddresses> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.vpc_id, e.private_ip FROM elb_interfaces i JOIN network_interfaces e ON e.id = i.eni_id",
    )?;
    let private = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<(String, String)>>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT public_ip FROM elb_load_balancers WHERE public_ip IS NOT NULL ORDER BY seq",
    )?;
    let public = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(HostAddresses { private, public })
}

/// What [`host_addresses`] gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostAddresses {
    /// `(VPC, private address)` of each interface.
    pub private: Vec<(String, String)>,
    /// Each load balancer's public address.
    pub public: Vec<String>,
}

/// Sets a load balancer's security groups.
pub fn set_lb_groups(conn: &Connection, lb_arn: &str, groups: &[String]) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM elb_lb_groups WHERE lb_arn = ?1", [lb_arn])?;
    for g in groups {
        conn.execute(
            "INSERT OR IGNORE INTO elb_lb_groups (lb_arn, group_id) VALUES (?1, ?2)",
            params![lb_arn, g],
        )?;
    }
    Ok(())
}

/// A load balancer's security groups.
pub fn lb_groups(conn: &Connection, lb_arn: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("SELECT group_id FROM elb_lb_groups WHERE lb_arn = ?1 ORDER BY group_id")?;
    stmt.query_map([lb_arn], |r| r.get(0))?.collect()
}

const LISTENER_COLUMNS: &str = "seq, arn, lb_arn, protocol, port, certificates, default_actions";

fn listener(r: &Row<'_>) -> rusqlite::Result<ListenerRow> {
    Ok(ListenerRow {
        seq: r.get(0)?,
        arn: r.get(1)?,
        lb_arn: r.get(2)?,
        protocol: r.get(3)?,
        port: r.get(4)?,
        certificates: r.get(5)?,
        default_actions: r.get(6)?,
    })
}

/// Inserts or replaces a listener (by ARN).
pub fn put_listener(conn: &Connection, l: &ListenerRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO elb_listeners (arn, lb_arn, protocol, port, certificates, default_actions) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (arn) DO UPDATE SET protocol = ?3, \
         port = ?4, certificates = ?5, default_actions = ?6",
        params![
            l.arn,
            l.lb_arn,
            l.protocol,
            l.port,
            l.certificates,
            l.default_actions
        ],
    )?;
    Ok(())
}

/// The listener `arn`.
pub fn listener_by_arn(conn: &Connection, arn: &str) -> rusqlite::Result<Option<ListenerRow>> {
    conn.query_row(
        &format!("SELECT {LISTENER_COLUMNS} FROM elb_listeners WHERE arn = ?1"),
        [arn],
        listener,
    )
    .optional()
}

/// A load balancer's listeners, oldest first.
pub fn listeners_of(conn: &Connection, lb_arn: &str) -> rusqlite::Result<Vec<ListenerRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {LISTENER_COLUMNS} FROM elb_listeners WHERE lb_arn = ?1 ORDER BY seq"
    ))?;
    stmt.query_map([lb_arn], listener)?.collect()
}

/// Deletes a listener with its rules, their forwards and tags.
pub fn delete_listener(conn: &Connection, arn: &str) -> rusqlite::Result<()> {
    for rule in rules_of(conn, arn)? {
        delete_rule(conn, &rule.arn)?;
    }
    conn.execute("DELETE FROM elb_forwards WHERE owner_arn = ?1", [arn])?;
    conn.execute("DELETE FROM elb_tags WHERE arn = ?1", [arn])?;
    conn.execute("DELETE FROM elb_listeners WHERE arn = ?1", [arn])?;
    Ok(())
}

const RULE_COLUMNS: &str = "seq, arn, listener_arn, priority, conditions, actions";

fn rule(r: &Row<'_>) -> rusqlite::Result<RuleRow> {
    Ok(RuleRow {
        seq: r.get(0)?,
        arn: r.get(1)?,
        listener_arn: r.get(2)?,
        priority: r.get(3)?,
        conditions: r.get(4)?,
        actions: r.get(5)?,
    })
}

/// Inserts or replaces a rule (by ARN).
pub fn put_rule(conn: &Connection, r: &RuleRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO elb_rules (arn, listener_arn, priority, conditions, actions) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (arn) DO UPDATE SET priority = ?3, \
         conditions = ?4, actions = ?5",
        params![r.arn, r.listener_arn, r.priority, r.conditions, r.actions],
    )?;
    Ok(())
}

/// The rule `arn`.
pub fn rule_by_arn(conn: &Connection, arn: &str) -> rusqlite::Result<Option<RuleRow>> {
    conn.query_row(
        &format!("SELECT {RULE_COLUMNS} FROM elb_rules WHERE arn = ?1"),
        [arn],
        rule,
    )
    .optional()
}

/// A listener's rules by priority.
pub fn rules_of(conn: &Connection, listener_arn: &str) -> rusqlite::Result<Vec<RuleRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RULE_COLUMNS} FROM elb_rules WHERE listener_arn = ?1 ORDER BY priority"
    ))?;
    stmt.query_map([listener_arn], rule)?.collect()
}

/// Deletes a rule with its forwards and tags.
pub fn delete_rule(conn: &Connection, arn: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM elb_forwards WHERE owner_arn = ?1", [arn])?;
    conn.execute("DELETE FROM elb_tags WHERE arn = ?1", [arn])?;
    conn.execute("DELETE FROM elb_rules WHERE arn = ?1", [arn])?;
    Ok(())
}

/// Records that listener or rule `owner` of load balancer `lb` forwards to exactly `tgs`.
pub fn set_forwards(
    conn: &Connection,
    owner: &str,
    lb: &str,
    tgs: &[String],
) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM elb_forwards WHERE owner_arn = ?1", [owner])?;
    for tg in tgs {
        conn.execute(
            "INSERT OR IGNORE INTO elb_forwards (owner_arn, lb_arn, tg_arn) VALUES (?1, ?2, ?3)",
            params![owner, lb, tg],
        )?;
    }
    Ok(())
}

/// The load balancers that forward to target group `tg`.
pub fn lbs_of_tg(conn: &Connection, tg: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT lb_arn FROM elb_forwards WHERE tg_arn = ?1 ORDER BY lb_arn",
    )?;
    stmt.query_map([tg], |r| r.get(0))?.collect()
}

/// The target groups load balancer `lb` forwards to.
pub fn tgs_of_lb(conn: &Connection, lb: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT tg_arn FROM elb_forwards WHERE lb_arn = ?1 ORDER BY tg_arn",
    )?;
    stmt.query_map([lb], |r| r.get(0))?.collect()
}

/// Sets tags on `arn` (replacing values of keys it has).
pub fn put_tags(conn: &Connection, arn: &str, tags: &[(String, String)]) -> rusqlite::Result<()> {
    for (k, v) in tags {
        conn.execute(
            "INSERT INTO elb_tags (arn, key, value) VALUES (?1, ?2, ?3) \
             ON CONFLICT (arn, key) DO UPDATE SET value = ?3",
            params![arn, k, v],
        )?;
    }
    Ok(())
}

/// Removes tags from `arn`.
pub fn remove_tags(conn: &Connection, arn: &str, keys: &[String]) -> rusqlite::Result<()> {
    for k in keys {
        conn.execute(
            "DELETE FROM elb_tags WHERE arn = ?1 AND key = ?2",
            params![arn, k],
        )?;
    }
    Ok(())
}

/// The tags of `arn`, by key.
pub fn tags_of(conn: &Connection, arn: &str) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt =
        conn.prepare_cached("SELECT key, value FROM elb_tags WHERE arn = ?1 ORDER BY key")?;
    stmt.query_map([arn], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

#[cfg(test)]
mod tests;
