//! EBS storage's files: volume types and limits (`types`), sparse volume files and clones
//! (`files`), the content-addressed snapshot chunk store (`chunks`), and restoring a volume
//! from its snapshot or image (`materialize`). The service that runs snapshots, restores,
//! deletions and the start-up sweep, holding instances still through compute, is `ebs`.
//!
//! Layout under the state dir: `volumes/<vol-id>.img`, `snapshots/chunks/<xx>/<sha256>`,
//! `snapshots/tmp/<snap-id>.raw` (point-in-time copies being chunked).

pub mod chunks;
pub mod files;
pub mod types;

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use state::Db;
use state::snapshots;
use state::volumes::VolumeRow;
use types::GIB;

/// Held shared while chunks are written or read for a snapshot or restore, and exclusively
/// while unreferenced chunks are deleted, so a chunk about to be referenced is never removed.
pub static CHUNK_GATE: RwLock<()> = RwLock::new(());

/// The file of volume `id`.
pub fn volume_path(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join("volumes").join(format!("{id}.img"))
}

/// The chunk store's directory.
pub fn chunks_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("snapshots").join("chunks")
}

/// The directory of point-in-time copies being chunked.
pub fn tmp_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("snapshots").join("tmp")
}

/// Errors making a volume's file.
#[derive(Debug, thiserror::Error)]
pub enum MaterializeError {
    /// The file could not be made or cloned.
    #[error("cannot make the volume file")]
    File(#[from] files::FileError),
    /// The snapshot could not be restored.
    #[error("cannot restore the snapshot")]
    Chunks(#[from] chunks::ChunkError),
    /// The snapshot it comes from is gone or not completed.
    #[error("snapshot {0} is not available")]
    NoSnapshot(String),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

/// Makes the file of volume `v`: a clone of its image file, a restore of its snapshot, or
/// an empty sparse file; durable before it returns. Holds the database only for lookups.
pub fn materialize(state_dir: &Path, db: &Db, v: &VolumeRow) -> Result<(), MaterializeError> {
    let dst = volume_path(state_dir, &v.id);
    let dir = state_dir.join("volumes");
    std::fs::create_dir_all(&dir).map_err(|source| files::FileError::Create {
        path: dir.display().to_string(),
        source,
    })?;
    let bytes = v.size_gib * GIB;
    if let Some(image) = &v.source_image {
        let stats = files::clone_file(Path::new(image), &dst, bytes)?;
        tracing::info!(volume = %v.id, ?stats, "volume cloned from the image file");
        return Ok(());
    }
    if let Some(snap) = &v.snapshot_id {
        let _shared = CHUNK_GATE.read().unwrap_or_else(|e| e.into_inner());
        let (row, list) = {
            let conn = db.lock();
            (
                snapshots::get(&conn, snap)?,
                snapshots::chunks(&conn, snap)?,
            )
        };
        let row = row
            .filter(|r| r.state == "completed")
            .ok_or_else(|| MaterializeError::NoSnapshot(snap.clone()))?;
        let store = chunks::ChunkStore::open(&chunks_dir(state_dir))?;
        let t0 = std::time::Instant::now();
        chunks::restore(&store, &list, row.size_bytes, &dst, bytes)?;
        tracing::info!(volume = %v.id, snapshot = %snap, chunks = list.len(),
            ms = t0.elapsed().as_millis() as u64, "volume restored from a snapshot");
        return Ok(());
    }
    files::create_sparse(&dst, bytes)?;
    Ok(())
}
