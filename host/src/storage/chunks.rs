//! The snapshot chunk store: 1 MiB chunks named by their SHA-256 under
//! `<state-dir>/snapshots/chunks/<first two hex digits>/<hash>`. All-zero chunks are never
//! stored. Files are written to a `.tmp` name and renamed; [`ChunkStore::sync`] (one
//! `syncfs`) makes a batch durable before the database references it. A crash before that
//! leaves only unreferenced names, which the start-up sweep removes, so a referenced chunk
//! file is always complete. Reference counts live in SQLite (`state::snapshots`); this
//! module only handles the files.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::files::{self, is_zero};

/// Bytes per chunk.
pub const CHUNK: u64 = 1 << 20;

pub use state::snapshots::ChunkRef;

/// Errors of the chunk store.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    /// Reading the source or writing a chunk failed.
    #[error("chunk store I/O on {path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A stored chunk does not hash to its name.
    #[error("chunk {0} is corrupt (its content does not match its hash)")]
    Corrupt(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ChunkError + '_ {
    move |source| ChunkError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The chunk files under one directory.
#[derive(Debug, Clone)]
pub struct ChunkStore {
    dir: PathBuf,
}

impl ChunkStore {
    /// The store in `dir` (created if needed).
    pub fn open(dir: &Path) -> Result<Self, ChunkError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Where chunk `hash` lives.
    pub fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(&hash[..2]).join(hash)
    }

    /// Stores `data` under `hash` unless it is already there; true if written now. Not
    /// durable until [`ChunkStore::sync`].
    pub fn put(&self, hash: &str, data: &[u8]) -> Result<bool, ChunkError> {
        let path = self.path(hash);
        if path.exists() {
            return Ok(false);
        }
        let sub = self.dir.join(&hash[..2]);
        std::fs::create_dir_all(&sub).map_err(io_err(&sub))?;
        let tmp = sub.join(format!("{hash}.{}.tmp", std::process::id()));
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(io_err(&path))?;
        Ok(true)
    }

    /// Makes every chunk written so far durable, names included (`syncfs` of the store's
    /// filesystem).
    pub fn sync(&self) -> Result<(), ChunkError> {
        let dir = File::open(&self.dir).map_err(io_err(&self.dir))?;
        // SAFETY: syncfs takes an open descriptor and touches no memory of ours.
        if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dir)) } < 0 {
            return Err(io_err(&self.dir)(io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Reads chunk `hash` and checks it against its name.
    pub fn get(&self, hash: &str) -> Result<Vec<u8>, ChunkError> {
        let path = self.path(hash);
        let data = std::fs::read(&path).map_err(io_err(&path))?;
        if hash_hex(&data) != hash {
            return Err(ChunkError::Corrupt(hash.to_string()));
        }
        Ok(data)
    }

    /// Deletes chunk `hash` (already gone is fine).
    pub fn remove(&self, hash: &str) -> Result<(), ChunkError> {
        let path = self.path(hash);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Removes leftover `.tmp` files and every chunk for which `keep` says false; returns
    /// how many files were removed.
    pub fn sweep(&self, keep: impl Fn(&str) -> bool) -> Result<usize, ChunkError> {
        let mut removed = 0;
        let top = std::fs::read_dir(&self.dir).map_err(io_err(&self.dir))?;
        for sub in top.flatten() {
            let Ok(entries) = std::fs::read_dir(sub.path()) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".tmp") || !keep(&name) {
                    std::fs::remove_file(e.path()).map_err(io_err(&e.path()))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Total bytes of the chunk files.
    pub fn stored_bytes(&self) -> u64 {
        let mut total = 0;
        for sub in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            for e in std::fs::read_dir(sub.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                total += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
        total
    }
}

/// Lowercase hex SHA-256.
pub fn hash_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Splits the first `len` bytes of `src` into chunks, stores the non-zero ones durably and
/// returns them in order. Holes are skipped without reading; `progress(done, total)` is
/// called after each chunk.
pub fn chunk_file(
    src: &Path,
    len: u64,
    store: &ChunkStore,
    mut progress: impl FnMut(u64, u64),
) -> Result<Vec<ChunkRef>, ChunkError> {
    let f = File::open(src).map_err(io_err(src))?;
    let ranges = files::data_ranges(&f, len).map_err(io_err(src))?;
    let total = len.div_ceil(CHUNK);
    let mut indices: Vec<u64> = Vec::new();
    for (start, end) in ranges {
        let first = start / CHUNK;
        let last = (end - 1) / CHUNK;
        for i in first..=last {
            if indices.last() != Some(&i) {
                indices.push(i);
            }
        }
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; CHUNK as usize];
    for (n, &index) in indices.iter().enumerate() {
        let at = index * CHUNK;
        let chunk_len = (len - at).min(CHUNK) as usize;
        f.read_exact_at(&mut buf[..chunk_len], at)
            .map_err(io_err(src))?;
        let data = &buf[..chunk_len];
        if !is_zero(data) {
            let hash = hash_hex(data);
            store.put(&hash, data)?;
            out.push(ChunkRef {
                index,
                hash,
                len: chunk_len as u64,
            });
        }
        progress(n as u64 + 1, total.max(indices.len() as u64));
    }
    store.sync()?;
    Ok(out)
}

/// Writes a snapshot (its chunks and byte size) into a new sparse file `dst` of `dst_len`
/// bytes (at least `size`), durably; chunks not listed stay holes (zeros).
pub fn restore(
    store: &ChunkStore,
    chunks: &[ChunkRef],
    size: u64,
    dst: &Path,
    dst_len: u64,
) -> Result<(), ChunkError> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(dst)
        .map_err(io_err(dst))?;
    for c in chunks {
        let data = store.get(&c.hash)?;
        f.write_all_at(&data, c.index * CHUNK)
            .map_err(io_err(dst))?;
    }
    f.set_len(dst_len.max(size)).map_err(io_err(dst))?;
    f.sync_all().map_err(io_err(dst))?;
    files::sync_parent(dst).map_err(io_err(dst))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(dir: &Path, name: &str, len: u64, writes: &[(u64, u8, usize)]) -> PathBuf {
        let p = dir.join(name);
        files::create_sparse(&p, len).unwrap();
        let f = OpenOptions::new().write(true).open(&p).unwrap();
        for &(at, byte, n) in writes {
            f.write_all_at(&vec![byte; n], at).unwrap();
        }
        p
    }

    #[test]
    fn snapshot_restore_is_exact_and_skips_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChunkStore::open(&dir.path().join("chunks")).unwrap();
        let len = 16 * CHUNK;
        let src = volume(
            dir.path(),
            "a.img",
            len,
            &[
                (3, 1, 10),
                (5 * CHUNK + 100, 2, 3 * CHUNK as usize),
                (9 * CHUNK, 0, 4096),
            ],
        );
        let mut calls = 0;
        let chunks = chunk_file(&src, len, &store, |_, _| calls += 1).unwrap();
        assert!(calls > 0);
        assert_eq!(
            chunks.iter().map(|c| c.index).collect::<Vec<_>>(),
            vec![0, 5, 6, 7, 8],
            "zero chunks and holes are not stored"
        );
        // Chunks 6 and 7 are identical (all 2s): stored once.
        assert_eq!(chunks[2].hash, chunks[3].hash);
        assert_eq!(store.stored_bytes(), 4 * CHUNK);
        let out = dir.path().join("b.img");
        restore(&store, &chunks, len, &out, len + CHUNK).unwrap();
        let a = std::fs::read(&src).unwrap();
        let b = std::fs::read(&out).unwrap();
        assert_eq!(b.len() as u64, len + CHUNK);
        assert_eq!(&b[..a.len()], &a[..]);
    }

    #[test]
    fn an_unchanged_volume_adds_nothing_and_sweep_keeps_referenced() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChunkStore::open(&dir.path().join("chunks")).unwrap();
        let src = volume(
            dir.path(),
            "a.img",
            4 * CHUNK,
            &[(0, 9, 3 * CHUNK as usize)],
        );
        let first = chunk_file(&src, 4 * CHUNK, &store, |_, _| {}).unwrap();
        let before = store.stored_bytes();
        let again = chunk_file(&src, 4 * CHUNK, &store, |_, _| {}).unwrap();
        assert_eq!(first, again);
        assert_eq!(store.stored_bytes(), before);
        std::fs::write(store.dir.join("ab").join("x.tmp"), b"partial").ok();
        std::fs::create_dir_all(store.dir.join("ab")).unwrap();
        std::fs::write(store.dir.join("ab").join("x.tmp"), b"partial").unwrap();
        let keep = first[0].hash.clone();
        let removed = store.sweep(|h| h == keep).unwrap();
        assert_eq!(removed, 1, "only the temp file goes: one distinct chunk");
        let removed = store.sweep(|_| false).unwrap();
        assert_eq!(removed, 1);
        assert_eq!(store.stored_bytes(), 0);
    }

    #[test]
    fn corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChunkStore::open(dir.path()).unwrap();
        let data = vec![5u8; 4096];
        let h = hash_hex(&data);
        assert!(store.put(&h, &data).unwrap());
        assert!(!store.put(&h, &data).unwrap());
        std::fs::write(store.path(&h), b"bad").unwrap();
        assert!(matches!(store.get(&h), Err(ChunkError::Corrupt(_))));
    }
}
