//! The images table (registered AMIs) and their block device mappings.

use std::collections::HashMap;

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

/// Deletes an image, its block device mappings and its tags (not its snapshots); false if
/// there was none.
pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    conn.execute("DELETE FROM tags WHERE resource_id = ?1", [id])?;
    conn.execute("DELETE FROM image_block_devices WHERE image_id = ?1", [id])?;
    Ok(conn.execute("DELETE FROM images WHERE id = ?1", [id])? > 0)
}

/// The image that uses `snapshot_id` (for its root or any other device), if one does.
pub fn uses_snapshot(conn: &Connection, snapshot_id: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT id FROM images WHERE root_snapshot_id = ?1 \
         UNION SELECT image_id FROM image_block_devices WHERE snapshot_id = ?1 LIMIT 1",
        [snapshot_id],
        |r| r.get(0),
    )
    .optional()
}

/// One block device of an image: a volume made at launch from a snapshot or empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDevice {
    /// `/dev/xvda` (the root) or a data device such as `/dev/sdf`.
    pub device: String,
    /// The snapshot the volume is made from; none for an empty volume.
    pub snapshot_id: Option<String>,
    /// Size in GiB.
    pub volume_size_gib: u64,
    /// `gp3`, `io2`, ...
    pub volume_type: String,
    /// Provisioned IOPS, for the types that take them.
    pub iops: Option<u64>,
    /// Provisioned throughput in MiB/s (gp3).
    pub throughput: Option<u64>,
    /// Whether the launched volume is deleted with its instance.
    pub delete_on_termination: bool,
}

fn device_from_row(r: &Row<'_>) -> rusqlite::Result<(String, ImageDevice)> {
    Ok((
        r.get(0)?,
        ImageDevice {
            device: r.get(1)?,
            snapshot_id: r.get(2)?,
            volume_size_gib: r.get(3)?,
            volume_type: r.get(4)?,
            iops: r.get(5)?,
            throughput: r.get(6)?,
            delete_on_termination: r.get(7)?,
        },
    ))
}

const DEVICE_COLUMNS: &str = "image_id, device, snapshot_id, volume_size_gib, volume_type, iops, \
    throughput, delete_on_termination";

/// Records the block devices of image `image_id`.
pub fn insert_devices(
    conn: &Connection,
    image_id: &str,
    devices: &[ImageDevice],
) -> rusqlite::Result<()> {
    let mut st = conn.prepare_cached(&format!(
        "INSERT INTO image_block_devices ({DEVICE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))?;
    for d in devices {
        st.execute(params![
            image_id,
            d.device,
            d.snapshot_id,
            d.volume_size_gib,
            d.volume_type,
            d.iops,
            d.throughput,
            d.delete_on_termination
        ])?;
    }
    Ok(())
}

/// The block devices of image `image_id`, by device name; empty for images registered from
/// files only.
pub fn devices(conn: &Connection, image_id: &str) -> rusqlite::Result<Vec<ImageDevice>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {DEVICE_COLUMNS} FROM image_block_devices WHERE image_id = ?1 ORDER BY device"
    ))?;
    st.query_map([image_id], |r| device_from_row(r).map(|(_, d)| d))?
        .collect()
}

/// The block devices of every image, by image id.
pub fn all_devices(conn: &Connection) -> rusqlite::Result<HashMap<String, Vec<ImageDevice>>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {DEVICE_COLUMNS} FROM image_block_devices ORDER BY image_id, device"
    ))?;
    let mut out: HashMap<String, Vec<ImageDevice>> = HashMap::new();
    for row in st.query_map([], device_from_row)? {
        let (image, d) = row?;
        out.entry(image).or_default().push(d);
    }
    Ok(out)
}
