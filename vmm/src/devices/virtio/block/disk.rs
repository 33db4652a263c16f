//! The host side of a virtio-blk disk: a raw (possibly sparse) file, read and written straight
//! into and out of guest memory.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::Arc;

use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use super::dirty::WriteLog;

/// Bytes in a sector.
pub const SECTOR_SIZE: u64 = 512;

/// An open disk image.
#[derive(Debug)]
pub struct DiskFile {
    file: File,
    size: u64,
    read_only: bool,
    log: Arc<WriteLog>,
}

/// A host pointer to `len` bytes of guest memory at `addr`, which must lie in one region.
pub fn guest_ptr(
    mem: &GuestMemoryMmap,
    addr: GuestAddress,
    len: usize,
) -> std::io::Result<*mut u8> {
    let slice = mem
        .get_slice(addr, len)
        .map_err(|e| std::io::Error::other(format!("guest buffer {:#x}+{len}: {e}", addr.0)))?;
    Ok(slice.ptr_guard_mut().as_ptr())
}

/// Runs a positional read or write `op(at, count, file_offset)` until `len` bytes are moved or
/// it reports end of file (0); retries on EINTR. Returns the bytes moved.
fn transfer(
    len: usize,
    offset: u64,
    mut op: impl FnMut(usize, usize, libc::off_t) -> isize,
) -> std::io::Result<usize> {
    let mut done = 0usize;
    while done < len {
        match op(done, len - done, (offset + done as u64) as libc::off_t) {
            n if n < 0 => {
                let err = std::io::Error::last_os_error();
                if err.kind() != std::io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
            0 => break,
            n => done += n as usize,
        }
    }
    Ok(done)
}

impl DiskFile {
    /// Opens `path`, read-only or read-write.
    pub fn open(path: &Path, read_only: bool) -> std::io::Result<Self> {
        let file = OpenOptions::new().read(true).write(!read_only).open(path)?;
        let size = file.metadata()?.len();
        Ok(DiskFile {
            file,
            size,
            read_only,
            log: Arc::new(WriteLog::new(size)),
        })
    }

    /// The blocks written while tracking is on (every write through this file marks them).
    pub fn log(&self) -> &Arc<WriteLog> {
        &self.log
    }

    /// The file's descriptor, for the asynchronous engine.
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Size in bytes (the capacity is rounded down to whole sectors).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether writes are refused.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Reads `len` bytes at `offset` into guest memory at `addr`; past the end of a file that
    /// shrank, the guest sees zeros.
    pub fn read_into(
        &self,
        mem: &GuestMemoryMmap,
        addr: GuestAddress,
        len: u32,
        offset: u64,
    ) -> std::io::Result<()> {
        let ptr = guest_ptr(mem, addr, len as usize)?;
        let fd = self.file.as_raw_fd();
        let done = transfer(len as usize, offset, |at, count, pos| {
            // SAFETY: `ptr` points at `len` bytes of mapped guest memory (checked by
            // `get_slice`), which stays mapped for the VM's life; `at + count <= len`.
            unsafe { libc::pread(fd, ptr.add(at).cast(), count, pos) }
        })?;
        // SAFETY: as above; the part past the end of the file is zeroed.
        unsafe { std::ptr::write_bytes(ptr.add(done), 0, len as usize - done) };
        Ok(())
    }

    /// Writes `len` bytes from guest memory at `addr` to `offset`.
    pub fn write_from(
        &self,
        mem: &GuestMemoryMmap,
        addr: GuestAddress,
        len: u32,
        offset: u64,
    ) -> std::io::Result<()> {
        let ptr = guest_ptr(mem, addr, len as usize)?;
        let fd = self.file.as_raw_fd();
        let result = transfer(len as usize, offset, |at, count, pos| {
            // SAFETY: `ptr` points at `len` bytes of mapped guest memory, which pwrite only
            // reads; `at + count <= len`.
            unsafe { libc::pwrite(fd, ptr.add(at).cast(), count, pos) }
        });
        // Marked even on failure: part of the range may have been written.
        self.log.mark(offset, u64::from(len));
        let done = result?;
        if done < len as usize {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                "disk write made no progress",
            ));
        }
        Ok(())
    }

    /// Makes every completed write durable (fdatasync).
    pub fn flush(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// Deallocates `len` bytes at `offset`: they read back as zeros and the file stays its size.
    pub fn punch_hole(&self, offset: u64, len: u64) -> std::io::Result<()> {
        let result = self.punch(offset, len);
        // Marked even on failure: part of the range may have changed.
        self.log.mark(offset, len);
        result
    }

    fn punch(&self, offset: u64, len: u64) -> std::io::Result<()> {
        // SAFETY: fallocate on our own descriptor with a range; no memory is involved.
        let rc = unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                offset as libc::off_t,
                len as libc::off_t,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EOPNOTSUPP) {
            return Err(err);
        }
        // No hole punching on this filesystem: write zeros instead.
        let zeros = vec![0u8; 1 << 20];
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(zeros.len() as u64) as usize;
            std::os::unix::fs::FileExt::write_all_at(&self.file, &zeros[..n], offset + done)?;
            done += n as u64;
        }
        Ok(())
    }
}
