//! The instances table: rows, lifecycle states, and queries.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params};

/// An instance's lifecycle state, with EC2's API codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    /// Launching or starting (code 0).
    Pending,
    /// The VMM is up (code 16).
    Running,
    /// Terminating (code 32).
    ShuttingDown,
    /// Gone; visible for an hour (code 48).
    Terminated,
    /// Stopping (code 64).
    Stopping,
    /// No VMM; can be started (code 80).
    Stopped,
}

impl InstanceState {
    /// Every state, in code order.
    pub const ALL: [InstanceState; 6] = [
        Self::Pending,
        Self::Running,
        Self::ShuttingDown,
        Self::Terminated,
        Self::Stopping,
        Self::Stopped,
    ];

    /// EC2's numeric code.
    pub fn code(self) -> u32 {
        match self {
            Self::Pending => 0,
            Self::Running => 16,
            Self::ShuttingDown => 32,
            Self::Terminated => 48,
            Self::Stopping => 64,
            Self::Stopped => 80,
        }
    }

    /// EC2's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::ShuttingDown => "shutting-down",
            Self::Terminated => "terminated",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
        }
    }

    /// Parses EC2's name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether an instance in this state holds host capacity (has or will have a VMM).
    pub fn holds_capacity(self) -> bool {
        matches!(
            self,
            Self::Pending | Self::Running | Self::Stopping | Self::ShuttingDown
        )
    }
}

/// One instance as stored.
#[derive(Debug, Clone)]
pub struct InstanceRow {
    /// Insertion order, used for pagination.
    pub seq: i64,
    /// `i-...`.
    pub id: String,
    /// `r-...`, shared by the instances of one RunInstances call.
    pub reservation_id: String,
    /// Position within the reservation.
    pub launch_index: u32,
    /// `ami-...`.
    pub image_id: String,
    /// For example `t2.micro`.
    pub instance_type: String,
    /// The key pair's name, if any.
    pub key_name: Option<String>,
    /// Lifecycle state.
    pub state: InstanceState,
    /// `StateReason` code, such as `Client.UserInitiatedShutdown`.
    pub state_reason_code: Option<String>,
    /// `StateReason` message.
    pub state_reason_message: Option<String>,
    /// `StateTransitionReason`.
    pub transition_reason: String,
    /// ISO 8601 launch (or last start) time.
    pub launch_time: String,
    /// Base64 user data.
    pub user_data: Option<String>,
    /// `stop` or `terminate`.
    pub shutdown_behavior: String,
    /// The RunInstances client token.
    pub client_token: Option<String>,
    /// vCPUs of the instance type.
    pub vcpus: u32,
    /// Memory of the instance type.
    pub memory_mib: u64,
    /// Kernel path, captured from the image at launch.
    pub kernel: String,
    /// Initrd path, captured from the image at launch.
    pub initrd: Option<String>,
    /// Kernel command line.
    pub boot_args: String,
    /// `user` or `kernel`.
    pub entry: String,
    /// `x86_64`.
    pub architecture: String,
    /// The VMM's pid while it runs.
    pub pid: Option<i32>,
    /// The VMM's start time (`/proc/PID/stat` field 22), against pid reuse.
    pub pid_start: Option<u64>,
    /// A reboot is in progress: the VMM's exit restarts it.
    pub rebooting: bool,
    /// Unix time of termination.
    pub terminated_at: Option<i64>,
    /// Detailed (1-minute) monitoring is on; basic (5-minute) otherwise.
    pub detailed_monitoring: bool,
}

#[cfg(any(test, feature = "test-support"))]
impl InstanceRow {
    /// A pending 1-vCPU, 512 MiB `t2.nano` row `id` in `state`, with no vmm and no reason,
    /// for tests to adjust.
    pub fn example(id: &str, state: InstanceState) -> Self {
        InstanceRow {
            seq: 0,
            id: id.into(),
            reservation_id: "r-0".into(),
            launch_index: 0,
            image_id: "ami-0".into(),
            instance_type: "t2.nano".into(),
            key_name: None,
            state,
            state_reason_code: None,
            state_reason_message: None,
            transition_reason: String::new(),
            launch_time: String::new(),
            user_data: None,
            shutdown_behavior: "stop".into(),
            client_token: None,
            vcpus: 1,
            memory_mib: 512,
            kernel: String::new(),
            initrd: None,
            boot_args: String::new(),
            entry: "user".into(),
            architecture: "x86_64".into(),
            pid: None,
            pid_start: None,
            rebooting: false,
            terminated_at: None,
            detailed_monitoring: false,
        }
    }
}

const COLUMNS: &str = "seq, id, reservation_id, launch_index, image_id, instance_type, key_name, \
    state, state_reason_code, state_reason_message, transition_reason, launch_time, user_data, \
    shutdown_behavior, client_token, vcpus, memory_mib, kernel, initrd, boot_args, entry, \
    architecture, pid, pid_start, rebooting, terminated_at, detailed_monitoring";

fn from_row(r: &Row<'_>) -> rusqlite::Result<InstanceRow> {
    let state: String = r.get(7)?;
    Ok(InstanceRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        reservation_id: r.get(2)?,
        launch_index: r.get(3)?,
        image_id: r.get(4)?,
        instance_type: r.get(5)?,
        key_name: r.get(6)?,
        state: InstanceState::parse(&state).unwrap_or(InstanceState::Stopped),
        state_reason_code: r.get(8)?,
        state_reason_message: r.get(9)?,
        transition_reason: r.get(10)?,
        launch_time: r.get(11)?,
        user_data: r.get(12)?,
        shutdown_behavior: r.get(13)?,
        client_token: r.get(14)?,
        vcpus: r.get(15)?,
        memory_mib: r.get::<_, i64>(16)? as u64,
        kernel: r.get(17)?,
        initrd: r.get(18)?,
        boot_args: r.get(19)?,
        entry: r.get(20)?,
        architecture: r.get(21)?,
        pid: r.get(22)?,
        pid_start: r.get::<_, Option<i64>>(23)?.map(|v| v as u64),
        rebooting: r.get(24)?,
        terminated_at: r.get(25)?,
        detailed_monitoring: r.get(26)?,
    })
}

/// Inserts a new instance (its `seq` is assigned by the database).
pub fn insert(conn: &Connection, i: &InstanceRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO instances (id, reservation_id, launch_index, image_id, instance_type, \
         key_name, state, state_reason_code, state_reason_message, transition_reason, \
         launch_time, user_data, shutdown_behavior, client_token, vcpus, memory_mib, kernel, \
         initrd, boot_args, entry, architecture, detailed_monitoring) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
         ?19, ?20, ?21, ?22)",
        params![
            i.id,
            i.reservation_id,
            i.launch_index,
            i.image_id,
            i.instance_type,
            i.key_name,
            i.state.name(),
            i.state_reason_code,
            i.state_reason_message,
            i.transition_reason,
            i.launch_time,
            i.user_data,
            i.shutdown_behavior,
            i.client_token,
            i.vcpus,
            i.memory_mib as i64,
            i.kernel,
            i.initrd,
            i.boot_args,
            i.entry,
            i.architecture,
            i.detailed_monitoring,
        ],
    )?;
    Ok(())
}

/// One instance by id.
pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<InstanceRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM instances WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

/// The instances launched with `token`, in launch order.
pub fn by_client_token(conn: &Connection, token: &str) -> rusqlite::Result<Vec<InstanceRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM instances WHERE client_token = ?1 ORDER BY seq"
    ))?;
    st.query_map([token], from_row)?.collect()
}

/// Instances that have, or should have, a VMM.
pub fn live(conn: &Connection) -> rusqlite::Result<Vec<InstanceRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM instances WHERE state IN \
         ('pending', 'running', 'stopping', 'shutting-down') ORDER BY seq"
    ))?;
    st.query_map([], from_row)?.collect()
}

/// vCPUs and MiB held by instances that have, or should have, a VMM.
pub fn used_capacity(conn: &Connection) -> rusqlite::Result<(u64, u64)> {
    conn.query_row(
        "SELECT COALESCE(SUM(vcpus), 0), COALESCE(SUM(memory_mib), 0) FROM instances \
         WHERE state IN ('pending', 'running', 'stopping', 'shutting-down')",
        [],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )
}

/// A state change to persist.
#[derive(Debug, Clone, Default)]
pub struct StateUpdate {
    /// New `StateReason` (code, message); `None` clears it.
    pub reason: Option<(String, String)>,
    /// New `StateTransitionReason`, if it changes.
    pub transition_reason: Option<String>,
}

/// Writes a new state, its reasons, and clears the VMM pid when the state has no VMM.
pub fn set_state(
    conn: &Connection,
    id: &str,
    state: InstanceState,
    update: &StateUpdate,
) -> rusqlite::Result<()> {
    let (code, message) = match &update.reason {
        Some((c, m)) => (Some(c.as_str()), Some(m.as_str())),
        None => (None, None),
    };
    conn.execute(
        "UPDATE instances SET state = ?2, state_reason_code = ?3, state_reason_message = ?4, \
         transition_reason = COALESCE(?5, transition_reason), \
         terminated_at = CASE WHEN ?2 = 'terminated' THEN ?6 ELSE terminated_at END, \
         launch_time = CASE WHEN ?2 = 'pending' THEN ?7 ELSE launch_time END, \
         rebooting = CASE WHEN ?2 = 'running' THEN rebooting ELSE 0 END \
         WHERE id = ?1",
        params![
            id,
            state.name(),
            code,
            message,
            update.transition_reason,
            super::now_unix(),
            super::now_iso(),
        ],
    )?;
    if matches!(state, InstanceState::Stopped | InstanceState::Terminated) {
        set_pid(conn, id, None)?;
    }
    Ok(())
}

/// Records (or clears) the VMM's pid and start time.
pub fn set_pid(conn: &Connection, id: &str, pid: Option<(i32, u64)>) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE instances SET pid = ?2, pid_start = ?3 WHERE id = ?1",
        params![id, pid.map(|p| p.0), pid.map(|p| p.1 as i64)],
    )?;
    Ok(())
}

/// Marks (or clears) a reboot in progress.
pub fn set_rebooting(conn: &Connection, id: &str, rebooting: bool) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE instances SET rebooting = ?2 WHERE id = ?1",
        params![id, rebooting],
    )?;
    Ok(())
}

/// Turns detailed monitoring on or off.
pub fn set_detailed_monitoring(conn: &Connection, id: &str, on: bool) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE instances SET detailed_monitoring = ?2 WHERE id = ?1",
        params![id, on],
    )?;
    Ok(())
}

/// Deletes instances terminated before `before` (Unix time) and their tags; returns their ids.
pub fn purge_terminated(conn: &Connection, before: i64) -> rusqlite::Result<Vec<String>> {
    let mut st =
        conn.prepare("SELECT id FROM instances WHERE state = 'terminated' AND terminated_at < ?1")?;
    let ids: Vec<String> = st
        .query_map([before], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in &ids {
        conn.execute("DELETE FROM tags WHERE resource_id = ?1", [id])?;
        conn.execute("DELETE FROM instances WHERE id = ?1", [id])?;
    }
    Ok(ids)
}

/// What DescribeInstances asks for; empty lists mean "any".
#[derive(Debug, Clone, Default)]
pub struct InstanceQuery {
    /// `instance-id` filter and `InstanceId.N`.
    pub ids: Vec<String>,
    /// `instance-state-name`.
    pub states: Vec<String>,
    /// `image-id`.
    pub image_ids: Vec<String>,
    /// `instance-type`.
    pub types: Vec<String>,
    /// `key-name`.
    pub key_names: Vec<String>,
    /// `reservation-id`.
    pub reservation_ids: Vec<String>,
    /// `tag:KEY` filters: the key and its allowed values.
    pub tags: Vec<(String, Vec<String>)>,
    /// `tag-key` filters: the instance has one of these keys.
    pub tag_keys: Vec<Vec<String>>,
    /// Only rows after this `seq` (the NextToken).
    pub after_seq: Option<i64>,
    /// At most this many rows.
    pub limit: Option<usize>,
}

fn any_of(sql: &mut String, args: &mut Vec<Value>, column: &str, values: &[String]) {
    if values.is_empty() {
        return;
    }
    let marks = vec!["?"; values.len()].join(", ");
    sql.push_str(&format!(" AND {column} IN ({marks})"));
    args.extend(values.iter().map(|v| Value::Text(v.clone())));
}

/// Instances matching `q`, in launch order.
pub fn query(conn: &Connection, q: &InstanceQuery) -> rusqlite::Result<Vec<InstanceRow>> {
    let mut sql = format!("SELECT {COLUMNS} FROM instances WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    any_of(&mut sql, &mut args, "id", &q.ids);
    any_of(&mut sql, &mut args, "state", &q.states);
    any_of(&mut sql, &mut args, "image_id", &q.image_ids);
    any_of(&mut sql, &mut args, "instance_type", &q.types);
    any_of(&mut sql, &mut args, "key_name", &q.key_names);
    any_of(&mut sql, &mut args, "reservation_id", &q.reservation_ids);
    for (key, values) in &q.tags {
        let marks = vec!["?"; values.len()].join(", ");
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM tags t WHERE t.resource_id = instances.id \
             AND t.key = ? AND t.value IN ({marks}))"
        ));
        args.push(Value::Text(key.clone()));
        args.extend(values.iter().map(|v| Value::Text(v.clone())));
    }
    for keys in &q.tag_keys {
        let marks = vec!["?"; keys.len()].join(", ");
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM tags t WHERE t.resource_id = instances.id \
             AND t.key IN ({marks}))"
        ));
        args.extend(keys.iter().map(|v| Value::Text(v.clone())));
    }
    if let Some(after) = q.after_seq {
        sql.push_str(" AND seq > ?");
        args.push(Value::Integer(after));
    }
    sql.push_str(" ORDER BY seq");
    if let Some(limit) = q.limit {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    let mut st = conn.prepare_cached(&sql)?;
    st.query_map(rusqlite::params_from_iter(args), from_row)?
        .collect()
}
