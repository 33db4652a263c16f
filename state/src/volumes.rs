//! The volumes table: EBS volumes and their (single) attachment.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params};

/// A volume's state, with EC2's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeState {
    /// Its file is being made (from a snapshot or an image).
    Creating,
    /// Not attached.
    Available,
    /// Attached to an instance.
    InUse,
    /// Being deleted.
    Deleting,
    /// Making its file failed.
    Error,
}

impl VolumeState {
    /// EC2's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Available => "available",
            Self::InUse => "in-use",
            Self::Deleting => "deleting",
            Self::Error => "error",
        }
    }

    /// Parses EC2's name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Creating,
            Self::Available,
            Self::InUse,
            Self::Deleting,
            Self::Error,
        ]
        .into_iter()
        .find(|v| v.name() == s)
    }
}

/// One volume as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRow {
    /// Insertion order.
    pub seq: i64,
    /// `vol-...`.
    pub id: String,
    /// `gp3`, `io2`, ...
    pub volume_type: String,
    /// Size in GiB.
    pub size_gib: u64,
    /// IOPS (provisioned or the type's baseline).
    pub iops: u64,
    /// Throughput in MiB/s.
    pub throughput: u64,
    /// The snapshot it was made from.
    pub snapshot_id: Option<String>,
    /// The image file it was cloned from (a root volume of an AMI with a root-volume file).
    pub source_image: Option<String>,
    /// Lifecycle state.
    pub state: VolumeState,
    /// ISO 8601 creation time.
    pub created: String,
    /// The instance it is attached to.
    pub instance_id: Option<String>,
    /// The device name there (`/dev/xvda`, `/dev/sdf`).
    pub device: Option<String>,
    /// ISO 8601 attach time.
    pub attach_time: Option<String>,
    /// Deleted when its instance terminates.
    pub delete_on_termination: bool,
}

const COLUMNS: &str = "seq, id, volume_type, size_gib, iops, throughput, snapshot_id, \
    source_image, state, created, instance_id, device, attach_time, delete_on_termination";

fn from_row(r: &Row<'_>) -> rusqlite::Result<VolumeRow> {
    let state: String = r.get(8)?;
    Ok(VolumeRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        volume_type: r.get(2)?,
        size_gib: r.get::<_, i64>(3)? as u64,
        iops: r.get::<_, i64>(4)? as u64,
        throughput: r.get::<_, i64>(5)? as u64,
        snapshot_id: r.get(6)?,
        source_image: r.get(7)?,
        state: VolumeState::parse(&state).unwrap_or(VolumeState::Error),
        created: r.get(9)?,
        instance_id: r.get(10)?,
        device: r.get(11)?,
        attach_time: r.get(12)?,
        delete_on_termination: r.get(13)?,
    })
}

/// Inserts a volume.
pub fn insert(conn: &Connection, v: &VolumeRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO volumes (id, volume_type, size_gib, iops, throughput, snapshot_id, \
         source_image, state, created, instance_id, device, attach_time, \
         delete_on_termination) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            v.id,
            v.volume_type,
            v.size_gib as i64,
            v.iops as i64,
            v.throughput as i64,
            v.snapshot_id,
            v.source_image,
            v.state.name(),
            v.created,
            v.instance_id,
            v.device,
            v.attach_time,
            v.delete_on_termination,
        ],
    )?;
    Ok(())
}

/// One volume by id.
pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<VolumeRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM volumes WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

/// Volumes matching: any of `ids`, `states`, `instances` (empty = any), in creation order.
pub fn query(
    conn: &Connection,
    ids: &[String],
    states: &[String],
    instances: &[String],
) -> rusqlite::Result<Vec<VolumeRow>> {
    let mut sql = format!("SELECT {COLUMNS} FROM volumes WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    for (column, values) in [("id", ids), ("state", states), ("instance_id", instances)] {
        if values.is_empty() {
            continue;
        }
        let marks = vec!["?"; values.len()].join(", ");
        sql.push_str(&format!(" AND {column} IN ({marks})"));
        args.extend(values.iter().map(|v| Value::Text(v.clone())));
    }
    sql.push_str(" ORDER BY seq");
    let mut st = conn.prepare_cached(&sql)?;
    st.query_map(rusqlite::params_from_iter(args), from_row)?
        .collect()
}

/// The volumes attached to `instance_id`, in device-name order.
pub fn attached_to(conn: &Connection, instance_id: &str) -> rusqlite::Result<Vec<VolumeRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM volumes WHERE instance_id = ?1 ORDER BY device"
    ))?;
    st.query_map([instance_id], from_row)?.collect()
}

/// Volumes whose instance is terminated (or gone): to delete or release.
pub fn orphaned(conn: &Connection) -> rusqlite::Result<Vec<VolumeRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM volumes v WHERE instance_id IS NOT NULL AND NOT EXISTS \
         (SELECT 1 FROM instances i WHERE i.id = v.instance_id AND i.state != 'terminated')"
    ))?;
    st.query_map([], from_row)?.collect()
}

/// Sets the state.
pub fn set_state(conn: &Connection, id: &str, state: VolumeState) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE volumes SET state = ?2 WHERE id = ?1",
        params![id, state.name()],
    )?;
    Ok(())
}

/// Attaches (state in-use) or, with `None`, detaches (state available).
pub fn set_attachment(
    conn: &Connection,
    id: &str,
    attach: Option<(&str, &str, bool)>,
) -> rusqlite::Result<()> {
    match attach {
        Some((instance, device, dot)) => conn.execute(
            "UPDATE volumes SET instance_id = ?2, device = ?3, attach_time = ?4, \
             delete_on_termination = ?5, state = 'in-use' WHERE id = ?1",
            params![id, instance, device, super::now_iso(), dot],
        )?,
        None => conn.execute(
            "UPDATE volumes SET instance_id = NULL, device = NULL, attach_time = NULL, \
             delete_on_termination = 0, state = 'available' WHERE id = ?1",
            [id],
        )?,
    };
    Ok(())
}

/// Changes size, type and performance (ModifyVolume).
pub fn set_spec(
    conn: &Connection,
    id: &str,
    volume_type: &str,
    size_gib: u64,
    iops: u64,
    throughput: u64,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE volumes SET volume_type = ?2, size_gib = ?3, iops = ?4, throughput = ?5 \
         WHERE id = ?1",
        params![
            id,
            volume_type,
            size_gib as i64,
            iops as i64,
            throughput as i64
        ],
    )?;
    Ok(())
}

/// Sets DeleteOnTermination of an attached volume.
pub fn set_delete_on_termination(conn: &Connection, id: &str, dot: bool) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE volumes SET delete_on_termination = ?2 WHERE id = ?1",
        params![id, dot],
    )?;
    Ok(())
}

/// Deletes the row and its tags.
pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM tags WHERE resource_id = ?1", [id])?;
    conn.execute("DELETE FROM volumes WHERE id = ?1", [id])?;
    Ok(())
}
