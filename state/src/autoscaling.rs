//! Auto Scaling's tables: groups, the instances in them, scaling activities, scaling
//! policies and scheduled actions. A group's, a policy's and a scheduled action's settings
//! are kept as one JSON text that `control::autoscaling` reads and writes; the columns are
//! what queries select on.

use rusqlite::{Connection, OptionalExtension, Row, params};

/// A group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    /// Creation order, which pages follow.
    pub seq: i64,
    /// The name, unique.
    pub name: String,
    /// `arn:aws:autoscaling:REGION:ACCOUNT:autoScalingGroup:UUID:autoScalingGroupName/NAME`.
    pub arn: String,
    /// Its settings (JSON).
    pub config: String,
    /// Milliseconds since the epoch.
    pub created_ms: i64,
}

const GROUP_COLUMNS: &str = "seq, name, arn, config, created_ms";

fn group(r: &Row<'_>) -> rusqlite::Result<GroupRow> {
    Ok(GroupRow {
        seq: r.get(0)?,
        name: r.get(1)?,
        arn: r.get(2)?,
        config: r.get(3)?,
        created_ms: r.get(4)?,
    })
}

/// Inserts a group.
pub fn insert_group(conn: &Connection, g: &GroupRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO asg_groups (name, arn, config, created_ms) VALUES (?1, ?2, ?3, ?4)",
        params![g.name, g.arn, g.config, g.created_ms],
    )?;
    Ok(())
}

/// Replaces a group's settings.
pub fn set_group_config(conn: &Connection, name: &str, config: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE asg_groups SET config = ?2 WHERE name = ?1",
        params![name, config],
    )?;
    Ok(())
}

/// The group named `name`.
pub fn group_by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<GroupRow>> {
    conn.query_row(
        &format!("SELECT {GROUP_COLUMNS} FROM asg_groups WHERE name = ?1"),
        [name],
        group,
    )
    .optional()
}

/// Every group, in creation order.
pub fn groups(conn: &Connection) -> rusqlite::Result<Vec<GroupRow>> {
    let mut st = conn.prepare(&format!(
        "SELECT {GROUP_COLUMNS} FROM asg_groups ORDER BY seq"
    ))?;
    st.query_map([], group)?.collect()
}

/// How many groups there are.
pub fn group_count(conn: &Connection) -> rusqlite::Result<usize> {
    conn.query_row("SELECT COUNT(*) FROM asg_groups", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as usize)
}

/// Deletes a group with its policies and scheduled actions (its activities stay, as on
/// AWS for a while; its instances must be gone).
pub fn delete_group(conn: &Connection, name: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM asg_groups WHERE name = ?1", [name])?;
    conn.execute("DELETE FROM asg_policies WHERE group_name = ?1", [name])?;
    conn.execute("DELETE FROM asg_scheduled WHERE group_name = ?1", [name])?;
    conn.execute("DELETE FROM asg_instances WHERE group_name = ?1", [name])?;
    Ok(())
}

/// An instance in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// The instance.
    pub instance_id: String,
    /// Its group.
    pub group_name: String,
    /// Auto Scaling's lifecycle state (`Pending`, `InService`, `Terminating`, ...).
    pub lifecycle: String,
    /// `Healthy` or `Unhealthy`.
    pub health: String,
    /// Protected from scale in.
    pub protected: bool,
    /// Its subnet.
    pub subnet_id: String,
    /// Its instance type.
    pub instance_type: String,
    /// The launch template it came from (JSON), or `{}` for an attached instance.
    pub template: String,
    /// When it was launched or attached, in milliseconds since the epoch.
    pub launched_ms: i64,
}

const MEMBER_COLUMNS: &str = "instance_id, group_name, lifecycle, health, protected, subnet_id, \
     instance_type, template, launched_ms";

fn member(r: &Row<'_>) -> rusqlite::Result<MemberRow> {
    Ok(MemberRow {
        instance_id: r.get(0)?,
        group_name: r.get(1)?,
        lifecycle: r.get(2)?,
        health: r.get(3)?,
        protected: r.get(4)?,
        subnet_id: r.get(5)?,
        instance_type: r.get(6)?,
        template: r.get(7)?,
        launched_ms: r.get(8)?,
    })
}

/// Inserts (or replaces) a member.
pub fn put_member(conn: &Connection, m: &MemberRow) -> rusqlite::Result<()> {
    conn.execute(
        &format!("INSERT OR REPLACE INTO asg_instances ({MEMBER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
        params![
            m.instance_id,
            m.group_name,
            m.lifecycle,
            m.health,
            m.protected,
            m.subnet_id,
            m.instance_type,
            m.template,
            m.launched_ms
        ],
    )?;
    Ok(())
}

/// The member `instance_id`.
pub fn member_by_id(conn: &Connection, instance_id: &str) -> rusqlite::Result<Option<MemberRow>> {
    conn.query_row(
        &format!("SELECT {MEMBER_COLUMNS} FROM asg_instances WHERE instance_id = ?1"),
        [instance_id],
        member,
    )
    .optional()
}

/// The members of group `name`, oldest first.
pub fn members_of(conn: &Connection, name: &str) -> rusqlite::Result<Vec<MemberRow>> {
    let mut st = conn.prepare(&format!(
        "SELECT {MEMBER_COLUMNS} FROM asg_instances WHERE group_name = ?1 ORDER BY launched_ms, instance_id"
    ))?;
    st.query_map([name], member)?.collect()
}

/// Every member, by instance id.
pub fn members(conn: &Connection) -> rusqlite::Result<Vec<MemberRow>> {
    let mut st = conn.prepare(&format!(
        "SELECT {MEMBER_COLUMNS} FROM asg_instances ORDER BY instance_id"
    ))?;
    st.query_map([], member)?.collect()
}

/// Removes a member.
pub fn delete_member(conn: &Connection, instance_id: &str) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM asg_instances WHERE instance_id = ?1",
        [instance_id],
    )?;
    Ok(())
}

/// A scaling activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityRow {
    /// Creation order.
    pub seq: i64,
    /// Its id (a UUID).
    pub id: String,
    /// Its group.
    pub group_name: String,
    /// What it does: `launch`, `terminate`, `detach`, `attach`, `update`.
    pub kind: String,
    /// The instance it acts on, once known.
    pub instance_id: Option<String>,
    /// The subnet a launch goes to.
    pub subnet_id: Option<String>,
    /// `Launching a new EC2 instance: i-...`.
    pub description: String,
    /// Why, in Auto Scaling's words.
    pub cause: String,
    /// `InProgress`, `WaitingForELBConnectionDraining`, `Successful`, `Failed`, ...
    pub status: String,
    /// Why it failed.
    pub status_message: Option<String>,
    /// 0 to 100.
    pub progress: i64,
    /// Its details (JSON object text).
    pub details: String,
    /// Milliseconds since the epoch.
    pub start_ms: i64,
    /// When it ended (`None` while in progress).
    pub end_ms: Option<i64>,
}

const ACTIVITY_COLUMNS: &str = "seq, id, group_name, kind, instance_id, subnet_id, description, \
     cause, status, status_message, progress, details, start_ms, end_ms";

fn activity(r: &Row<'_>) -> rusqlite::Result<ActivityRow> {
    Ok(ActivityRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        group_name: r.get(2)?,
        kind: r.get(3)?,
        instance_id: r.get(4)?,
        subnet_id: r.get(5)?,
        description: r.get(6)?,
        cause: r.get(7)?,
        status: r.get(8)?,
        status_message: r.get(9)?,
        progress: r.get(10)?,
        details: r.get(11)?,
        start_ms: r.get(12)?,
        end_ms: r.get(13)?,
    })
}

/// Inserts an activity (its `seq` is assigned).
pub fn insert_activity(conn: &Connection, a: &ActivityRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO asg_activities (id, group_name, kind, instance_id, subnet_id, description, \
         cause, status, status_message, progress, details, start_ms, end_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            a.id,
            a.group_name,
            a.kind,
            a.instance_id,
            a.subnet_id,
            a.description,
            a.cause,
            a.status,
            a.status_message,
            a.progress,
            a.details,
            a.start_ms,
            a.end_ms
        ],
    )?;
    Ok(())
}

/// Writes back an activity's changing parts (instance, description, status, progress, end).
pub fn update_activity(conn: &Connection, a: &ActivityRow) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE asg_activities SET instance_id = ?2, description = ?3, status = ?4, \
         status_message = ?5, progress = ?6, details = ?7, end_ms = ?8 WHERE id = ?1",
        params![
            a.id,
            a.instance_id,
            a.description,
            a.status,
            a.status_message,
            a.progress,
            a.details,
            a.end_ms
        ],
    )?;
    Ok(())
}

/// The activity `id`.
pub fn activity_by_id(conn: &Connection, id: &str) -> rusqlite::Result<Option<ActivityRow>> {
    conn.query_row(
        &format!("SELECT {ACTIVITY_COLUMNS} FROM asg_activities WHERE id = ?1"),
        [id],
        activity,
    )
    .optional()
}

/// The activities still in progress, oldest first.
pub fn open_activities(conn: &Connection) -> rusqlite::Result<Vec<ActivityRow>> {
    let mut st = conn.prepare(&format!(
        "SELECT {ACTIVITY_COLUMNS} FROM asg_activities WHERE end_ms IS NULL ORDER BY seq"
    ))?;
    st.query_map([], activity)?.collect()
}

/// Activities newest first, of one group or all, starting below `before_seq`, at most `limit`.
pub fn activities(
    conn: &Connection,
    group: Option<&str>,
    before_seq: i64,
    limit: usize,
) -> rusqlite::Result<Vec<ActivityRow>> {
    let mut st = conn.prepare(&format!(
        "SELECT {ACTIVITY_COLUMNS} FROM asg_activities WHERE (?1 IS NULL OR group_name = ?1) \
         AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
    ))?;
    st.query_map(params![group, before_seq, limit as i64], activity)?
        .collect()
}

/// A policy or a scheduled action: its settings under a name in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedRow {
    /// Creation order.
    pub seq: i64,
    /// Its ARN.
    pub arn: String,
    /// Its group.
    pub group_name: String,
    /// Its name, unique in the group.
    pub name: String,
    /// Its settings (JSON).
    pub config: String,
    /// When a scheduled action is next due, in milliseconds since the epoch.
    pub next_ms: Option<i64>,
}

fn named(r: &Row<'_>) -> rusqlite::Result<NamedRow> {
    Ok(NamedRow {
        seq: r.get(0)?,
        arn: r.get(1)?,
        group_name: r.get(2)?,
        name: r.get(3)?,
        config: r.get(4)?,
        next_ms: r.get(5)?,
    })
}

/// Which table of named settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    /// Scaling policies.
    Policy,
    /// Scheduled actions.
    Scheduled,
}

impl Named {
    fn table(self) -> &'static str {
        match self {
            Self::Policy => "asg_policies",
            Self::Scheduled => "asg_scheduled",
        }
    }

    fn select(self) -> String {
        let next = match self {
            Self::Policy => "NULL",
            Self::Scheduled => "next_ms",
        };
        format!(
            "SELECT seq, arn, group_name, name, config, {next} FROM {}",
            self.table()
        )
    }
}

/// Inserts or replaces (keeping the ARN and order) the row of `group_name`/`name`.
pub fn put_named(conn: &Connection, which: Named, r: &NamedRow) -> rusqlite::Result<()> {
    let t = which.table();
    let updated = match which {
        Named::Policy => conn.execute(
            &format!("UPDATE {t} SET config = ?3 WHERE group_name = ?1 AND name = ?2"),
            params![r.group_name, r.name, r.config],
        )?,
        Named::Scheduled => conn.execute(
            &format!(
                "UPDATE {t} SET config = ?3, next_ms = ?4 WHERE group_name = ?1 AND name = ?2"
            ),
            params![r.group_name, r.name, r.config, r.next_ms],
        )?,
    };
    if updated == 0 {
        match which {
            Named::Policy => conn.execute(
                &format!("INSERT INTO {t} (arn, group_name, name, config) VALUES (?1, ?2, ?3, ?4)"),
                params![r.arn, r.group_name, r.name, r.config],
            )?,
            Named::Scheduled => conn.execute(
                &format!(
                    "INSERT INTO {t} (arn, group_name, name, config, next_ms) VALUES (?1, ?2, ?3, ?4, ?5)"
                ),
                params![r.arn, r.group_name, r.name, r.config, r.next_ms],
            )?,
        };
    }
    Ok(())
}

/// The row of `group_name`/`name`.
pub fn named_by_name(
    conn: &Connection,
    which: Named,
    group_name: &str,
    name: &str,
) -> rusqlite::Result<Option<NamedRow>> {
    conn.query_row(
        &format!("{} WHERE group_name = ?1 AND name = ?2", which.select()),
        [group_name, name],
        named,
    )
    .optional()
}

/// The row with ARN `arn`.
pub fn named_by_arn(
    conn: &Connection,
    which: Named,
    arn: &str,
) -> rusqlite::Result<Option<NamedRow>> {
    conn.query_row(&format!("{} WHERE arn = ?1", which.select()), [arn], named)
        .optional()
}

/// The rows of one group, or of all, in creation order.
pub fn named_rows(
    conn: &Connection,
    which: Named,
    group_name: Option<&str>,
) -> rusqlite::Result<Vec<NamedRow>> {
    let mut st = conn.prepare(&format!(
        "{} WHERE (?1 IS NULL OR group_name = ?1) ORDER BY seq",
        which.select()
    ))?;
    st.query_map([group_name], named)?.collect()
}

/// Deletes the row of `group_name`/`name`; whether there was one.
pub fn delete_named(
    conn: &Connection,
    which: Named,
    group_name: &str,
    name: &str,
) -> rusqlite::Result<bool> {
    let n = conn.execute(
        &format!(
            "DELETE FROM {} WHERE group_name = ?1 AND name = ?2",
            which.table()
        ),
        [group_name, name],
    )?;
    Ok(n > 0)
}

/// Scheduled actions due at `now_ms`.
pub fn due_scheduled(conn: &Connection, now_ms: i64) -> rusqlite::Result<Vec<NamedRow>> {
    let mut st = conn.prepare(&format!(
        "{} WHERE next_ms IS NOT NULL AND next_ms <= ?1 ORDER BY next_ms",
        Named::Scheduled.select()
    ))?;
    st.query_map([now_ms], named)?.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::migrations::migrate(&mut c).unwrap();
        c
    }

    #[test]
    fn a_group_with_its_members_policies_and_activities() {
        let c = db();
        insert_group(
            &c,
            &GroupRow {
                seq: 0,
                name: "web".into(),
                arn: "arn:x".into(),
                config: "{}".into(),
                created_ms: 1,
            },
        )
        .unwrap();
        assert_eq!(group_by_name(&c, "web").unwrap().unwrap().arn, "arn:x");
        let m = MemberRow {
            instance_id: "i-1".into(),
            group_name: "web".into(),
            lifecycle: "Pending".into(),
            health: "Healthy".into(),
            protected: false,
            subnet_id: "subnet-1".into(),
            instance_type: "t2.micro".into(),
            template: "{}".into(),
            launched_ms: 5,
        };
        put_member(&c, &m).unwrap();
        assert_eq!(members_of(&c, "web").unwrap(), vec![m]);
        let p = NamedRow {
            seq: 0,
            arn: "arn:p".into(),
            group_name: "web".into(),
            name: "p".into(),
            config: "{}".into(),
            next_ms: None,
        };
        put_named(&c, Named::Policy, &p).unwrap();
        put_named(
            &c,
            Named::Policy,
            &NamedRow {
                config: "{\"a\":1}".into(),
                ..p.clone()
            },
        )
        .unwrap();
        let got = named_rows(&c, Named::Policy, Some("web")).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].config, "{\"a\":1}");
        let mut a = ActivityRow {
            seq: 0,
            id: "a-1".into(),
            group_name: "web".into(),
            kind: "launch".into(),
            instance_id: None,
            subnet_id: Some("subnet-1".into()),
            description: "Launching a new EC2 instance".into(),
            cause: "c".into(),
            status: "InProgress".into(),
            status_message: None,
            progress: 0,
            details: "{}".into(),
            start_ms: 1,
            end_ms: None,
        };
        insert_activity(&c, &a).unwrap();
        assert_eq!(open_activities(&c).unwrap().len(), 1);
        a.end_ms = Some(2);
        a.status = "Successful".into();
        update_activity(&c, &a).unwrap();
        assert!(open_activities(&c).unwrap().is_empty());
        assert_eq!(activities(&c, Some("web"), i64::MAX, 10).unwrap().len(), 1);
        delete_group(&c, "web").unwrap();
        assert!(group_by_name(&c, "web").unwrap().is_none());
        assert!(members(&c).unwrap().is_empty());
    }
}
