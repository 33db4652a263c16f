//! Virtio devices over the MMIO transport: the split virtqueue, the transport, and the block,
//! net and entropy devices.
//!
//! Device logic works on `GuestMemoryMmap` and an interrupt trait, so it is tested without
//! KVM. Queue notifications, tap readiness and rate-limit timers reach the devices through the
//! VM's event loop thread (`devices::event_loop`).

pub mod block;
#[cfg(test)]
mod hostile;
pub mod interrupt;
pub mod mmio;
pub mod net;
pub mod queue;
pub mod rng;

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use vm_memory::GuestMemoryMmap;

use interrupt::VirtioInterrupt;
use queue::Queue;

/// Device type: network card.
pub const TYPE_NET: u32 = 1;
/// Device type: block device.
pub const TYPE_BLOCK: u32 = 2;
/// Device type: entropy source.
pub const TYPE_RNG: u32 = 4;

/// Feature bit: the device follows virtio 1.x (required by this transport).
pub const F_VERSION_1: u64 = 1 << 32;

/// Device status bits written by the driver.
pub mod status {
    /// The guest found the device.
    pub const ACKNOWLEDGE: u32 = 1;
    /// The guest has a driver for it.
    pub const DRIVER: u32 = 2;
    /// The driver is ready.
    pub const DRIVER_OK: u32 = 4;
    /// Feature negotiation is done.
    pub const FEATURES_OK: u32 = 8;
    /// The device hit an error and must be reset.
    pub const DEVICE_NEEDS_RESET: u32 = 64;
    /// The driver gave up.
    pub const FAILED: u32 = 128;
}

/// What woke a device in the event loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceEvent {
    /// The driver notified queue `n`.
    Queue(usize),
    /// The device's own file descriptor number `n` (from `extra_fds`) is ready.
    Fd(usize),
}

/// Why a device could not start.
#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    /// The driver did not set up a queue the device needs.
    #[error("queue {0} is not ready")]
    QueueNotReady(usize),
    /// A queue's rings are not usable.
    #[error("queue {index} is invalid")]
    BadQueue {
        /// The queue.
        index: usize,
        /// The cause.
        #[source]
        source: queue::QueueError,
    },
    /// The device's host side failed (e.g. tap offloads).
    #[error("device setup failed")]
    Host(#[source] std::io::Error),
}

/// What a device gets when the driver sets DRIVER_OK.
#[derive(Debug)]
pub struct Activation {
    /// Guest memory.
    pub memory: GuestMemoryMmap,
    /// The queues, as the driver configured them.
    pub queues: Vec<Queue>,
    /// The features both sides agreed on.
    pub acked_features: u64,
    /// How to interrupt the guest.
    pub interrupt: VirtioInterrupt,
}

/// A virtio device: its identity, features, config space and queue handling.
pub trait VirtioDevice: Send + std::fmt::Debug {
    /// `TYPE_NET`, `TYPE_BLOCK` or `TYPE_RNG`.
    fn device_type(&self) -> u32;
    /// The largest size of each queue.
    fn queue_max_sizes(&self) -> &[u16];
    /// Features offered to the driver.
    fn features(&self) -> u64;
    /// Reads from the device-specific configuration space.
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Writes to the configuration space (ignored by default).
    fn write_config(&mut self, _offset: u64, _data: &[u8]) {}
    /// Starts the device with the driver's queues.
    fn activate(&mut self, activation: Activation) -> Result<(), ActivateError>;
    /// Returns the device to its initial, inactive state.
    fn reset(&mut self);
    /// Handles a notification or a ready file descriptor.
    fn handle_event(&mut self, event: DeviceEvent);
    /// Serves what the driver has queued and waits until no request is in flight, its
    /// completion in the used ring (before a pause or a snapshot). Nothing by default.
    fn drain(&mut self) {}
    /// A disk's id and the log of the blocks written to it; `None` for other devices.
    fn write_log(&self) -> Option<(String, std::sync::Arc<block::dirty::WriteLog>)> {
        None
    }
    /// File descriptors of the device's own (tap, timers) that the event loop watches,
    /// delivered back as `DeviceEvent::Fd(index)`.
    fn extra_fds(&self) -> Vec<RawFd> {
        Vec::new()
    }
    /// The device's counters.
    fn counters(&self) -> &DeviceCounters;
    /// What must be the same for a snapshot of this device to be restored into it: the type
    /// and what the guest's driver has read about it (capacity, MAC, ...).
    fn identity(&self) -> String;
    /// The queues of an active device, with its positions in them; `None` when inactive.
    fn active_queues(&self) -> Option<Vec<Queue>>;
    /// Device-specific state a snapshot keeps besides the queues.
    fn save_extra(&self) -> Vec<u8> {
        Vec::new()
    }
    /// Takes back what `save_extra` gave, before the device is activated again.
    fn restore_extra(&mut self, _data: &[u8]) {}
    /// A short name for status reports, e.g. "block vol-1".
    fn describe(&self) -> String;
}

/// Per-device counters, updated by the device and read by the control API.
#[derive(Debug, Default)]
pub struct DeviceCounters {
    /// Requests (block), packets (net) or buffers (rng) completed.
    pub requests: AtomicU64,
    /// Of those, the ones that moved bytes to the guest (reads, received packets).
    pub ops_in: AtomicU64,
    /// And the ones that moved bytes from the guest (writes, sent packets).
    pub ops_out: AtomicU64,
    /// Time spent serving requests, in microseconds (block): the device was busy.
    pub busy_us: AtomicU64,
    /// Bytes moved from the device to the guest (reads, received packets).
    pub bytes_in: AtomicU64,
    /// Bytes moved from the guest to the device (writes, sent packets).
    pub bytes_out: AtomicU64,
    /// Requests that failed or were malformed.
    pub errors: AtomicU64,
    /// Time spent waiting on a rate limit, in microseconds.
    pub throttled_us: AtomicU64,
}

/// A snapshot of one device's counters, for the API.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceStats {
    /// What the device is.
    pub device: String,
    /// Requests, packets or buffers completed.
    pub requests: u64,
    /// Those that moved bytes to the guest (reads, received packets).
    pub ops_in: u64,
    /// Those that moved bytes from the guest (writes, sent packets).
    pub ops_out: u64,
    /// Microseconds spent serving requests (block).
    pub busy_us: u64,
    /// Bytes to the guest.
    pub bytes_in: u64,
    /// Bytes from the guest.
    pub bytes_out: u64,
    /// Failed or malformed requests.
    pub errors: u64,
    /// Milliseconds spent throttled.
    pub throttled_ms: u64,
}

impl DeviceCounters {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self, device: String) -> DeviceStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DeviceStats {
            device,
            requests: get(&self.requests),
            ops_in: get(&self.ops_in),
            ops_out: get(&self.ops_out),
            busy_us: get(&self.busy_us),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            errors: get(&self.errors),
            throttled_ms: get(&self.throttled_us) / 1000,
        }
    }
}

/// Copies `value`'s little-endian bytes at `offset` into `data`, for config-space reads.
pub fn read_config_bytes(config: &[u8], offset: u64, data: &mut [u8]) {
    data.fill(0);
    let Ok(offset) = usize::try_from(offset) else {
        return;
    };
    if let Some(src) = config.get(offset..) {
        let n = src.len().min(data.len());
        data[..n].copy_from_slice(&src[..n]);
    }
}
