//! The snapshot file: a fixed prefix, the encoded machine state, guest memory at a page-aligned
//! offset (all-zero pages left as holes), and a trailer with a CRC-32 of everything before it.
//!
//! Writing goes to `PATH.tmp`, is fsynced, renamed over `PATH`, and the directory fsynced. Reading
//! checks magic, version, length and checksum before anything in the file is trusted.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use super::codec::DecodeError;
use super::pages::{Pagemap, Zeros};

/// The first eight bytes of every snapshot.
pub const MAGIC: [u8; 8] = *b"KEC2SNAP";
/// The format version this VMM writes and reads.
pub const VERSION: u32 = 1;
/// The last eight bytes of every snapshot.
pub const END_MAGIC: [u8; 8] = *b"KEC2END\0";
/// Bytes in the prefix.
pub const PREFIX_LEN: u64 = 64;
/// Bytes in the trailer.
pub const TRAILER_LEN: u64 = 16;
/// Guest pages as the memory image sees them.
pub const PAGE: u64 = 4096;
/// The largest state blob accepted (far above any real one).
const MAX_STATE_LEN: u64 = 64 << 20;
/// Bytes moved per read or write of the memory image.
const CHUNK: usize = 1 << 20;

/// Why a snapshot file could not be read; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("cannot read snapshot {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with the snapshot magic.
    #[error("{0} is not a kec2 snapshot (wrong magic)")]
    WrongMagic(PathBuf),
    /// The file is of a format version this VMM does not read.
    #[error("snapshot {path} has format version {found}; this vmm reads version {VERSION}")]
    Version {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
    /// The file is shorter than its prefix says.
    #[error("snapshot {path} is truncated: {got} bytes of {expected}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Its length.
        got: u64,
        /// The length it should have.
        expected: u64,
    },
    /// The checksum or the layout does not match: the file was damaged.
    #[error("snapshot {path} is corrupt: {why}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What did not match.
        why: String,
    },
    /// The checksum matched but the state did not decode.
    #[error("snapshot {path} is corrupt: its state does not decode")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: DecodeError,
    },
}

/// The fixed-size prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// Length of the encoded state after the prefix.
    pub state_len: u64,
    /// Where the memory image starts (page-aligned).
    pub memory_offset: u64,
    /// Length of the memory image.
    pub memory_len: u64,
    /// Length of the whole file.
    pub total_len: u64,
}

impl Prefix {
    /// The layout for a state of `state_len` bytes and `memory_len` bytes of memory.
    pub fn new(state_len: u64, memory_len: u64) -> Self {
        let memory_offset = (PREFIX_LEN + state_len).next_multiple_of(PAGE);
        Prefix {
            state_len,
            memory_offset,
            memory_len,
            total_len: memory_offset + memory_len + TRAILER_LEN,
        }
    }

    /// The 64 bytes on disk.
    pub fn to_bytes(self) -> [u8; PREFIX_LEN as usize] {
        let mut b = [0u8; PREFIX_LEN as usize];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        // 12..16: flags, zero.
        b[16..24].copy_from_slice(&self.state_len.to_le_bytes());
        b[24..32].copy_from_slice(&self.memory_offset.to_le_bytes());
        b[32..40].copy_from_slice(&self.memory_len.to_le_bytes());
        b[40..48].copy_from_slice(&self.total_len.to_le_bytes());
        b
    }
}

fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().unwrap_or_default())
}

/// Calls `f(offset, len, hole)` for the data and hole extents of `file` in
/// `start..start + len` (all data where the filesystem cannot tell).
fn extents(
    file: &File,
    start: u64,
    len: u64,
    mut f: impl FnMut(u64, u64, bool) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let end = start + len;
    let fd = file.as_raw_fd();
    let mut at = start;
    while at < end {
        // SAFETY: lseek on our own open descriptor; it only moves the file offset.
        let data = unsafe { libc::lseek(fd, at as libc::off_t, libc::SEEK_DATA) };
        let data = if data < 0 {
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::ENXIO) => end, // no data after `at`
                _ => at,                  // cannot tell: treat as data
            }
        } else {
            (data as u64).min(end)
        };
        if data > at {
            f(at, data - at, true)?;
            at = data;
            continue;
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, at as libc::off_t, libc::SEEK_HOLE) };
        let hole = if hole < 0 {
            end
        } else {
            (hole as u64).min(end)
        };
        let hole = hole.max(at + 1);
        f(at, hole - at, false)?;
        at = hole;
    }
    Ok(())
}

fn is_zero(page: &[u8]) -> bool {
    page.iter().all(|b| *b == 0)
}

/// Writes a snapshot of `state` (encoded) and `memory` (the regions in order) to `path`,
/// atomically. Returns the file's length.
pub fn write(
    path: &Path,
    state: &[u8],
    memory: &GuestMemoryMmap,
    regions: &[(u64, u64)],
) -> std::io::Result<u64> {
    let tmp = tmp_path(path);
    let result = write_tmp(&tmp, state, memory, regions).and_then(|len| {
        std::fs::rename(&tmp, path)?;
        sync_dir(path)?;
        Ok(len)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `PATH.tmp`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

fn write_tmp(
    tmp: &Path,
    state: &[u8],
    memory: &GuestMemoryMmap,
    regions: &[(u64, u64)],
) -> std::io::Result<u64> {
    let memory_len: u64 = regions.iter().map(|(_, size)| size).sum();
    let prefix = Prefix::new(state.len() as u64, memory_len);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)?;
    file.set_len(prefix.total_len)?;
    let mut crc = crc32fast::Hasher::new();
    let head = prefix.to_bytes();
    file.write_all_at(&head, 0)?;
    file.write_all_at(state, PREFIX_LEN)?;
    crc.update(&head);
    crc.update(state);
    let pad = prefix.memory_offset - PREFIX_LEN - state.len() as u64;
    crc.update(&vec![0u8; pad as usize]);
    let pagemap = Pagemap::open();
    let zeros = Zeros::new(CHUNK);
    let mut buf = vec![0u8; CHUNK];
    let mut offset = prefix.memory_offset;
    for &(start, size) in regions {
        let mut done = 0u64;
        while done < size {
            let n = (size - done).min(CHUNK as u64) as usize;
            let addr = GuestAddress(start + done);
            let host = memory
                .get_host_address(addr)
                .map_err(std::io::Error::other)? as u64;
            let touched = pagemap.touched(host, n.div_ceil(PAGE as usize));
            if !touched.contains(&true) {
                // Never touched: zeros, without faulting the pages in.
                zeros.update(&mut crc, n as u64);
                done += n as u64;
                continue;
            }
            memory
                .read_slice(&mut buf[..n], addr)
                .map_err(std::io::Error::other)?;
            crc.update(&buf[..n]);
            for (i, page) in buf[..n].chunks(PAGE as usize).enumerate() {
                if touched[i] && !is_zero(page) {
                    file.write_all_at(page, offset + done + (i as u64) * PAGE)?;
                }
            }
            done += n as u64;
        }
        offset += size;
    }
    let mut trailer = [0u8; TRAILER_LEN as usize];
    trailer[0..4].copy_from_slice(&crc.finalize().to_le_bytes());
    trailer[8..16].copy_from_slice(&END_MAGIC);
    file.write_all_at(&trailer, prefix.total_len - TRAILER_LEN)?;
    tracing::debug!("snapshot: {} bytes written, syncing", prefix.total_len);
    file.sync_all()?;
    Ok(prefix.total_len)
}

/// An opened, verified snapshot: its prefix and state bytes; memory is loaded on demand.
#[derive(Debug)]
pub struct SnapshotFile {
    file: File,
    path: PathBuf,
    prefix: Prefix,
    state: Vec<u8>,
}

impl SnapshotFile {
    /// Opens `path` and checks magic, version, length and the checksum of the whole file.
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        let io = |source| ReadError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut head = Vec::with_capacity(PREFIX_LEN as usize);
        (&mut file)
            .take(PREFIX_LEN)
            .read_to_end(&mut head)
            .map_err(io)?;
        let magic_len = head.len().min(MAGIC.len());
        if head[..magic_len] != MAGIC[..magic_len] {
            return Err(ReadError::WrongMagic(path.to_owned()));
        }
        let truncated = |expected| ReadError::Truncated {
            path: path.to_owned(),
            got: len,
            expected,
        };
        if head.len() < 12 {
            return Err(truncated(PREFIX_LEN));
        }
        let found = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if found != VERSION {
            return Err(ReadError::Version {
                path: path.to_owned(),
                found,
            });
        }
        if head.len() < PREFIX_LEN as usize {
            return Err(truncated(PREFIX_LEN));
        }
        let corrupt = |why: &str| ReadError::Corrupt {
            path: path.to_owned(),
            why: why.to_owned(),
        };
        let state_len = le_u64(&head[16..]);
        let memory_len = le_u64(&head[32..]);
        if state_len > MAX_STATE_LEN || memory_len % PAGE != 0 || memory_len > 1 << 48 {
            return Err(corrupt("the prefix's lengths are impossible"));
        }
        let prefix = Prefix::new(state_len, memory_len);
        if prefix.to_bytes()[..] != head[..] {
            return Err(corrupt("the prefix's layout fields do not agree"));
        }
        if len < prefix.total_len {
            return Err(truncated(prefix.total_len));
        }
        if len > prefix.total_len {
            return Err(corrupt("bytes follow the trailer"));
        }
        let mut state = vec![0u8; state_len as usize];
        file.read_exact_at(&mut state, PREFIX_LEN).map_err(io)?;
        let snapshot = SnapshotFile {
            file,
            path: path.to_owned(),
            prefix,
            state,
        };
        snapshot.verify()?;
        Ok(snapshot)
    }

    fn verify(&self) -> Result<(), ReadError> {
        let io = |source| ReadError::Io {
            path: self.path.clone(),
            source,
        };
        let mut crc = crc32fast::Hasher::new();
        crc.update(&self.prefix.to_bytes());
        crc.update(&self.state);
        let body_start = PREFIX_LEN + self.prefix.state_len;
        let body_end = self.prefix.total_len - TRAILER_LEN;
        let mut buf = vec![0u8; CHUNK];
        let zeros = vec![0u8; CHUNK];
        extents(
            &self.file,
            body_start,
            body_end - body_start,
            |at, len, hole| {
                let mut done = 0u64;
                while done < len {
                    let n = (len - done).min(CHUNK as u64) as usize;
                    if hole {
                        crc.update(&zeros[..n]);
                    } else {
                        self.file.read_exact_at(&mut buf[..n], at + done)?;
                        crc.update(&buf[..n]);
                    }
                    done += n as u64;
                }
                Ok(())
            },
        )
        .map_err(io)?;
        let mut trailer = [0u8; TRAILER_LEN as usize];
        self.file
            .read_exact_at(&mut trailer, body_end)
            .map_err(io)?;
        let corrupt = |why: String| ReadError::Corrupt {
            path: self.path.clone(),
            why,
        };
        if trailer[8..16] != END_MAGIC {
            return Err(corrupt("the trailer is damaged".into()));
        }
        let stored = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let computed = crc.finalize();
        if stored != computed {
            return Err(corrupt(format!(
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            )));
        }
        Ok(())
    }

    /// The encoded machine state (checksummed).
    pub fn state(&self) -> &[u8] {
        &self.state
    }

    /// Bytes of guest memory in the image.
    pub fn memory_len(&self) -> u64 {
        self.prefix.memory_len
    }

    /// Copies the memory image into `memory` (regions in order); pages that are holes or zero
    /// in the file are left untouched (fresh guest memory is zero).
    pub fn load_memory(
        &self,
        memory: &GuestMemoryMmap,
        regions: &[(u64, u64)],
    ) -> Result<(), ReadError> {
        let io = |source| ReadError::Io {
            path: self.path.clone(),
            source,
        };
        let base = self.prefix.memory_offset;
        let mut buf = vec![0u8; CHUNK];
        extents(&self.file, base, self.prefix.memory_len, |at, len, hole| {
            if hole {
                return Ok(());
            }
            let mut done = 0u64;
            while done < len {
                let n = (len - done).min(CHUNK as u64) as usize;
                self.file.read_exact_at(&mut buf[..n], at + done)?;
                let mut image_off = at + done - base;
                for chunk in buf[..n].chunks(PAGE as usize) {
                    if !is_zero(chunk) {
                        let addr = guest_address(regions, image_off).ok_or_else(|| {
                            std::io::Error::other("memory image larger than guest memory")
                        })?;
                        memory
                            .write_slice(chunk, GuestAddress(addr))
                            .map_err(std::io::Error::other)?;
                    }
                    image_off += chunk.len() as u64;
                }
                done += n as u64;
            }
            Ok(())
        })
        .map_err(io)
    }
}

/// The guest address of byte `offset` of a memory image made of `regions` in order.
fn guest_address(regions: &[(u64, u64)], mut offset: u64) -> Option<u64> {
    for &(start, size) in regions {
        if offset < size {
            return Some(start + offset);
        }
        offset -= size;
    }
    None
}
