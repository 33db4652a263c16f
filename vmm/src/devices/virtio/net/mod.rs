//! virtio-net on a tap device: a receive and a transmit queue, a MAC, checksum and TSO
//! offloads when the guest asks for them, and rx/tx rate limits.

pub mod io;
pub mod tap;

use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use vm_memory::{Bytes, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::timerfd::TimerFd;

use super::interrupt::{USED_BUFFER, VirtioInterrupt};
use super::queue::{DescriptorChain, F_RING_EVENT_IDX, Queue};
use super::{ActivateError, Activation, DeviceCounters, DeviceEvent, TYPE_NET, VirtioDevice};
use crate::devices::rate_limiter::RateLimiter;
use io::IoVecs;
use tap::{TUN_F_CSUM, TUN_F_TSO_ECN, TUN_F_TSO4, TUN_F_TSO6, Tap, VNET_HDR_LEN};

const F_CSUM: u64 = 1 << 0;
const F_GUEST_CSUM: u64 = 1 << 1;
const F_MAC: u64 = 1 << 5;
const F_GUEST_TSO4: u64 = 1 << 7;
const F_GUEST_TSO6: u64 = 1 << 8;
const F_GUEST_ECN: u64 = 1 << 9;
const F_HOST_TSO4: u64 = 1 << 11;
const F_HOST_TSO6: u64 = 1 << 12;
const F_HOST_ECN: u64 = 1 << 13;
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
const FD_RESUME: usize = 3;
/// Chains one pass over a queue serves before letting the event loop serve others.
const BUDGET: usize = 1024;
/// Chains between two checks of the driver's `used_event` within a pass (with event indexes:
/// without them the driver hears once per pass), so that a driver waiting for room can refill
/// while the device goes on.
const MID_PASS: usize = 32;

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
    /// A rate-limit timer or the resume event could not be made.
    #[error("cannot create a rate-limit timer or event")]
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
    /// Guest buffers of the frame being moved.
    iov: IoVecs,
    /// Written when a pass stops on its budget, to come back after the other events.
    resume: EventFd,
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
            iov: IoVecs::default(),
            resume: EventFd::new(libc::EFD_NONBLOCK).map_err(NetError::Timer)?,
            counters: DeviceCounters::default(),
        })
    }

    /// Moves frames from the tap into rx buffers until either runs out (or the budget does),
    /// then interrupts the driver once if it asked to be.
    fn process_rx(&mut self) {
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let mut delivered = false;
        let mut exhausted = true;
        for n in 1..=BUDGET {
            let step = if self.pending.is_some() || self.rx_throttle.limiter.is_active() {
                rx_one_copied(
                    active,
                    &self.tap,
                    &mut self.rx_throttle,
                    &mut self.pending,
                    &self.counters,
                )
            } else {
                rx_one_direct(active, &self.tap, &mut self.iov, &self.counters)
            };
            match step {
                Step::Done => {
                    delivered = true;
                    if n % MID_PASS == 0 && active.rx.event_idx() {
                        notify_used(active, RX, true);
                    }
                }
                Step::Skipped => {}
                Step::Stop => {
                    exhausted = false;
                    break;
                }
                Step::Broken => {
                    self.iov.clear();
                    active.interrupt.signal_needs_reset();
                    self.active = None;
                    return;
                }
            }
        }
        if exhausted {
            // Frames may be left: come back after the other events.
            let _ = self.resume.write(1);
        }
        self.iov.clear();
        notify_used(active, RX, delivered);
    }

    /// Sends every frame the guest queued (within the budget), unless the rate limiter says
    /// wait; the driver is asked not to notify while the queue is drained, and interrupted
    /// once at the end if it asked to be.
    fn process_tx(&mut self) {
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let mut sent = false;
        let mut budget = BUDGET;
        let healthy = 'drain: loop {
            if active.tx.disable_notification(&active.memory).is_err() {
                break false;
            }
            loop {
                if budget == 0 {
                    // Carry on after the other events, notifications still off.
                    let _ = self.resume.write(1);
                    break 'drain true;
                }
                budget -= 1;
                match tx_one(
                    active,
                    &self.tap,
                    &mut self.iov,
                    &mut self.tx_throttle,
                    &self.counters,
                ) {
                    TxStep::Sent => {
                        sent = true;
                        if budget % MID_PASS == 0 && active.tx.event_idx() {
                            notify_used(active, TX, true);
                        }
                    }
                    TxStep::Empty => break,
                    // The timer brings the device back.
                    TxStep::Throttled => break 'drain true,
                    TxStep::Broken => break 'drain false,
                }
            }
            // The queue looked empty: ask for notifications, then make sure it still is.
            match active.tx.enable_notification(&active.memory) {
                Ok(true) => continue,
                Ok(false) => break true,
                Err(_) => break false,
            }
        };
        self.iov.clear();
        if !healthy {
            active.interrupt.signal_needs_reset();
            self.active = None;
            return;
        }
        notify_used(active, TX, sent);
    }
}

/// What one tx chain came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxStep {
    /// A chain was used (its frame sent, or dropped as malformed).
    Sent,
    /// The queue is empty.
    Empty,
    /// The rate limiter says wait (the chain stays available).
    Throttled,
    /// The queue is malformed: the device needs a reset.
    Broken,
}

/// What one rx frame came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// A chain was used (a frame moved, or a bad chain returned empty); go on.
    Done,
    /// Nothing used this time, but there may be more; go on.
    Skipped,
    /// Stop for now: nothing to move, no buffers, or throttled.
    Stop,
    /// The queue is malformed: the device needs a reset.
    Broken,
}

/// Interrupts the driver if chains were used on queue `which` and it wants to hear of them.
fn notify_used(active: &mut Active, which: usize, used: bool) {
    if !used {
        return;
    }
    let queue = if which == RX {
        &mut active.rx
    } else {
        &mut active.tx
    };
    // A used ring we cannot read is reported on the next pop; interrupt to be safe.
    if queue.needs_notification(&active.memory).unwrap_or(true) {
        active.interrupt.trigger(USED_BUFFER);
    }
}

/// Takes an rx chain, asking for a notification when there is none; `None` to stop.
fn rx_chain(active: &mut Active) -> Result<Option<DescriptorChain>, Step> {
    loop {
        match active.rx.pop(&active.memory) {
            Ok(Some(chain)) => return Ok(Some(chain)),
            Ok(None) => match active.rx.enable_notification(&active.memory) {
                Ok(true) => continue,
                Ok(false) => return Ok(None),
                Err(_) => return Err(Step::Broken),
            },
            Err(err) => {
                tracing::warn!("net rx queue malformed: {err}");
                return Err(Step::Broken);
            }
        }
    }
}

/// One frame read from the tap straight into the guest's next rx buffers.
fn rx_one_direct(
    active: &mut Active,
    tap: &Tap,
    iov: &mut IoVecs,
    counters: &DeviceCounters,
) -> Step {
    let chain = match rx_chain(active) {
        Ok(Some(chain)) => chain,
        Ok(None) => return Step::Stop,
        Err(step) => return step,
    };
    let written = match iov.fill(&active.memory, &chain, true, usize::MAX) {
        Err(_) => {
            // The buffers cannot take a frame: return them empty.
            DeviceCounters::add(&counters.errors, 1);
            0
        }
        Ok(room) => match tap.read_frame_vectored(iov.as_slice()) {
            Ok(n) if n <= room && n >= VNET_HDR_LEN => {
                DeviceCounters::add(&counters.requests, 1);
                DeviceCounters::add(&counters.ops_in, 1);
                DeviceCounters::add(&counters.bytes_in, (n - VNET_HDR_LEN) as u64);
                n as u32
            }
            Ok(_) => {
                // Reached the overflow byte (the buffers were too small): dropped.
                DeviceCounters::add(&counters.errors, 1);
                0
            }
            Err(err) => {
                active.rx.undo_pop();
                return match err.kind() {
                    std::io::ErrorKind::WouldBlock => Step::Stop,
                    // A frame the kernel could not describe to us was dropped; try the next.
                    std::io::ErrorKind::InvalidInput => {
                        DeviceCounters::add(&counters.errors, 1);
                        Step::Skipped
                    }
                    _ => {
                        tracing::warn!("tap {} read failed: {err}", tap.name());
                        DeviceCounters::add(&counters.errors, 1);
                        Step::Stop
                    }
                };
            }
        },
    };
    match active.rx.add_used(&active.memory, chain.head, written) {
        Ok(()) => Step::Done,
        Err(_) => Step::Broken,
    }
}

/// One frame through a host buffer: the one kept from before (a snapshot, or a frame the rate
/// limiter held back), or one read now so that the limiter can weigh it first.
fn rx_one_copied(
    active: &mut Active,
    tap: &Tap,
    throttle: &mut Throttle,
    pending: &mut Option<Vec<u8>>,
    counters: &DeviceCounters,
) -> Step {
    let frame = match pending.take() {
        Some(frame) => frame,
        None => {
            let mut buf = vec![0u8; MAX_FRAME];
            match tap.read_frame(&mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    buf
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return Step::Stop,
                Err(err) => {
                    tracing::warn!("tap {} read failed: {err}", tap.name());
                    DeviceCounters::add(&counters.errors, 1);
                    return Step::Stop;
                }
            }
        }
    };
    if !throttle.admit(frame.len(), counters) {
        *pending = Some(frame);
        return Step::Stop;
    }
    let chain = match rx_chain(active) {
        Ok(Some(chain)) => chain,
        Ok(None) => {
            *pending = Some(frame);
            return Step::Stop;
        }
        Err(step) => {
            *pending = Some(frame);
            return step;
        }
    };
    let written = match copy_to_chain(&active.memory, &chain, &frame) {
        Some(n) => {
            DeviceCounters::add(&counters.requests, 1);
            DeviceCounters::add(&counters.ops_in, 1);
            DeviceCounters::add(
                &counters.bytes_in,
                frame.len().saturating_sub(VNET_HDR_LEN) as u64,
            );
            n
        }
        None => {
            // The buffers cannot hold the frame: drop it, return the buffers empty.
            DeviceCounters::add(&counters.errors, 1);
            0
        }
    };
    match active.rx.add_used(&active.memory, chain.head, written) {
        Ok(()) => Step::Done,
        Err(_) => Step::Broken,
    }
}

/// Sends the next tx chain straight from guest memory.
fn tx_one(
    active: &mut Active,
    tap: &Tap,
    iov: &mut IoVecs,
    throttle: &mut Throttle,
    counters: &DeviceCounters,
) -> TxStep {
    let chain = match active.tx.pop(&active.memory) {
        Ok(Some(chain)) => chain,
        Ok(None) => return TxStep::Empty,
        Err(err) => {
            tracing::warn!("net tx queue malformed: {err}");
            return TxStep::Broken;
        }
    };
    match iov.fill(&active.memory, &chain, false, MAX_FRAME) {
        Ok(len) => {
            if throttle.limiter.is_active() && !throttle.admit(len, counters) {
                active.tx.undo_pop();
                return TxStep::Throttled;
            }
            match tap.write_frame_vectored(iov.as_slice(), len) {
                Ok(()) => {
                    DeviceCounters::add(&counters.requests, 1);
                    DeviceCounters::add(&counters.ops_out, 1);
                    DeviceCounters::add(&counters.bytes_out, (len - VNET_HDR_LEN) as u64);
                }
                Err(err) => {
                    // Includes frames whose virtio-net header the kernel refused.
                    tracing::debug!("tap {} write failed: {err}", tap.name());
                    DeviceCounters::add(&counters.errors, 1);
                }
            }
        }
        Err(_) => DeviceCounters::add(&counters.errors, 1),
    }
    match active.tx.add_used(&active.memory, chain.head, 0) {
        Ok(()) => TxStep::Sent,
        Err(_) => TxStep::Broken,
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
    if acked & F_GUEST_ECN != 0 && flags & (TUN_F_TSO4 | TUN_F_TSO6) != 0 {
        flags |= TUN_F_TSO_ECN;
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

/// `copy_to_chain`, for the hostile-guest tests.
#[cfg(test)]
pub fn copy_to_chain_for_tests(
    mem: &GuestMemoryMmap,
    chain: &DescriptorChain,
    frame: &[u8],
) -> Option<u32> {
    copy_to_chain(mem, chain, frame)
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
            | F_GUEST_ECN
            | F_HOST_ECN
            | F_STATUS
            | F_RING_EVENT_IDX
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
            DeviceEvent::Fd(FD_RESUME) => {
                let _ = self.resume.read();
                self.process_tx();
                self.process_rx();
            }
            _ => {}
        }
    }

    fn extra_fds(&self) -> Vec<RawFd> {
        vec![
            self.tap.as_raw_fd(),
            self.rx_throttle.timer.as_raw_fd(),
            self.tx_throttle.timer.as_raw_fd(),
            self.resume.as_raw_fd(),
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
mod tap_tests;
#[cfg(test)]
mod tests;
