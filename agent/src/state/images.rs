//! The images table: registered AMIs.

use rusqlite::{Connection, OptionalExtension, Row, params};

/// A registered image.
#[derive(Debug, Clone)]
pub struct ImageRow {
    /// `ami-...`.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Absolute path of the kernel (ELF or bzImage).
    pub kernel: String,
    /// Absolute path of the initrd, if any.
    pub initrd: Option<String>,
    /// Absolute path of the root-volume file, if any.
    pub root_volume: Option<String>,
    /// Kernel command line.
    pub boot_args: String,
    /// `user` (CPL3, the probe) or `kernel`.
    pub entry: String,
    /// `x86_64`.
    pub architecture: String,
    /// ISO 8601 registration time.
    pub created: String,
    /// The EBS snapshot the root volume is made from (CreateImage, RegisterImage with a
    /// block device mapping), instead of `root_volume`.
    pub root_snapshot_id: Option<String>,
}

const COLUMNS: &str = "id, name, description, kernel, initrd, root_volume, boot_args, entry, \
    architecture, created, root_snapshot_id";

fn from_row(r: &Row<'_>) -> rusqlite::Result<ImageRow> {
    Ok(ImageRow {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        kernel: r.get(3)?,
        initrd: r.get(4)?,
        root_volume: r.get(5)?,
        boot_args: r.get(6)?,
        entry: r.get(7)?,
        architecture: r.get(8)?,
        created: r.get(9)?,
        root_snapshot_id: r.get(10)?,
    })
}

/// Inserts an image.
pub fn insert(conn: &Connection, i: &ImageRow) -> rusqlite::Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO images ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        ),
        params![
            i.id,
            i.name,
            i.description,
            i.kernel,
            i.initrd,
            i.root_volume,
            i.boot_args,
            i.entry,
            i.architecture,
            i.created,
            i.root_snapshot_id
        ],
    )?;
    Ok(())
}

/// One image by id.
pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<ImageRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM images WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

/// Whether an image has this name.
pub fn name_taken(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row("SELECT COUNT(*) FROM images WHERE name = ?1", [name], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n > 0)
}

/// Every image, in registration order.
pub fn all(conn: &Connection) -> rusqlite::Result<Vec<ImageRow>> {
    let mut st = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM images ORDER BY seq"))?;
    st.query_map([], from_row)?.collect()
}

/// Deletes an image and its tags; false if there was none.
pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    conn.execute("DELETE FROM tags WHERE resource_id = ?1", [id])?;
    Ok(conn.execute("DELETE FROM images WHERE id = ?1", [id])? > 0)
}

/// Whether an image's root comes from `snapshot_id`.
pub fn uses_snapshot(conn: &Connection, snapshot_id: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT id FROM images WHERE root_snapshot_id = ?1 LIMIT 1",
        [snapshot_id],
        |r| r.get(0),
    )
    .optional()
}
