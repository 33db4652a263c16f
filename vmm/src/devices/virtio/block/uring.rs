//! The asynchronous engine: reads, writes and flushes go to an io_uring, straight between
//! the disk file and guest memory; their completions wake the device thread through an
//! eventfd. The ring is made when the disk is opened (before the jail), so the running vmm
//! only needs `io_uring_enter`.

use std::os::fd::{AsRawFd, RawFd};

use io_uring::{IoUring, opcode, squeue, types};
use vm_memory::{GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

use super::disk::{DiskFile, SECTOR_SIZE, guest_ptr};
use super::request::{ID_LEN, Request, S_IOERR, S_OK, T_FLUSH, T_IN, T_OUT};

/// Requests of at least this many bytes are handed to io_uring's worker threads at once
/// (`IOSQE_ASYNC`), so that copying them overlaps the guest preparing the next ones; smaller
/// ones are served inline when the page cache allows, which is quicker.
pub const ASYNC_BYTES: u64 = 128 << 10;

/// The buffers of one request as the kernel reads them: pointers into guest memory, which
/// stays mapped for the VM's life.
struct IoVecs(Box<[libc::iovec]>);

// SAFETY: the pointers are into guest memory, mapped (shared) for the whole life of the VM;
// the vector is only read by the kernel while its request is in flight and by nobody else.
unsafe impl Send for IoVecs {}

/// A request handed to the ring.
struct Pending {
    head: u16,
    request: Request,
    bytes: u64,
    _iov: Option<IoVecs>,
}

/// A finished request, ready for the used ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// The chain's head.
    pub head: u16,
    /// Where its status byte goes.
    pub status_addr: GuestAddress,
    /// The status.
    pub status: u8,
    /// Bytes written into the guest's buffers, the status byte included.
    pub len: u32,
    /// The request type.
    pub kind: u32,
    /// Bytes of data it moved.
    pub bytes: u64,
}

/// An io_uring with the requests in flight on it.
pub struct Uring {
    ring: IoUring,
    event: EventFd,
    slots: Vec<Option<Pending>>,
    free: Vec<usize>,
    in_flight: usize,
    unsubmitted: usize,
}

impl std::fmt::Debug for Uring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uring")
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl Uring {
    /// A ring for up to `depth` requests in flight, completions signalled on an eventfd.
    pub fn new(depth: u32) -> std::io::Result<Self> {
        let ring = IoUring::new(depth.next_power_of_two())?;
        let event = EventFd::new(libc::EFD_NONBLOCK)?;
        // Only completions that happen after the submission returns: inline ones are
        // reaped right after submitting.
        ring.submitter().register_eventfd_async(event.as_raw_fd())?;
        Ok(Uring {
            ring,
            event,
            slots: (0..depth).map(|_| None).collect(),
            free: (0..depth as usize).rev().collect(),
            in_flight: 0,
            unsubmitted: 0,
        })
    }

    /// The eventfd written when requests complete.
    pub fn event_fd(&self) -> RawFd {
        self.event.as_raw_fd()
    }

    /// Requests handed to the ring and not reaped yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether this engine serves `request` (reads, writes and flushes of a writable disk;
    /// the rest is done synchronously).
    pub fn serves(request: &Request, disk: &DiskFile) -> bool {
        match request.kind {
            T_IN => true,
            T_OUT | T_FLUSH => !disk.read_only(),
            _ => false,
        }
    }

    /// Queues `request` (chain `head`); it goes to the kernel at the next [`Uring::submit`].
    /// `Err` with a status if it cannot be started (a buffer outside guest memory, the ring
    /// full): the caller completes it at once.
    pub fn start(
        &mut self,
        request: Request,
        head: u16,
        mem: &GuestMemoryMmap,
        disk: &DiskFile,
    ) -> Result<(), u8> {
        let Some(&slot) = self.free.last() else {
            return Err(S_IOERR);
        };
        let bytes = request.data_len();
        let fd = types::Fd(disk.fd());
        let (entry, iov) = match request.kind {
            T_FLUSH => {
                let e = opcode::Fsync::new(fd).flags(types::FsyncFlags::DATASYNC);
                // A flush covers every write before it: the ring starts it only once all
                // requests submitted earlier have completed.
                let drain = if self.in_flight > 0 {
                    squeue::Flags::IO_DRAIN
                } else {
                    squeue::Flags::empty()
                };
                (e.build().flags(drain), None)
            }
            kind => {
                let iov = iovecs(&request, mem).map_err(|_| S_IOERR)?;
                let (ptr, n) = (iov.0.as_ptr(), iov.0.len() as u32);
                let offset = request.sector * SECTOR_SIZE;
                let e = if kind == T_IN {
                    opcode::Readv::new(fd, ptr, n).offset(offset).build()
                } else {
                    opcode::Writev::new(fd, ptr, n).offset(offset).build()
                };
                let e = if bytes >= ASYNC_BYTES {
                    e.flags(squeue::Flags::ASYNC)
                } else {
                    e
                };
                (e, Some(iov))
            }
        };
        let entry = entry.user_data(slot as u64);
        // SAFETY: the buffers the entry names (guest memory and the boxed iovecs, kept in the
        // slot) stay valid until its completion is reaped; a drop waits for that.
        if unsafe { self.ring.submission().push(&entry) }.is_err() {
            return Err(S_IOERR);
        }
        self.free.pop();
        self.slots[slot] = Some(Pending {
            head,
            request,
            bytes,
            _iov: iov,
        });
        self.in_flight += 1;
        self.unsubmitted += 1;
        Ok(())
    }

    /// Hands the queued requests to the kernel, one system call for all of them.
    pub fn submit(&mut self) {
        if self.unsubmitted == 0 {
            return;
        }
        self.enter(0);
    }

    /// Submits what is queued and waits for `want` completions; false if the kernel
    /// refused (logged), so that no caller waits for ever.
    fn enter(&mut self, want: usize) -> bool {
        loop {
            match self.ring.submit_and_wait(want) {
                Ok(_) => {
                    self.unsubmitted = self.ring.submission().len();
                    return true;
                }
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => {
                    tracing::warn!("io_uring submission failed: {e}");
                    return false;
                }
            }
        }
    }

    /// Takes every completion there is, finishing short or failed transfers synchronously,
    /// and hands each to `done`.
    pub fn reap(
        &mut self,
        mem: &GuestMemoryMmap,
        disk: &DiskFile,
        id: &[u8; ID_LEN],
        mut done: impl FnMut(Finished),
    ) {
        let _ = self.event.read();
        loop {
            let Some(cqe) = self.ring.completion().next() else {
                return;
            };
            let slot = cqe.user_data() as usize;
            let Some(pending) = self.slots.get_mut(slot).and_then(Option::take) else {
                continue;
            };
            self.free.push(slot);
            self.in_flight -= 1;
            done(finish(pending, cqe.result(), mem, disk, id));
        }
    }

    /// Waits until nothing is in flight, handing every completion to `done`.
    pub fn drain(
        &mut self,
        mem: &GuestMemoryMmap,
        disk: &DiskFile,
        id: &[u8; ID_LEN],
        mut done: impl FnMut(Finished),
    ) {
        while self.in_flight > 0 && self.enter(1) {
            self.reap(mem, disk, id, &mut done);
        }
    }

    /// Waits for every request in flight and forgets them (a device reset: the driver no
    /// longer expects them, but the kernel must be done with its buffers before it reuses
    /// them).
    pub fn abandon(&mut self) {
        while self.in_flight > 0 && self.enter(1) {
            while let Some(cqe) = self.ring.completion().next() {
                let slot = cqe.user_data() as usize;
                if self.slots.get_mut(slot).and_then(Option::take).is_some() {
                    self.free.push(slot);
                    self.in_flight -= 1;
                }
            }
        }
        let _ = self.event.read();
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        self.abandon();
    }
}

/// The request's buffers as iovecs, each checked to lie in guest memory.
fn iovecs(request: &Request, mem: &GuestMemoryMmap) -> std::io::Result<IoVecs> {
    let iov = request
        .data
        .iter()
        .map(|d| {
            Ok(libc::iovec {
                iov_base: guest_ptr(mem, d.addr, d.len as usize)?.cast(),
                iov_len: d.len as usize,
            })
        })
        .collect::<std::io::Result<Box<[_]>>>()?;
    Ok(IoVecs(iov))
}

/// The outcome of a completed entry; a short or failed read or write is done again
/// synchronously (which zero-fills past the end of a file that shrank, retries interrupted
/// calls and reports errors).
fn finish(
    pending: Pending,
    result: i32,
    mem: &GuestMemoryMmap,
    disk: &DiskFile,
    id: &[u8; ID_LEN],
) -> Finished {
    let Pending {
        head,
        request,
        bytes,
        ..
    } = pending;
    let (status, len) = match request.kind {
        T_FLUSH if result < 0 => {
            tracing::warn!(
                "virtio-blk flush failed: {}",
                std::io::Error::from_raw_os_error(-result)
            );
            (S_IOERR, 1)
        }
        T_FLUSH => (S_OK, 1),
        kind => {
            if kind == T_OUT {
                disk.log().mark(request.sector * SECTOR_SIZE, bytes);
            }
            if u64::try_from(result).is_ok_and(|n| n == bytes) {
                let moved = if kind == T_IN { bytes as u32 } else { 0 };
                (S_OK, moved + 1)
            } else {
                request.execute(mem, disk, id)
            }
        }
    };
    Finished {
        head,
        status_addr: request.status,
        status,
        len,
        kind: request.kind,
        bytes,
    }
}
