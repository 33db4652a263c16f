//! The storage service: volume files for the API's volume actions, snapshots taken in the
//! background (a point-in-time copy, then chunking), restores, deletions, the reaper that
//! applies DeleteOnTermination and drops instance stores, and the start-up sweep.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::compute::Compute;
use crate::compute::disks;
use crate::compute::freeze::{self, DiskCopy, FreezeError, Quiesce};
use crate::storage::chunks::{self, ChunkError, ChunkStore};
use crate::storage::types::GIB;
use crate::storage::{CHUNK_GATE, chunks_dir, files, materialize, tmp_dir, volume_path};
use crate::tasks::{self, Unit};
use state::Db;
use state::instances::{self, InstanceQuery};
use state::snapshots;
use state::volumes::{self, VolumeRow, VolumeState};

/// The storage service.
#[derive(Debug)]
pub struct Storage {
    db: Arc<Db>,
    compute: Arc<Compute>,
    state_dir: PathBuf,
    store: ChunkStore,
}

/// Errors of the storage service's own work.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
    /// A volume file could not be made.
    #[error("cannot make a volume file")]
    File(#[from] files::FileError),
    /// The chunk store failed.
    #[error("the snapshot chunk store failed")]
    Chunks(#[from] ChunkError),
    /// A file operation failed.
    #[error("cannot change {path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Errors of one snapshot's background work.
#[derive(Debug, thiserror::Error)]
enum SnapshotError {
    #[error("the point-in-time copy failed")]
    Freeze(#[from] FreezeError),
    #[error("chunking failed")]
    Chunks(#[from] ChunkError),
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
    #[error("the chunking task failed")]
    Join(#[from] tokio::task::JoinError),
    #[error("the volume is gone")]
    NoVolume,
}

/// A volume's attachment: instance and attach time.
type Attachment = (Option<String>, Option<String>);

fn remove_if_exists(path: &std::path::Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StorageError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

impl Storage {
    /// The service over `state_dir`, after the start-up sweep.
    pub fn open(db: Arc<Db>, compute: Arc<Compute>) -> Result<Arc<Self>, StorageError> {
        let state_dir = compute.config.state_dir.clone();
        for dir in [state_dir.join("volumes"), tmp_dir(&state_dir)] {
            std::fs::create_dir_all(&dir).map_err(|source| StorageError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let store = ChunkStore::open(&chunks_dir(&state_dir))?;
        let s = Arc::new(Self {
            db,
            compute,
            state_dir,
            store,
        });
        s.sweep()?;
        Ok(s)
    }

    /// The chunk store.
    pub fn store(&self) -> &ChunkStore {
        &self.store
    }

    /// Start-up: drops half-made copies and chunks, fails snapshots that were interrupted,
    /// finishes deletions, and removes volume files that have no row.
    fn sweep(self: &Arc<Self>) -> Result<(), StorageError> {
        let tmp = tmp_dir(&self.state_dir);
        for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            remove_if_exists(&e.path())?;
        }
        let conn = self.db.lock();
        for s in snapshots::pending(&conn)? {
            tracing::warn!(snapshot = %s.id, "snapshot interrupted by an agent restart");
            snapshots::set_error(&conn, &s.id, "interrupted by an agent restart")?;
        }
        let removed = self
            .store
            .sweep(|h| snapshots::chunk_known(&conn, h).unwrap_or(true))?;
        if removed > 0 {
            tracing::info!(removed, "unreferenced snapshot chunks removed");
        }
        let all = volumes::query(&conn, &[], &[], &[])?;
        for v in all.iter().filter(|v| v.state == VolumeState::Deleting) {
            remove_if_exists(&volume_path(&self.state_dir, &v.id))?;
            volumes::delete(&conn, &v.id)?;
        }
        let dir = self.state_dir.join("volumes");
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name.trim_end_matches(".img");
            if !all.iter().any(|v| v.id == id) {
                tracing::warn!(file = %name, "volume file without a volume: removed");
                remove_if_exists(&e.path())?;
            }
        }
        for v in all {
            if v.state == VolumeState::Creating && v.instance_id.is_none() {
                self.spawn_finish_create(v);
            }
        }
        Ok(())
    }

    /// Makes the file of an empty volume recorded `creating` and marks it `available`;
    /// nothing for a volume that is gone, made already, or restored from a snapshot. Can be
    /// done again (the file is empty until the volume is available).
    pub fn make_empty_volume(&self, id: &str) -> Result<(), StorageError> {
        let Some(v) = volumes::get(&self.db.lock(), id)? else {
            return Ok(());
        };
        if v.state != VolumeState::Creating || v.snapshot_id.is_some() || v.source_image.is_some() {
            return Ok(());
        }
        files::create_sparse(&volume_path(&self.state_dir, id), v.size_gib * GIB)?;
        let conn = self.db.lock();
        if volumes::get(&conn, id)?.is_some_and(|r| r.state == VolumeState::Creating) {
            volumes::set_state(&conn, id, VolumeState::Available)?;
        }
        Ok(())
    }

    /// Restores a volume recorded `creating` from its snapshot, in the background.
    pub fn restore_volume(self: &Arc<Self>, v: VolumeRow) {
        self.spawn_finish_create(v);
    }

    /// Restores `v` in the background; a panic there leaves the volume `error`, not
    /// `creating` for ever.
    fn spawn_finish_create(self: &Arc<Self>, v: VolumeRow) {
        let id = v.id.clone();
        let me = self.clone();
        let unit = Unit::new("volume restore").resource(&id);
        tasks::spawn_or_recover(unit, self.clone().finish_create(v), move |_| async move {
            let conn = me.db.lock();
            if let Ok(Some(row)) = volumes::get(&conn, &id)
                && row.state == VolumeState::Creating
            {
                let _ = volumes::set_state(&conn, &id, VolumeState::Error);
            }
        });
    }

    async fn finish_create(self: Arc<Self>, v: VolumeRow) {
        let dir = self.state_dir.clone();
        let db = self.db.clone();
        let id = v.id.clone();
        let r = tokio::task::spawn_blocking(move || materialize(&dir, &db, &v)).await;
        let next = match r {
            Ok(Ok(())) => VolumeState::Available,
            Ok(Err(e)) => {
                tracing::error!(volume = %id, error = %crate::error_chain(&e), "restore failed");
                VolumeState::Error
            }
            Err(e) => {
                tracing::error!(volume = %id, error = %e, "restore task failed");
                VolumeState::Error
            }
        };
        let conn = self.db.lock();
        if let Ok(Some(row)) = volumes::get(&conn, &id)
            && row.state == VolumeState::Creating
        {
            let _ = volumes::set_state(&conn, &id, next);
        }
    }

    /// Deletes an unattached volume: state deleting, file removed, row removed.
    pub fn delete_volume(&self, id: &str) -> Result<(), StorageError> {
        volumes::set_state(&self.db.lock(), id, VolumeState::Deleting)?;
        remove_if_exists(&volume_path(&self.state_dir, id))?;
        volumes::delete(&self.db.lock(), id)?;
        tracing::info!(volume = %id, "volume deleted");
        Ok(())
    }

    /// Removes a volume's file (nothing if it is gone already).
    pub fn remove_volume_file(&self, id: &str) -> Result<(), StorageError> {
        remove_if_exists(&volume_path(&self.state_dir, id))
    }

    /// Grows a volume's file (it takes effect at the next start when attached).
    pub fn grow_volume(&self, id: &str, size_gib: u64) -> Result<(), StorageError> {
        let path = volume_path(&self.state_dir, id);
        if path.exists() {
            files::grow(&path, size_gib * GIB)?;
        }
        Ok(())
    }

    /// Takes the recorded (pending) snapshots `(snapshot, volume)` in the background from
    /// one copy at one point in time. The volumes are unattached or all attached to one
    /// instance, which is held still as `how` says.
    pub fn start_snapshots(self: &Arc<Self>, pairs: Vec<(String, String)>, how: Quiesce) {
        self.spawn_take_snapshots(pairs, how);
    }

    /// Takes snapshots in the background; a panic there fails those still pending.
    fn spawn_take_snapshots(self: &Arc<Self>, pairs: Vec<(String, String)>, how: Quiesce) {
        let ids: Vec<String> = pairs.iter().map(|(snap, _)| snap.clone()).collect();
        let me = self.clone();
        let unit = Unit::new("snapshot").resource(ids.join(","));
        let work = self.clone().take_snapshots(pairs, how);
        tasks::spawn_or_recover(unit, work, move |panicked| async move {
            let conn = me.db.lock();
            for id in &ids {
                if let Ok(Some(s)) = snapshots::get(&conn, id)
                    && s.state == "pending"
                {
                    let _ = snapshots::set_error(&conn, id, &panicked.to_string());
                }
            }
        });
    }

    /// Copies every `(snapshot, volume)` at one point in time, then chunks each copy; a
    /// failure marks the snapshots it spoils as `error`.
    async fn take_snapshots(self: Arc<Self>, pairs: Vec<(String, String)>, how: Quiesce) {
        let fail = |snap: &str, e: &SnapshotError| {
            let msg = crate::error_chain(e);
            tracing::error!(snapshot = %snap, error = %msg, "snapshot failed");
            let _ = snapshots::set_error(&self.db.lock(), snap, &msg);
        };
        match self.copy_at_one_time(&pairs, how).await {
            Ok(lens) => {
                for ((snap, _), len) in pairs.iter().zip(lens) {
                    if let Err(e) = self.chunk_copy(snap, len).await {
                        fail(snap, &e);
                    }
                }
            }
            Err(e) => pairs.iter().for_each(|(snap, _)| fail(snap, &e)),
        }
        for (snap, _) in &pairs {
            let _ = std::fs::remove_file(tmp_dir(&self.state_dir).join(format!("{snap}.raw")));
        }
    }

    /// Copies each volume to its snapshot's `.raw` file at one point in time (holding its
    /// instance still if it runs); returns the lengths. The copy is one point in time if no
    /// attachment changed while it ran (an unattached volume could be attached and its
    /// instance started meanwhile): otherwise it is taken again.
    async fn copy_at_one_time(
        &self,
        pairs: &[(String, String)],
        how: Quiesce,
    ) -> Result<Vec<u64>, SnapshotError> {
        let tmp = tmp_dir(&self.state_dir);
        let jobs: Vec<DiskCopy> = pairs
            .iter()
            .map(|(snap, vol)| DiskCopy {
                src: volume_path(&self.state_dir, vol),
                dst: tmp.join(format!("{snap}.raw")),
                drive: disks::drive_id(vol),
            })
            .collect();
        let attachments = || -> Result<Vec<Attachment>, SnapshotError> {
            let conn = self.db.lock();
            pairs
                .iter()
                .map(|(_, vol)| {
                    let v = volumes::get(&conn, vol)?.ok_or(SnapshotError::NoVolume)?;
                    Ok((v.instance_id, v.attach_time))
                })
                .collect()
        };
        loop {
            let before = attachments()?;
            let instance = before.iter().find_map(|(i, _)| i.clone());
            let (lens, held) = match &instance {
                Some(instance) => self.compute.frozen(instance, how, jobs.clone()).await?,
                None => (freeze::copy_all(jobs.clone()).await?, None),
            };
            if attachments()? != before {
                tracing::info!(?instance, "attachment changed during the copy: again");
                continue;
            }
            if let Some(p) = held {
                let conn = self.db.lock();
                for (snap, _) in pairs {
                    snapshots::set_pause(&conn, snap, p.as_micros() as u64)?;
                }
            }
            return Ok(lens);
        }
    }

    /// Chunks snapshot `snap`'s copy of `len` bytes into the store and records the chunks
    /// once they are durable.
    async fn chunk_copy(self: &Arc<Self>, snap: &str, len: u64) -> Result<(), SnapshotError> {
        let tmp = tmp_dir(&self.state_dir).join(format!("{snap}.raw"));
        let me = self.clone();
        let snap_id = snap.to_string();
        tokio::task::spawn_blocking(move || -> Result<(), SnapshotError> {
            let _shared = CHUNK_GATE.read().unwrap_or_else(|e| e.into_inner());
            let mut last = 0;
            let list = chunks::chunk_file(&tmp, len, &me.store, |done, total| {
                let pct = (done * 99 / total.max(1)) as u32;
                if pct >= last + 5 {
                    last = pct;
                    let _ = snapshots::set_progress(&me.db.lock(), &snap_id, pct);
                }
            })?;
            let mut conn = me.db.lock();
            let tx = conn.transaction()?;
            snapshots::set_size_bytes(&tx, &snap_id, len)?;
            let new_bytes = snapshots::complete(&tx, &snap_id, &list)?;
            tx.commit()?;
            tracing::info!(snapshot = %snap_id, chunks = list.len(), new_bytes, "snapshot completed");
            Ok(())
        })
        .await??;
        Ok(())
    }

    /// Removes the files of chunks a deleted snapshot used, those no snapshot references
    /// (again) by now; returns how many were removed. Holds [`CHUNK_GATE`] exclusively, so
    /// no snapshot being taken can be referencing one meanwhile. Can be done again.
    pub fn free_chunks(&self, hashes: &[String]) -> Result<usize, StorageError> {
        let _exclusive = CHUNK_GATE.write().unwrap_or_else(|e| e.into_inner());
        let mut removed = 0;
        for h in hashes {
            if !snapshots::chunk_known(&self.db.lock(), h)? {
                self.store.remove(h)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Every half second: deletes or releases the volumes of terminated instances, and
    /// removes the instance store of instances that no longer run.
    pub async fn reaper(self: Arc<Self>) {
        loop {
            if let Err(e) = self.reap() {
                tracing::error!(error = %crate::error_chain(&e), "storage reaper failed");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn reap(&self) -> Result<(), StorageError> {
        let orphans = volumes::orphaned(&self.db.lock())?;
        for v in orphans {
            if v.delete_on_termination {
                self.delete_volume(&v.id)?;
            } else {
                volumes::set_attachment(&self.db.lock(), &v.id, None)?;
                tracing::info!(volume = %v.id, "volume released by its terminated instance");
            }
        }
        let q = InstanceQuery {
            states: vec!["stopped".into(), "terminated".into()],
            types: crate::compute::catalog::INSTANCE_TYPES
                .iter()
                .filter(|t| crate::compute::catalog::instance_store_gb(t.name).is_some())
                .map(|t| t.name.to_string())
                .collect(),
            ..Default::default()
        };
        let rows = instances::query(&self.db.lock(), &q)?;
        for r in rows {
            let path = disks::instance_store_path(&self.state_dir, &r.id);
            if path.exists() {
                remove_if_exists(&path)?;
                tracing::info!(instance = %r.id, "instance store deleted");
            }
        }
        Ok(())
    }
}
