//! virtio-blk: a disk backed by a raw file, with read, write, flush, get-id, discard and
//! write-zeroes, read-only disks, and a rate limiter (operations and bytes per second).

pub mod disk;
pub mod request;

use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::time::Instant;

use vm_memory::{Bytes, GuestMemoryMmap};
use vmm_sys_util::timerfd::TimerFd;

use super::interrupt::{USED_BUFFER, VirtioInterrupt};
use super::queue::Queue;
use super::{ActivateError, Activation, DeviceCounters, DeviceEvent, TYPE_BLOCK, VirtioDevice};
use crate::devices::rate_limiter::RateLimiter;
use disk::{DiskFile, SECTOR_SIZE};
use request::{ID_LEN, Request, S_IOERR, status_of};

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
/// Size of the one request queue.
pub const QUEUE_SIZE: u16 = 256;
/// Length of the config space we fill in.
const CONFIG_LEN: usize = 60;
/// Most sectors in one discard or write-zeroes segment.
const MAX_ZERO_SECTORS: u32 = u32::MAX / 2;

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
    /// The rate-limit timer could not be made.
    #[error("cannot create the disk's rate-limit timer")]
    Timer(#[source] std::io::Error),
}

struct Active {
    memory: GuestMemoryMmap,
    queue: Queue,
    interrupt: VirtioInterrupt,
}

/// A virtio-blk device.
pub struct Block {
    disk: DiskFile,
    id: [u8; ID_LEN],
    label: String,
    limiter: RateLimiter,
    timer: TimerFd,
    /// When the queue started waiting for the rate limiter.
    throttled_since: Option<Instant>,
    active: Option<Active>,
    counters: DeviceCounters,
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
    /// A disk on the file at `path`, identified to the guest as `id` (at most 20 bytes).
    pub fn new(
        path: &Path,
        read_only: bool,
        id: &str,
        limiter: RateLimiter,
    ) -> Result<Self, BlockError> {
        let disk = DiskFile::open(path, read_only).map_err(|source| BlockError::Open {
            path: path.to_owned(),
            source,
        })?;
        let mut id_bytes = [0u8; ID_LEN];
        let n = id.len().min(ID_LEN);
        id_bytes[..n].copy_from_slice(&id.as_bytes()[..n]);
        Ok(Block {
            disk,
            id: id_bytes,
            label: format!("block {id}"),
            limiter,
            timer: TimerFd::new().map_err(|e| BlockError::Timer(e.into()))?,
            throttled_since: None,
            active: None,
            counters: DeviceCounters::default(),
        })
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

    /// Serves every available request, stopping early when the rate limiter says wait.
    fn process_queue(&mut self) {
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let Active {
            memory,
            queue,
            interrupt,
        } = active;
        let mut completed = false;
        loop {
            let chain = match queue.pop(memory) {
                Ok(Some(chain)) => chain,
                Ok(None) => break,
                Err(err) => {
                    tracing::warn!("{}: malformed queue: {err}", self.label);
                    DeviceCounters::add(&self.counters.errors, 1);
                    interrupt.signal_needs_reset();
                    self.active = None;
                    return;
                }
            };
            let (status_addr, status, len) = match Request::parse(&chain, memory, self.disk.size())
            {
                Ok(request) => {
                    if let Err(wait) = self.limiter.admit(request.data_len(), Instant::now()) {
                        queue.undo_pop();
                        self.throttled_since.get_or_insert_with(Instant::now);
                        if let Err(err) = self.timer.reset(wait, None) {
                            tracing::warn!("{}: rate-limit timer failed: {err}", self.label);
                        }
                        break;
                    }
                    if let Some(since) = self.throttled_since.take() {
                        DeviceCounters::add(
                            &self.counters.throttled_us,
                            since.elapsed().as_micros() as u64,
                        );
                    }
                    let started = Instant::now();
                    let (status, len) = request.execute(memory, &self.disk, &self.id);
                    let busy = started.elapsed().as_micros() as u64;
                    DeviceCounters::add(&self.counters.busy_us, busy);
                    count(&self.counters, &request, status);
                    (Some(request.status), status, len)
                }
                Err(err) => {
                    tracing::debug!("{}: bad request: {err}", self.label);
                    DeviceCounters::add(&self.counters.errors, 1);
                    (status_of(&chain), S_IOERR, 1)
                }
            };
            let written = match status_addr {
                Some(addr) if memory.write_obj(status, addr).is_ok() => len,
                _ => 0,
            };
            if queue.add_used(memory, chain.head, written).is_err() {
                interrupt.signal_needs_reset();
                self.active = None;
                return;
            }
            completed = true;
        }
        if completed {
            interrupt.trigger(USED_BUFFER);
        }
    }
}

/// Counts one finished request.
fn count(c: &DeviceCounters, request: &Request, status: u8) {
    if status != request::S_OK {
        DeviceCounters::add(&c.errors, 1);
        return;
    }
    DeviceCounters::add(&c.requests, 1);
    match request.kind {
        request::T_IN => {
            DeviceCounters::add(&c.ops_in, 1);
            DeviceCounters::add(&c.bytes_in, request.data_len());
        }
        request::T_OUT => {
            DeviceCounters::add(&c.ops_out, 1);
            DeviceCounters::add(&c.bytes_out, request.data_len());
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
        self.process_queue();
        Ok(())
    }

    fn reset(&mut self) {
        self.active = None;
        self.throttled_since = None;
        let _ = self.timer.clear();
    }

    fn handle_event(&mut self, event: DeviceEvent) {
        match event {
            DeviceEvent::Queue(0) => self.process_queue(),
            DeviceEvent::Fd(0) => {
                let _ = self.timer.wait();
                self.process_queue();
            }
            _ => {}
        }
    }

    fn extra_fds(&self) -> Vec<RawFd> {
        vec![self.timer.as_raw_fd()]
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
mod tests;
