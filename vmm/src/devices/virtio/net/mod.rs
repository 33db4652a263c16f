//! virtio-net on a tap device: a receive and a transmit queue, a MAC, checksum and TSO
//! offloads when the guest asks for them, and rx/tx rate limits.

pub mod tap;

use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use vm_memory::{Bytes, GuestMemoryMmap};
use vmm_sys_util::timerfd::TimerFd;

use super::interrupt::{USED_BUFFER, VirtioInterrupt};
use super::queue::{DescriptorChain, Queue};
use super::{ActivateError, Activation, DeviceCounters, DeviceEvent, TYPE_NET, VirtioDevice};
use crate::devices::rate_limiter::RateLimiter;
use tap::{TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, Tap, VNET_HDR_LEN};

const F_CSUM: u64 = 1 << 0;
const F_GUEST_CSUM: u64 = 1 << 1;
const F_MAC: u64 = 1 << 5;
const F_GUEST_TSO4: u64 = 1 << 7;
const F_GUEST_TSO6: u64 = 1 << 8;
const F_HOST_TSO4: u64 = 1 << 11;
const F_HOST_TSO6: u64 = 1 << 12;
const F_STATUS: u64 = 1 << 16;
/// Config status: the link is up.
const LINK_UP: u16 = 1;
/// Size of each queue.
pub const QUEUE_SIZE: u16 = 256;
/// Largest frame with its header: a 64 KiB TSO segment plus Ethernet and VLAN headers.
const MAX_FRAME: usize = VNET_HDR_LEN + 65_535 + 18;
const RX: usize = 0;
const TX: usize = 1;
/// `extra_fds` indexes.
const FD_TAP: usize = 0;
const FD_RX_TIMER: usize = 1;
const FD_TX_TIMER: usize = 2;

/// Why a network card could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The tap could not be opened.
    #[error("cannot open tap {name}")]
    Tap {
        /// The tap's name.
        name: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A rate-limit timer could not be made.
    #[error("cannot create a rate-limit timer")]
    Timer(#[source] std::io::Error),
}

struct Active {
    memory: GuestMemoryMmap,
    rx: Queue,
    tx: Queue,
    interrupt: VirtioInterrupt,
}

/// One direction's rate limiter and its timer.
struct Throttle {
    limiter: RateLimiter,
    timer: TimerFd,
    since: Option<Instant>,
}

impl Throttle {
    fn new(limiter: RateLimiter) -> Result<Self, NetError> {
        Ok(Throttle {
            limiter,
            timer: TimerFd::new().map_err(|e| NetError::Timer(e.into()))?,
            since: None,
        })
    }

    /// Admits `bytes`, or arms the timer and says no.
    fn admit(&mut self, bytes: usize, counters: &DeviceCounters) -> bool {
        match self.limiter.admit(bytes as u64, Instant::now()) {
            Ok(()) => {
                if let Some(since) = self.since.take() {
                    DeviceCounters::add(&counters.throttled_us, since.elapsed().as_micros() as u64);
                }
                true
            }
            Err(wait) => {
                self.since.get_or_insert_with(Instant::now);
                let _ = self.timer.reset(wait, None);
                false
            }
        }
    }
}

/// A virtio-net device.
pub struct Net {
    tap: Tap,
    mac: [u8; 6],
    rx_throttle: Throttle,
    tx_throttle: Throttle,
    /// A frame read from the tap that no rx buffer has taken yet.
    pending: Option<Vec<u8>>,
    active: Option<Active>,
    counters: DeviceCounters,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("tap", &self.tap.name())
            .field("mac", &self.mac)
            .finish_non_exhaustive()
    }
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Net {
    /// A card on tap `tap_name` with address `mac`, limited to `limiter` in each direction.
    pub fn new(tap_name: &str, mac: [u8; 6], limiter: RateLimiter) -> Result<Self, NetError> {
        let tap = Tap::open(tap_name).map_err(|source| NetError::Tap {
            name: tap_name.to_owned(),
            source,
        })?;
        Ok(Net {
            tap,
            mac,
            rx_throttle: Throttle::new(limiter.clone())?,
            tx_throttle: Throttle::new(limiter)?,
            pending: None,
            active: None,
            counters: DeviceCounters::default(),
        })
    }

    /// Moves frames from the tap into rx buffers until either runs out.
    fn process_rx(&mut self) {
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let mut delivered = false;
        loop {
            let frame = match self.pending.take() {
                Some(frame) => frame,
                None => {
                    let mut buf = vec![0u8; MAX_FRAME];
                    match self.tap.read_frame(&mut buf) {
                        Ok(n) => {
                            buf.truncate(n);
                            buf
                        }
                        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(err) => {
                            tracing::warn!("tap {} read failed: {err}", self.tap.name());
                            DeviceCounters::add(&self.counters.errors, 1);
                            break;
                        }
                    }
                }
            };
            if !self.rx_throttle.admit(frame.len(), &self.counters) {
                self.pending = Some(frame);
                break;
            }
            let chain = match active.rx.pop(&active.memory) {
                Ok(Some(chain)) => chain,
                Ok(None) => {
                    self.pending = Some(frame);
                    break;
                }
                Err(err) => {
                    tracing::warn!("net rx queue malformed: {err}");
                    active.interrupt.signal_needs_reset();
                    self.active = None;
                    return;
                }
            };
            let written = match copy_to_chain(&active.memory, &chain, &frame) {
                Some(n) => {
                    DeviceCounters::add(&self.counters.requests, 1);
                    DeviceCounters::add(&self.counters.ops_in, 1);
                    DeviceCounters::add(
                        &self.counters.bytes_in,
                        (frame.len() - VNET_HDR_LEN) as u64,
                    );
                    n
                }
                None => {
                    // The buffers cannot hold the frame: drop it, return the buffers empty.
                    DeviceCounters::add(&self.counters.errors, 1);
                    0
                }
            };
            if active
                .rx
                .add_used(&active.memory, chain.head, written)
                .is_err()
            {
                active.interrupt.signal_needs_reset();
                self.active = None;
                return;
            }
            delivered = true;
        }
        if delivered {
            active.interrupt.trigger(USED_BUFFER);
        }
    }

    /// Sends every frame the guest queued, unless the rate limiter says wait.
    fn process_tx(&mut self) {
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let mut sent = false;
        loop {
            let chain = match active.tx.pop(&active.memory) {
                Ok(Some(chain)) => chain,
                Ok(None) => break,
                Err(err) => {
                    tracing::warn!("net tx queue malformed: {err}");
                    active.interrupt.signal_needs_reset();
                    self.active = None;
                    return;
                }
            };
            match gather_frame(&active.memory, &chain) {
                Some(frame) => {
                    if !self.tx_throttle.admit(frame.len(), &self.counters) {
                        active.tx.undo_pop();
                        break;
                    }
                    match self.tap.write_frame(&frame) {
                        Ok(()) => {
                            DeviceCounters::add(&self.counters.requests, 1);
                            DeviceCounters::add(&self.counters.ops_out, 1);
                            DeviceCounters::add(
                                &self.counters.bytes_out,
                                (frame.len() - VNET_HDR_LEN) as u64,
                            );
                        }
                        Err(err) => {
                            tracing::debug!("tap {} write failed: {err}", self.tap.name());
                            DeviceCounters::add(&self.counters.errors, 1);
                        }
                    }
                }
                None => DeviceCounters::add(&self.counters.errors, 1),
            }
            if active.tx.add_used(&active.memory, chain.head, 0).is_err() {
                active.interrupt.signal_needs_reset();
                self.active = None;
                return;
            }
            sent = true;
        }
        if sent {
            active.interrupt.trigger(USED_BUFFER);
        }
    }
}

/// The offloads the tap may use towards the guest: partial checksums when the guest accepts
/// them, and TSO only on top of that.
fn tap_offloads(acked: u64) -> u32 {
    if acked & F_GUEST_CSUM == 0 {
        return 0;
    }
    let mut flags = TUN_F_CSUM;
    if acked & F_GUEST_TSO4 != 0 {
        flags |= TUN_F_TSO4;
    }
    if acked & F_GUEST_TSO6 != 0 {
        flags |= TUN_F_TSO6;
    }
    flags
}

/// Copies `frame` into the chain's writable buffers; `None` if they are too small or the chain
/// has a device-readable buffer.
fn copy_to_chain(mem: &GuestMemoryMmap, chain: &DescriptorChain, frame: &[u8]) -> Option<u32> {
    if chain.descriptors.iter().any(|d| !d.writable) || chain.writable_len() < frame.len() as u64 {
        return None;
    }
    let mut rest = frame;
    for d in &chain.descriptors {
        if rest.is_empty() {
            break;
        }
        let n = rest.len().min(d.len as usize);
        mem.write_slice(&rest[..n], d.addr).ok()?;
        rest = &rest[n..];
    }
    Some(frame.len() as u32)
}

/// Gathers a frame (header first) from the chain's readable buffers; `None` when the chain has
/// a writable buffer, is shorter than a header, or longer than any frame.
fn gather_frame(mem: &GuestMemoryMmap, chain: &DescriptorChain) -> Option<Vec<u8>> {
    if chain.descriptors.iter().any(|d| d.writable) {
        return None;
    }
    let total: u64 = chain.descriptors.iter().map(|d| u64::from(d.len)).sum();
    if total < VNET_HDR_LEN as u64 || total > MAX_FRAME as u64 {
        return None;
    }
    let mut frame = vec![0u8; total as usize];
    let mut at = 0usize;
    for d in &chain.descriptors {
        mem.read_slice(&mut frame[at..at + d.len as usize], d.addr)
            .ok()?;
        at += d.len as usize;
    }
    Some(frame)
}

/// `copy_to_chain`, for the hostile-guest tests.
#[cfg(test)]
pub fn copy_to_chain_for_tests(
    mem: &GuestMemoryMmap,
    chain: &DescriptorChain,
    frame: &[u8],
) -> Option<u32> {
    copy_to_chain(mem, chain, frame)
}

/// `gather_frame`, for the hostile-guest tests.
#[cfg(test)]
pub fn gather_frame_for_tests(mem: &GuestMemoryMmap, chain: &DescriptorChain) -> Option<Vec<u8>> {
    gather_frame(mem, chain)
}

impl VirtioDevice for Net {
    fn device_type(&self) -> u32 {
        TYPE_NET
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE, QUEUE_SIZE]
    }

    fn features(&self) -> u64 {
        F_CSUM
            | F_GUEST_CSUM
            | F_MAC
            | F_GUEST_TSO4
            | F_GUEST_TSO6
            | F_HOST_TSO4
            | F_HOST_TSO6
            | F_STATUS
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let mut config = [0u8; 8];
        config[..6].copy_from_slice(&self.mac);
        config[6..8].copy_from_slice(&LINK_UP.to_le_bytes());
        super::read_config_bytes(&config, offset, data);
    }

    fn activate(&mut self, mut activation: Activation) -> Result<(), ActivateError> {
        if activation.queues.iter().any(|q| !q.ready) {
            return Err(ActivateError::QueueNotReady(
                activation.queues.iter().position(|q| !q.ready).unwrap_or(0),
            ));
        }
        self.tap
            .set_offload(tap_offloads(activation.acked_features))
            .map_err(ActivateError::Host)?;
        let tx = activation.queues.remove(TX);
        let rx = activation.queues.remove(RX);
        self.active = Some(Active {
            memory: activation.memory,
            rx,
            tx,
            interrupt: activation.interrupt,
        });
        self.process_tx();
        self.process_rx();
        Ok(())
    }

    fn reset(&mut self) {
        self.active = None;
        self.pending = None;
    }

    fn handle_event(&mut self, event: DeviceEvent) {
        match event {
            DeviceEvent::Queue(RX) | DeviceEvent::Fd(FD_TAP) => self.process_rx(),
            DeviceEvent::Queue(TX) => self.process_tx(),
            DeviceEvent::Fd(FD_RX_TIMER) => {
                let _ = self.rx_throttle.timer.wait();
                self.process_rx();
            }
            DeviceEvent::Fd(FD_TX_TIMER) => {
                let _ = self.tx_throttle.timer.wait();
                self.process_tx();
            }
            _ => {}
        }
    }

    fn extra_fds(&self) -> Vec<RawFd> {
        vec![
            self.tap.as_raw_fd(),
            self.rx_throttle.timer.as_raw_fd(),
            self.tx_throttle.timer.as_raw_fd(),
        ]
    }

    fn counters(&self) -> &DeviceCounters {
        &self.counters
    }

    fn describe(&self) -> String {
        format!("net {} {}", self.tap.name(), format_mac(&self.mac))
    }

    fn identity(&self) -> String {
        format!("net mac={}", format_mac(&self.mac))
    }

    fn active_queues(&self) -> Option<Vec<Queue>> {
        self.active
            .as_ref()
            .map(|a| vec![a.rx.clone(), a.tx.clone()])
    }

    /// The frame read from the tap that no receive buffer has taken yet.
    fn save_extra(&self) -> Vec<u8> {
        self.pending.clone().unwrap_or_default()
    }

    fn restore_extra(&mut self, data: &[u8]) {
        self.pending = (!data.is_empty()).then(|| data.to_vec());
    }
}

#[cfg(test)]
mod tests;
