//! virtio-net on a tap device: a receive and a transmit queue, a MAC, checksum and TSO
//! offloads when the guest asks for them, and rx/tx rate limits.

pub mod io;
mod offload;
mod path;
pub mod tap;

use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::timerfd::TimerFd;

use super::interrupt::VirtioInterrupt;
use super::queue::{F_RING_EVENT_IDX, Queue};
use super::{ActivateError, Activation, DeviceCounters, DeviceEvent, TYPE_NET, VirtioDevice};
use crate::devices::rate_limiter::RateLimiter;
use io::IoVecs;
use offload::{guest_offloads, tap_offloads};
#[cfg(test)]
pub use path::copy_to_chain_for_tests;
use path::{Step, TxStep, notify_used, rx_one_copied, rx_one_direct, tx_one};
use tap::{Tap, VNET_HDR_LEN};

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
    /// The guest offloads (`F_GUEST_*`) the tap accepts, offered with the rest.
    guest_features: u64,
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
        let guest_features = guest_offloads(&tap);
        Ok(Net {
            guest_features,
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

impl VirtioDevice for Net {
    fn device_type(&self) -> u32 {
        TYPE_NET
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE, QUEUE_SIZE]
    }

    fn features(&self) -> u64 {
        // The tap takes checksum and TSO frames from us whatever its offload flags say.
        F_CSUM
            | F_MAC
            | F_HOST_TSO4
            | F_HOST_TSO6
            | F_HOST_ECN
            | F_STATUS
            | F_RING_EVENT_IDX
            | self.guest_features
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
