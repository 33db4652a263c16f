//! The virtio block driver (spec 5.2), polled: requests are chains of a 16-byte header, the
//! data buffers and a 1-byte status; completions are taken from the used ring, blocking on the
//! wait port in between.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::mmio::{InitError, MmioDevice};
use super::queue::{AddError, Buffer, Virtqueue};
use crate::time::{self, Clock};
use crate::wait::{self, Wake};

/// Bytes per sector: the unit of `capacity` and of request offsets.
pub const SECTOR_SIZE: u64 = 512;
/// `VIRTIO_BLK_F_RO`: the disk is read-only.
pub const F_RO: u64 = 1 << 5;
/// `VIRTIO_BLK_F_BLK_SIZE`: config space reports the block size.
pub const F_BLK_SIZE: u64 = 1 << 6;
/// `VIRTIO_BLK_F_FLUSH`: the device takes flush requests.
pub const F_FLUSH: u64 = 1 << 9;

/// Request type: read.
pub const T_IN: u32 = 0;
/// Request type: write.
pub const T_OUT: u32 = 1;
/// Request type: flush.
pub const T_FLUSH: u32 = 4;
/// Request type: device ID string.
pub const T_GET_ID: u32 = 8;

/// Status: success.
pub const S_OK: u8 = 0;
/// Status: I/O error.
pub const S_IOERR: u8 = 1;
/// Status: unsupported request.
pub const S_UNSUPP: u8 = 2;
/// What the status byte holds until the device writes it.
const S_PENDING: u8 = 0xff;

/// Largest data descriptor; bigger buffers are split over several descriptors.
pub const MAX_SEGMENT: usize = 1 << 20;
/// Queue size the driver asks for.
pub const QUEUE_SIZE: u16 = 256;
/// How long one request may take before the driver gives up on the device.
pub const REQUEST_TIMEOUT_MS: u64 = 30_000;
/// How long to poll for a completion before blocking on the wait port.
const SPIN_MICROS: u64 = 30;
/// Longest single wait on the wait port; on timeout the driver checks the device status
/// and notifies again.
const WAIT_SLICE_MICROS: u64 = 200_000;

/// The request header the device reads (`struct virtio_blk_req` up to the data).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ReqHeader {
    /// `T_IN`, `T_OUT`, `T_FLUSH` or `T_GET_ID`.
    pub kind: u32,
    /// Zero.
    pub reserved: u32,
    /// First sector (512-byte units) of the request.
    pub sector: u64,
}

const _: () = assert!(size_of::<ReqHeader>() == 16);

impl ReqHeader {
    /// A header for `kind` at `sector`.
    pub const fn new(kind: u32, sector: u64) -> Self {
        Self {
            kind,
            reserved: 0,
            sector,
        }
    }

    /// The header's 16 bytes as the device reads them (little-endian).
    pub fn to_bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..4].copy_from_slice(&self.kind.to_le_bytes());
        out[4..8].copy_from_slice(&self.reserved.to_le_bytes());
        out[8..].copy_from_slice(&self.sector.to_le_bytes());
        out
    }
}

/// True if the device writes the data buffers of a `kind` request.
pub const fn device_writes_data(kind: u32) -> bool {
    matches!(kind, T_IN | T_GET_ID)
}

/// The descriptor chain of one request: header (device-readable), the data split into
/// [`MAX_SEGMENT`]-byte pieces (device-writable for reads), then the status byte
/// (device-writable).
pub fn request_chain(
    kind: u32,
    header_addr: u64,
    data_addr: u64,
    data_len: usize,
    status_addr: u64,
) -> Vec<Buffer> {
    let mut chain = vec![Buffer::readable(header_addr, 16)];
    let writes = device_writes_data(kind);
    let mut offset = 0;
    while offset < data_len {
        let len = (data_len - offset).min(MAX_SEGMENT);
        chain.push(Buffer {
            addr: data_addr + offset as u64,
            len: len as u32,
            device_writes: writes,
        });
        offset += len;
    }
    chain.push(Buffer::writable(status_addr, 1));
    chain
}

/// A finished request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// What [`Blk::submit`] returned for it.
    pub token: u16,
    /// The status byte: [`S_OK`], [`S_IOERR`], [`S_UNSUPP`] or something else.
    pub status: u8,
}

/// Why a request did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkError {
    /// The device set `DEVICE_NEEDS_RESET`.
    NeedsReset,
    /// No completion within [`REQUEST_TIMEOUT_MS`].
    Timeout,
    /// The device returned a descriptor id that was not in flight.
    BadUsed(u32),
    /// Nothing is in flight to wait for.
    Idle,
    /// The request could not be queued.
    Queue(AddError),
}

impl fmt::Display for BlkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NeedsReset => write!(f, "device needs reset"),
            Self::Timeout => write!(f, "request timed out"),
            Self::BadUsed(id) => write!(f, "device returned bad descriptor id {id}"),
            Self::Idle => write!(f, "no request in flight"),
            Self::Queue(e) => write!(f, "cannot queue request: {e:?}"),
        }
    }
}

/// One virtio block device, live.
#[derive(Debug)]
pub struct Blk {
    dev: MmioDevice,
    queue: Virtqueue,
    /// Request headers, indexed by head descriptor.
    headers: Vec<[u8; 16]>,
    /// Status bytes, indexed by head descriptor.
    status: Vec<u8>,
    capacity: u64,
    read_only: bool,
    flush: bool,
    clock: Clock,
    kick_pending: bool,
}

impl Blk {
    /// Brings the device up: features `VERSION_1` (+ `RO`, `FLUSH` if offered), one queue.
    pub fn init(dev: MmioDevice, clock: Clock) -> Result<Self, InitError> {
        let features = dev.negotiate(F_RO | F_FLUSH)?;
        let queue = match dev.setup_queue(0, QUEUE_SIZE) {
            Ok(q) => q,
            Err(e) => {
                dev.fail();
                return Err(e);
            }
        };
        let capacity = dev.config_u64(0);
        let size = usize::from(queue.size());
        dev.driver_ok()?;
        Ok(Self {
            dev,
            queue,
            headers: vec![[0; 16]; size],
            status: vec![S_PENDING; size],
            capacity,
            read_only: features & F_RO != 0,
            flush: features & F_FLUSH != 0,
            clock,
            kick_pending: false,
        })
    }

    /// Capacity in sectors.
    pub fn capacity_sectors(&self) -> u64 {
        self.capacity
    }

    /// Capacity in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity.saturating_mul(SECTOR_SIZE)
    }

    /// True if the device is read-only (`VIRTIO_BLK_F_RO`).
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// True if the device takes flushes (`VIRTIO_BLK_F_FLUSH`).
    pub fn has_flush(&self) -> bool {
        self.flush
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> u16 {
        self.queue.in_flight()
    }

    /// Queues a request (without notifying: call [`Blk::kick`]); returns its token.
    ///
    /// # Safety
    /// `data` must be valid for `len` bytes (writable for reads) until the request completes,
    /// and not otherwise accessed meanwhile.
    pub unsafe fn submit(
        &mut self,
        kind: u32,
        sector: u64,
        data: *mut u8,
        len: usize,
    ) -> Result<u16, BlkError> {
        let head = self
            .queue
            .next_head()
            .ok_or(BlkError::Queue(AddError::Full))?;
        let slot = usize::from(head);
        self.headers[slot] = ReqHeader::new(kind, sector).to_bytes();
        self.status[slot] = S_PENDING;
        let chain = request_chain(
            kind,
            self.headers[slot].as_ptr() as u64,
            data as u64,
            len,
            (&raw const self.status[slot]) as u64,
        );
        let token = self.queue.add(&chain).map_err(BlkError::Queue)?;
        debug_assert_eq!(token, head);
        self.kick_pending = true;
        Ok(token)
    }

    /// Notifies the device of the requests queued since the last kick (unless it asked not
    /// to be notified).
    pub fn kick(&mut self) {
        if self.kick_pending && self.queue.should_notify() {
            self.dev.notify(0);
        }
        self.kick_pending = false;
    }

    /// A completed request, if there is one (never blocks).
    pub fn poll(&mut self) -> Option<Result<Completion, BlkError>> {
        Some(match self.queue.pop_used()? {
            Ok(used) => {
                let slot = usize::from(used.head);
                // SAFETY: the status byte is ours again now the chain is back from the device.
                let status = unsafe { (&raw const self.status[slot]).read_volatile() };
                Ok(Completion {
                    token: used.head,
                    status,
                })
            }
            Err(bad) => Err(BlkError::BadUsed(bad.id)),
        })
    }

    /// Kicks, then waits for the next completion, blocking on the wait port.
    pub fn wait(&mut self) -> Result<Completion, BlkError> {
        self.kick();
        let deadline = time::now().saturating_add(self.clock.ticks_from_millis(REQUEST_TIMEOUT_MS));
        loop {
            // Completions usually follow within microseconds: poll briefly before paying for
            // a blocking wait on the port.
            let spin_until = time::now().saturating_add(self.clock.ticks_from_micros(SPIN_MICROS));
            while time::now() < spin_until {
                if let Some(done) = self.poll() {
                    return done;
                }
                core::hint::spin_loop();
            }
            if let Some(done) = self.poll() {
                return done;
            }
            if self.queue.in_flight() == 0 {
                return Err(BlkError::Idle);
            }
            let now = time::now();
            if now >= deadline {
                return Err(BlkError::Timeout);
            }
            let micros = self
                .clock
                .micros_ceil(deadline - now)
                .min(WAIT_SLICE_MICROS);
            match wait::wait_micros(micros) {
                Wake::Device => self.dev.ack_interrupt(),
                Wake::Timeout => {
                    if self.dev.needs_reset() {
                        return Err(BlkError::NeedsReset);
                    }
                    // Harmless if the device already saw the requests (spec 2.7.13.3).
                    self.dev.notify(0);
                }
            }
        }
    }

    /// One request, synchronously (nothing else may be in flight); returns its status.
    pub fn request(&mut self, kind: u32, sector: u64, buf: &mut [u8]) -> Result<u8, BlkError> {
        // SAFETY: `buf` is borrowed until the request completes below, or the device is
        // abandoned (reset) on error.
        let token = unsafe { self.submit(kind, sector, buf.as_mut_ptr(), buf.len())? };
        let done = self.wait_or_reset()?;
        debug_assert_eq!(done.token, token);
        Ok(done.status)
    }

    /// Like [`Blk::wait`], but resets the device on error so it no longer touches the
    /// buffers of requests still in flight.
    pub fn wait_or_reset(&mut self) -> Result<Completion, BlkError> {
        self.wait().inspect_err(|_| self.dev.reset())
    }

    /// Flushes the device's write cache (a no-op success without `VIRTIO_BLK_F_FLUSH`).
    pub fn flush(&mut self) -> Result<u8, BlkError> {
        if !self.flush {
            return Ok(S_OK);
        }
        self.request(T_FLUSH, 0, &mut [])
    }

    /// Abandons the device: resets it so it stops using the rings and buffers.
    pub fn reset(&mut self) {
        self.dev.reset();
    }
}

impl Drop for Blk {
    fn drop(&mut self) {
        self.dev.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_encoding() {
        assert_eq!(
            ReqHeader::new(T_OUT, 0x0102_0304_0506_0708).to_bytes(),
            [1, 0, 0, 0, 0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]
        );
        assert_eq!(ReqHeader::new(T_FLUSH, 0).to_bytes()[0], 4);
        assert_eq!(ReqHeader::new(T_GET_ID, 0).to_bytes()[0], 8);
    }

    #[test]
    fn read_chain_has_writable_data() {
        let chain = request_chain(T_IN, 0x100, 0x10000, 4096, 0x200);
        assert_eq!(
            chain,
            [
                Buffer::readable(0x100, 16),
                Buffer::writable(0x10000, 4096),
                Buffer::writable(0x200, 1),
            ]
        );
    }

    #[test]
    fn write_chain_splits_big_buffers() {
        let len = 2 * MAX_SEGMENT + 512;
        let chain = request_chain(T_OUT, 0x100, 0x100000, len, 0x200);
        assert_eq!(
            chain,
            [
                Buffer::readable(0x100, 16),
                Buffer::readable(0x100000, MAX_SEGMENT as u32),
                Buffer::readable(0x100000 + MAX_SEGMENT as u64, MAX_SEGMENT as u32),
                Buffer::readable(0x100000 + 2 * MAX_SEGMENT as u64, 512),
                Buffer::writable(0x200, 1),
            ]
        );
    }

    #[test]
    fn flush_chain_has_no_data() {
        assert_eq!(
            request_chain(T_FLUSH, 0x100, 0, 0, 0x200),
            [Buffer::readable(0x100, 16), Buffer::writable(0x200, 1)]
        );
    }
}
