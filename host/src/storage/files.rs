//! Volume files: sparse raw files, grown with `ftruncate`, and cloned without copying every
//! byte (a reflink where the filesystem has them, else a copy that skips holes and zeros).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The unit the sparse copy reads, compares with zeros and writes.
pub const COPY_CHUNK: usize = 1 << 20;

/// How a clone was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloneStats {
    /// The filesystem shared the extents (FICLONE): nothing was copied.
    pub reflinked: bool,
    /// Bytes written to the new file by the fallback copy.
    pub bytes_copied: u64,
}

/// Errors making or copying volume files.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Creating, sizing or syncing a file failed.
    #[error("cannot prepare the volume file {path}")]
    Create {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading the source or writing the copy failed.
    #[error("cannot copy {from} to {to}")]
    Copy {
        /// The source.
        from: String,
        /// The destination.
        to: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file is larger than the size asked for (volumes only grow).
    #[error("{path} is {have} bytes, more than the {want} asked for")]
    Shrink {
        /// The file.
        path: String,
        /// Its size.
        have: u64,
        /// The size asked for.
        want: u64,
    },
}

fn create_err(path: &Path) -> impl FnOnce(io::Error) -> FileError + '_ {
    move |source| FileError::Create {
        path: path.display().to_string(),
        source,
    }
}

/// Creates (or replaces) `path` as an empty sparse file of `bytes`, durably.
pub fn create_sparse(path: &Path, bytes: u64) -> Result<(), FileError> {
    let f = File::create(path).map_err(create_err(path))?;
    f.set_len(bytes).map_err(create_err(path))?;
    f.sync_all().map_err(create_err(path))?;
    sync_parent(path).map_err(create_err(path))
}

/// Grows `path` to `bytes` (a sparse extension); refuses to shrink it.
pub fn grow(path: &Path, bytes: u64) -> Result<(), FileError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(create_err(path))?;
    let have = f.metadata().map_err(create_err(path))?.len();
    if have > bytes {
        return Err(FileError::Shrink {
            path: path.display().to_string(),
            have,
            want: bytes,
        });
    }
    f.set_len(bytes).map_err(create_err(path))?;
    f.sync_all().map_err(create_err(path))
}

/// fsyncs the directory holding `path`, so that a new name in it survives a crash.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Clones `src` into a new file `dst` of at least `min_bytes` (grown sparse beyond the
/// source), durably: FICLONE first, else [`copy_sparse`].
pub fn clone_file(src: &Path, dst: &Path, min_bytes: u64) -> Result<CloneStats, FileError> {
    let copy_err = |source| FileError::Copy {
        from: src.display().to_string(),
        to: dst.display().to_string(),
        source,
    };
    let from = File::open(src).map_err(copy_err)?;
    let to = File::create(dst).map_err(create_err(dst))?;
    let stats = match reflink(&from, &to) {
        Ok(()) => CloneStats {
            reflinked: true,
            bytes_copied: 0,
        },
        Err(e) => {
            tracing::debug!(error = %e, "no reflink here: sparse copy");
            copy_sparse(&from, &to).map_err(copy_err)?
        }
    };
    let len = to.metadata().map_err(create_err(dst))?.len();
    if len < min_bytes {
        to.set_len(min_bytes).map_err(create_err(dst))?;
    }
    to.sync_all().map_err(create_err(dst))?;
    sync_parent(dst).map_err(create_err(dst))?;
    Ok(stats)
}

/// Shares `from`'s extents with `to` (XFS, btrfs); fails with EOPNOTSUPP/EXDEV elsewhere.
pub fn reflink(from: &File, to: &File) -> io::Result<()> {
    // SAFETY: FICLONE takes the source descriptor as its argument and touches no memory of
    // ours; both descriptors are open for the duration of the call.
    let r = unsafe { libc::ioctl(to.as_raw_fd(), libc::FICLONE, from.as_raw_fd()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The data ranges of `f` (`SEEK_DATA`/`SEEK_HOLE`), within `len` bytes.
pub fn data_ranges(f: &File, len: u64) -> io::Result<Vec<(u64, u64)>> {
    let fd = f.as_raw_fd();
    let mut out = Vec::new();
    let mut at: u64 = 0;
    while at < len {
        // SAFETY: lseek on an open descriptor with a valid whence; no memory is involved.
        let start = unsafe { libc::lseek(fd, at as libc::off_t, libc::SEEK_DATA) };
        if start < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                break; // no data after `at`
            }
            if e.raw_os_error() == Some(libc::EINVAL) {
                return Ok(vec![(0, len)]); // no SEEK_DATA here: all of it is data
            }
            return Err(e);
        }
        // SAFETY: as above.
        let end = unsafe { libc::lseek(fd, start, libc::SEEK_HOLE) };
        if end < 0 {
            return Err(io::Error::last_os_error());
        }
        let (start, end) = (start as u64, (end as u64).min(len));
        if end > start {
            out.push((start, end));
        }
        at = end.max(start + 1);
    }
    Ok(out)
}

/// Whether every byte of `buf` is zero.
pub fn is_zero(buf: &[u8]) -> bool {
    let (head, words, tail) = {
        // SAFETY: u64 has no invalid bit patterns; align_to only reinterprets the aligned
        // middle of the byte slice.
        unsafe { buf.align_to::<u64>() }
    };
    head.iter().all(|&b| b == 0) && words.iter().all(|&w| w == 0) && tail.iter().all(|&b| b == 0)
}

/// Copies `from` into the empty `to`: only the data ranges, and of those only the chunks that
/// are not all zeros; `to` ends with `from`'s length (holes stay holes).
pub fn copy_sparse(from: &File, to: &File) -> io::Result<CloneStats> {
    let len = from.metadata()?.len();
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut copied = 0u64;
    for (start, end) in data_ranges(from, len)? {
        let mut at = start;
        while at < end {
            let n = ((end - at) as usize).min(COPY_CHUNK);
            from.read_exact_at(&mut buf[..n], at)?;
            if !is_zero(&buf[..n]) {
                to.write_all_at(&buf[..n], at)?;
                copied += n as u64;
            }
            at += n as u64;
        }
    }
    to.set_len(len)?;
    Ok(CloneStats {
        reflinked: false,
        bytes_copied: copied,
    })
}

/// Copies the data ranges of `from` into the empty `to` inside the kernel
/// (`copy_file_range`, no user-space buffer: the short copy a paused instance waits for);
/// holes stay holes and `to` ends with `from`'s length. Returns the bytes copied.
pub fn copy_data_ranges(from: &File, to: &File) -> io::Result<u64> {
    let len = from.metadata()?.len();
    let mut copied = 0u64;
    for (start, end) in data_ranges(from, len)? {
        let mut off_in = start as libc::loff_t;
        let mut off_out = start as libc::loff_t;
        while (off_in as u64) < end {
            let want = (end - off_in as u64).min(1 << 30) as usize;
            // SAFETY: both descriptors are open; the offsets are ours and updated by the
            // kernel; no user memory is read or written.
            let n = unsafe {
                libc::copy_file_range(
                    from.as_raw_fd(),
                    &mut off_in,
                    to.as_raw_fd(),
                    &mut off_out,
                    want,
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                break;
            }
            copied += n as u64;
        }
    }
    to.set_len(len)?;
    Ok(copied)
}

/// Copies the byte ranges `(offset, len)` of `from` into `to` at the same offsets, through a
/// buffer: a part that reads as zeros is punched out of `to` rather than written (it was
/// discarded, or never written). Ranges past `from`'s end are cut. Returns the bytes read.
pub fn copy_ranges(from: &File, to: &File, ranges: &[(u64, u64)]) -> io::Result<u64> {
    let len = from.metadata()?.len();
    let mut buf = vec![0u8; 1 << 20];
    let mut read = 0u64;
    for &(start, n) in ranges {
        let end = start.saturating_add(n).min(len);
        let mut at = start;
        while at < end {
            let n = (end - at).min(buf.len() as u64) as usize;
            from.read_exact_at(&mut buf[..n], at)?;
            if is_zero(&buf[..n]) {
                punch(to, at, n as u64)?;
            } else {
                to.write_all_at(&buf[..n], at)?;
            }
            read += n as u64;
            at += n as u64;
        }
    }
    Ok(read)
}

/// Makes `len` bytes at `offset` of `f` read as zeros (a hole where the filesystem can).
fn punch(f: &File, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: fallocate on an open descriptor with a range; no memory is involved.
    let rc = unsafe {
        libc::fallocate(
            f.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset as libc::off_t,
            len as libc::off_t,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
        return Err(e);
    }
    f.write_all_at(&vec![0u8; len as usize], offset)
}

/// Bytes of `path` that are allocated on disk (st_blocks × 512).
pub fn allocated_bytes(path: &Path) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path)?.blocks() * 512)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_at(path: &Path, at: u64, data: &[u8]) {
        let f = OpenOptions::new().write(true).open(path).unwrap();
        f.write_all_at(data, at).unwrap();
    }

    #[test]
    fn sparse_create_and_grow() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.img");
        create_sparse(&p, 64 << 20).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 64 << 20);
        assert!(allocated_bytes(&p).unwrap() < 1 << 20, "not sparse");
        grow(&p, 128 << 20).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 128 << 20);
        assert!(matches!(grow(&p, 1 << 20), Err(FileError::Shrink { .. })));
    }

    #[test]
    fn clone_copies_data_skips_holes_and_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.img");
        create_sparse(&src, 32 << 20).unwrap();
        write_at(&src, 5 << 20, &[7u8; 4096]);
        write_at(&src, (20 << 20) + 13, b"hello");
        // An explicit run of zeros (allocated, not a hole) is not copied either.
        write_at(&src, 10 << 20, &vec![0u8; 2 << 20]);
        let dst = dir.path().join("dst.img");
        let stats = clone_file(&src, &dst, 40 << 20).unwrap();
        assert_eq!(std::fs::metadata(&dst).unwrap().len(), 40 << 20);
        let a = std::fs::read(&src).unwrap();
        let b = std::fs::read(&dst).unwrap();
        assert_eq!(&b[..a.len()], &a[..]);
        assert!(b[a.len()..].iter().all(|&x| x == 0));
        if !stats.reflinked {
            assert!(stats.bytes_copied <= 2 * COPY_CHUNK as u64, "{stats:?}");
            assert!(allocated_bytes(&dst).unwrap() <= 3 << 20);
        }
    }

    #[test]
    fn kernel_copy_keeps_holes_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.img");
        create_sparse(&src, 16 << 20).unwrap();
        write_at(&src, 3 << 20, &[9u8; 8192]);
        let dst = dir.path().join("dst.img");
        let copied =
            copy_data_ranges(&File::open(&src).unwrap(), &File::create(&dst).unwrap()).unwrap();
        assert!((8192..=1 << 20).contains(&copied), "{copied}");
        assert_eq!(std::fs::read(&src).unwrap(), std::fs::read(&dst).unwrap());
        assert!(allocated_bytes(&dst).unwrap() <= 1 << 20);
    }

    #[test]
    fn ranges_are_copied_and_zeros_punched() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("src.img"), dir.path().join("dst.img"));
        create_sparse(&src, 4 << 20).unwrap();
        create_sparse(&dst, 4 << 20).unwrap();
        write_at(&dst, 0, &vec![3u8; 4 << 20]);
        write_at(&src, 1 << 20, &[5u8; 100]);
        let (from, to) = (
            File::open(&src).unwrap(),
            OpenOptions::new().write(true).open(&dst).unwrap(),
        );
        // The first MiB was discarded since, the second written, the rest past the end.
        let read = copy_ranges(&from, &to, &[(0, 2 << 20), (3 << 20, 8 << 20)]).unwrap();
        assert_eq!(read, 3 << 20);
        let b = std::fs::read(&dst).unwrap();
        assert!(b[..1 << 20].iter().all(|&x| x == 0));
        assert_eq!(&b[1 << 20..(1 << 20) + 100], &[5u8; 100][..]);
        assert!(b[(1 << 20) + 100..2 << 20].iter().all(|&x| x == 0));
        assert!(
            b[2 << 20..3 << 20].iter().all(|&x| x == 3),
            "not in a range"
        );
        assert!(b[3 << 20..].iter().all(|&x| x == 0));
    }

    #[test]
    fn zero_detection() {
        assert!(is_zero(&[0u8; 37]));
        let mut v = vec![0u8; 4099];
        v[4098] = 1;
        assert!(!is_zero(&v));
        v[4098] = 0;
        v[1] = 1;
        assert!(!is_zero(&v[1..]));
    }
}
