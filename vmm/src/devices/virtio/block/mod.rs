//! virtio-blk: a disk backed by a raw file, with read, write, flush, get-id, discard and
//! write-zeroes, read-only disks, a rate limiter (operations and bytes per second), two
//! engines (synchronous system calls on the device thread, or an io_uring) and a log of the
//! blocks written (for snapshots of a running instance).

pub mod dirty;
pub mod disk;
pub mod request;
pub mod uring;

use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use vm_memory::{Bytes, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::timerfd::TimerFd;

use super::interrupt::{USED_BUFFER, VirtioInterrupt};
use super::queue::Queue;
use super::{ActivateError, Activation, DeviceCounters, DeviceEvent, TYPE_BLOCK, VirtioDevice};
use crate::devices::rate_limiter::RateLimiter;
use dirty::WriteLog;
use disk::{DiskFile, SECTOR_SIZE};
use request::{ID_LEN, Request, S_IOERR, status_of};
use uring::{Finished, Uring};

/// Feature: most segments in a request is in `seg_max`.
const F_SEG_MAX: u64 = 1 << 2;
/// Feature: the disk is read-only.
const F_RO: u64 = 1 << 5;
/// Feature: flush is supported.
const F_FLUSH: u64 = 1 << 9;
/// Feature: discard is supported.
const F_DISCARD: u64 = 1 << 13;
/// Feature: write-zeroes is supported.
const F_WRITE_ZEROES: u64 = 1 << 14;
/// Used-ring flag: the driver need not notify the device.
const USED_F_NO_NOTIFY: u16 = 1;
/// Size of the one request queue.
pub const QUEUE_SIZE: u16 = 256;
/// Length of the config space we fill in.
const CONFIG_LEN: usize = 60;
/// Most sectors in one discard or write-zeroes segment.
const MAX_ZERO_SECTORS: u32 = u32::MAX / 2;
/// A synchronous request of at least this many bytes is announced to the guest as soon as it
/// is done, so that it can reuse the buffer while the next ones are served.
const SIGNAL_EACH_BYTES: u64 = 64 << 10;

/// How a disk's requests are carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// One system call at a time on the device thread.
    Sync,
    /// Reads, writes and flushes through an io_uring, many in flight; the synchronous
    /// engine if the kernel refuses io_uring.
    #[default]
    IoUring,
}

impl std::str::FromStr for Engine {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "sync" => Ok(Engine::Sync),
            "io_uring" => Ok(Engine::IoUring),
            _ => Err(()),
        }
    }
}

/// Why a disk could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The image could not be opened.
    #[error("cannot open disk {path}")]
    Open {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The rate-limit timer or an eventfd could not be made.
    #[error("cannot create the disk's rate-limit timer or eventfd")]
    Timer(#[source] std::io::Error),
}

struct Active {
    memory: GuestMemoryMmap,
    queue: Queue,
    interrupt: VirtioInterrupt,
}

/// The rate limiter, its timer, and since when the queue waits for it.
struct Throttle {
    limiter: RateLimiter,
    timer: TimerFd,
    since: Option<Instant>,
}

impl Throttle {
    /// Asks the rate limiter; false (and the timer armed) if the request must wait.
    fn admit(&mut self, request: &Request, counters: &DeviceCounters, label: &str) -> bool {
        if let Err(wait) = self.limiter.admit(request.data_len(), Instant::now()) {
            self.since.get_or_insert_with(Instant::now);
            if let Err(err) = self.timer.reset(wait, None) {
                tracing::warn!("{label}: rate-limit timer failed: {err}");
            }
            return false;
        }
        if let Some(since) = self.since.take() {
            DeviceCounters::add(&counters.throttled_us, micros_since(since));
        }
        true
    }
}

/// A virtio-blk device.
pub struct Block {
    disk: DiskFile,
    id: [u8; ID_LEN],
    label: String,
    throttle: Throttle,
    active: Option<Active>,
    counters: DeviceCounters,
    /// The asynchronous engine; `None` for the synchronous one.
    uring: Option<Uring>,
    /// When requests started being in flight on the ring.
    busy_since: Option<Instant>,
    /// Written when the queue has more than one turn's worth of requests.
    more: EventFd,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("label", &self.label)
            .field("disk", &self.disk)
            .finish_non_exhaustive()
    }
}

impl Block {
    /// A disk on the file at `path`, identified to the guest as `id` (at most 20 bytes),
    /// served by `engine`.
    pub fn new(
        path: &Path,
        read_only: bool,
        id: &str,
        limiter: RateLimiter,
        engine: Engine,
    ) -> Result<Self, BlockError> {
        let disk = DiskFile::open(path, read_only).map_err(|source| BlockError::Open {
            path: path.to_owned(),
            source,
        })?;
        let uring = match engine {
            Engine::Sync => None,
            Engine::IoUring => match Uring::new(u32::from(QUEUE_SIZE)) {
                Ok(ring) => Some(ring),
                Err(err) => {
                    tracing::warn!(
                        "disk {id}: io_uring is not available ({err}): using the synchronous engine"
                    );
                    None
                }
            },
        };
        let mut id_bytes = [0u8; ID_LEN];
        let n = id.len().min(ID_LEN);
        id_bytes[..n].copy_from_slice(&id.as_bytes()[..n]);
        Ok(Block {
            disk,
            id: id_bytes,
            label: format!("block {id}"),
            throttle: Throttle {
                limiter,
                timer: TimerFd::new().map_err(|e| BlockError::Timer(e.into()))?,
                since: None,
            },
            active: None,
            counters: DeviceCounters::default(),
            uring,
            busy_since: None,
            more: EventFd::new(libc::EFD_NONBLOCK).map_err(BlockError::Timer)?,
        })
    }

    /// The engine in use (the synchronous one if io_uring was asked for but refused).
    pub fn engine(&self) -> Engine {
        if self.uring.is_some() {
            Engine::IoUring
        } else {
            Engine::Sync
        }
    }

    /// The log of the blocks written, for the control API.
    pub fn log(&self) -> Arc<WriteLog> {
        self.disk.log().clone()
    }

    fn config_space(&self) -> [u8; CONFIG_LEN] {
        let mut c = [0u8; CONFIG_LEN];
        c[0..8].copy_from_slice(&(self.disk.size() / SECTOR_SIZE).to_le_bytes());
        c[12..16].copy_from_slice(&(u32::from(QUEUE_SIZE) - 2).to_le_bytes()); // seg_max
        c[36..40].copy_from_slice(&MAX_ZERO_SECTORS.to_le_bytes()); // max_discard_sectors
        c[40..44].copy_from_slice(&1u32.to_le_bytes()); // max_discard_seg
        c[44..48].copy_from_slice(&1u32.to_le_bytes()); // discard_sector_alignment
        c[48..52].copy_from_slice(&MAX_ZERO_SECTORS.to_le_bytes()); // max_write_zeroes_sectors
        c[52..56].copy_from_slice(&1u32.to_le_bytes()); // max_write_zeroes_seg
        c[56] = 1; // write_zeroes_may_unmap
        c
    }

    /// Serves every available request, stopping early when the rate limiter says wait
    /// (unless `unlimited`); requests for the ring are submitted together at the end.
    fn process_queue(&mut self, unlimited: bool) {
        match self.serve_available(unlimited) {
            Ok(()) => self.reap(false),
            Err(Broken) => self.fail_queue(),
        }
    }

    fn serve_available(&mut self, unlimited: bool) -> Result<(), Broken> {
        let Some(active) = self.active.as_mut() else {
            return Ok(());
        };
        let mut signal = false;
        // While the loop runs the driver need not notify: what it adds is seen here.
        let mut quiet = notifications(active, false);
        let mut budget = u32::from(QUEUE_SIZE);
        loop {
            if budget == 0 {
                // A driver that keeps adding does not hold the device thread: the rest is
                // served on the next turn of the event loop.
                notifications(active, true);
                let _ = self.more.write(1);
                break;
            }
            budget -= 1;
            let chain = match active.queue.pop(&active.memory) {
                Ok(Some(chain)) => chain,
                Ok(None) if quiet => {
                    // Notifications back on, then one more look: a request added just before
                    // is served now, one added after is notified.
                    notifications(active, true);
                    fence(Ordering::SeqCst);
                    quiet = false;
                    continue;
                }
                Ok(None) => break,
                Err(err) => {
                    tracing::warn!("{}: malformed queue: {err}", self.label);
                    DeviceCounters::add(&self.counters.errors, 1);
                    return Err(Broken);
                }
            };
            let head = chain.head;
            let request = match Request::parse(&chain, &active.memory, self.disk.size()) {
                Ok(request) => request,
                Err(err) => {
                    tracing::debug!("{}: bad request: {err}", self.label);
                    DeviceCounters::add(&self.counters.errors, 1);
                    complete(active, head, status_of(&chain), S_IOERR, 1)?;
                    signal = true;
                    continue;
                }
            };
            if !unlimited && !self.throttle.admit(&request, &self.counters, &self.label) {
                active.queue.undo_pop();
                notifications(active, true);
                break;
            }
            let ring = self.uring.as_mut();
            if let Some(ring) = ring.filter(|_| Uring::serves(&request, &self.disk)) {
                let status_addr = request.status;
                match ring.start(request, head, &active.memory, &self.disk) {
                    Ok(()) => {
                        self.busy_since.get_or_insert_with(Instant::now);
                    }
                    Err(status) => {
                        DeviceCounters::add(&self.counters.errors, 1);
                        complete(active, head, Some(status_addr), status, 1)?;
                        signal = true;
                    }
                }
                continue;
            }
            let started = Instant::now();
            let (status, len) = request.execute(&active.memory, &self.disk, &self.id);
            DeviceCounters::add(&self.counters.busy_us, micros_since(started));
            count(&self.counters, request.kind, request.data_len(), status);
            complete(active, head, Some(request.status), status, len)?;
            signal = true;
            if request.data_len() >= SIGNAL_EACH_BYTES {
                active.interrupt.trigger(USED_BUFFER);
                signal = false;
            }
        }
        if let Some(ring) = self.uring.as_mut() {
            ring.submit();
        }
        if signal {
            active.interrupt.trigger(USED_BUFFER);
        }
        Ok(())
    }

    /// Puts the ring's completed requests in the used ring (waiting for all of them if
    /// `wait`), with one interrupt for the batch.
    fn reap(&mut self, wait: bool) {
        let (Some(ring), Some(active)) = (self.uring.as_mut(), self.active.as_mut()) else {
            return;
        };
        let mut finished: Vec<Finished> = Vec::new();
        let collect = |f: Finished| finished.push(f);
        if wait {
            ring.drain(&active.memory, &self.disk, &self.id, collect);
        } else {
            ring.reap(&active.memory, &self.disk, &self.id, collect);
        }
        if ring.in_flight() == 0 {
            if let Some(since) = self.busy_since.take() {
                DeviceCounters::add(&self.counters.busy_us, micros_since(since));
            }
        }
        if finished.is_empty() {
            return;
        }
        let mut broken = false;
        for f in &finished {
            count(&self.counters, f.kind, f.bytes, f.status);
            if complete(active, f.head, Some(f.status_addr), f.status, f.len).is_err() {
                broken = true;
                break;
            }
        }
        if broken {
            self.fail_queue();
        } else {
            active.interrupt.trigger(USED_BUFFER);
        }
    }

    /// The queue is broken: the device needs a reset; requests in flight are waited for.
    fn fail_queue(&mut self) {
        if let Some(active) = self.active.take() {
            active.interrupt.signal_needs_reset();
        }
        if let Some(ring) = self.uring.as_mut() {
            ring.abandon();
        }
        self.busy_since = None;
    }
}

/// Microseconds since `t`.
fn micros_since(t: Instant) -> u64 {
    t.elapsed().as_micros() as u64
}

/// Sets or clears `VIRTQ_USED_F_NO_NOTIFY` in the used ring's flags (the device offers no
/// EVENT_IDX, so the driver reads the flag); true if notifications are now off.
fn notifications(active: &Active, on: bool) -> bool {
    let flags: u16 = if on { 0 } else { USED_F_NO_NOTIFY };
    let written = active
        .memory
        .write_obj(flags, active.queue.used_ring)
        .is_ok();
    !on && written
}

/// The used ring cannot be written: the device needs a reset.
#[derive(Debug)]
struct Broken;

/// Writes a request's status byte and returns its chain to the used ring.
fn complete(
    active: &mut Active,
    head: u16,
    status_addr: Option<vm_memory::GuestAddress>,
    status: u8,
    len: u32,
) -> Result<(), Broken> {
    let written = match status_addr {
        Some(addr) if active.memory.write_obj(status, addr).is_ok() => len,
        _ => 0,
    };
    active
        .queue
        .add_used(&active.memory, head, written)
        .map_err(|_| Broken)
}

/// Counts one finished request.
fn count(c: &DeviceCounters, kind: u32, bytes: u64, status: u8) {
    if status != request::S_OK {
        DeviceCounters::add(&c.errors, 1);
        return;
    }
    DeviceCounters::add(&c.requests, 1);
    match kind {
        request::T_IN => {
            DeviceCounters::add(&c.ops_in, 1);
            DeviceCounters::add(&c.bytes_in, bytes);
        }
        request::T_OUT => {
            DeviceCounters::add(&c.ops_out, 1);
            DeviceCounters::add(&c.bytes_out, bytes);
        }
        _ => {}
    }
}

impl VirtioDevice for Block {
    fn device_type(&self) -> u32 {
        TYPE_BLOCK
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    fn features(&self) -> u64 {
        let base = F_SEG_MAX | F_FLUSH;
        if self.disk.read_only() {
            base | F_RO
        } else {
            base | F_DISCARD | F_WRITE_ZEROES
        }
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        super::read_config_bytes(&self.config_space(), offset, data);
    }

    fn activate(&mut self, mut activation: Activation) -> Result<(), ActivateError> {
        let queue = activation.queues.remove(0);
        if !queue.ready {
            return Err(ActivateError::QueueNotReady(0));
        }
        self.active = Some(Active {
            memory: activation.memory,
            queue,
            interrupt: activation.interrupt,
        });
        self.process_queue(false);
        Ok(())
    }

    fn reset(&mut self) {
        // The driver may reuse its buffers once the reset is done: the kernel must be done
        // with them first.
        if let Some(ring) = self.uring.as_mut() {
            ring.abandon();
        }
        self.busy_since = None;
        self.active = None;
        self.throttle.since = None;
        let _ = self.throttle.timer.clear();
    }

    fn handle_event(&mut self, event: DeviceEvent) {
        match event {
            DeviceEvent::Queue(0) => self.process_queue(false),
            DeviceEvent::Fd(0) => {
                let _ = self.throttle.timer.wait();
                self.process_queue(false);
            }
            DeviceEvent::Fd(1) => {
                let _ = self.more.read();
                self.process_queue(false);
            }
            DeviceEvent::Fd(2) => self.reap(false),
            _ => {}
        }
    }

    fn drain(&mut self) {
        self.process_queue(true);
        self.reap(true);
    }

    fn write_log(&self) -> Option<(String, Arc<WriteLog>)> {
        let id = String::from_utf8_lossy(&self.id);
        Some((id.trim_end_matches('\0').to_owned(), self.log()))
    }

    fn extra_fds(&self) -> Vec<RawFd> {
        let mut fds = vec![self.throttle.timer.as_raw_fd(), self.more.as_raw_fd()];
        fds.extend(self.uring.as_ref().map(Uring::event_fd));
        fds
    }

    fn counters(&self) -> &DeviceCounters {
        &self.counters
    }

    fn describe(&self) -> String {
        self.label.clone()
    }

    fn identity(&self) -> String {
        let id = String::from_utf8_lossy(&self.id);
        format!(
            "block id={} sectors={} read_only={}",
            id.trim_end_matches('\0'),
            self.disk.size() / SECTOR_SIZE,
            self.disk.read_only()
        )
    }

    fn active_queues(&self) -> Option<Vec<Queue>> {
        self.active.as_ref().map(|a| vec![a.queue.clone()])
    }
}

#[cfg(test)]
mod inflight_tests;
#[cfg(test)]
mod tests;
