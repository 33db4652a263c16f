//! The virtio net driver (spec 5.1), polled, as a smoltcp [`phy::Device`].
//!
//! Queue 0 receives into fixed buffers that are reposted once smoltcp has consumed them;
//! queue 1 transmits from a pool of buffers. Every buffer starts with the 12-byte
//! `virtio_net_hdr` (all zero on transmit, skipped on receive). No offloads are negotiated,
//! so frames carry full checksums and are never segmented by the device.

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::mmio::{InitError, MmioDevice};
use super::queue::{Buffer, F_RING_EVENT_IDX, Virtqueue};

/// `VIRTIO_NET_F_MAC`: config space holds the MAC address.
pub const F_MAC: u64 = 1 << 5;
/// `VIRTIO_NET_F_STATUS`: config space holds the link status.
pub const F_STATUS: u64 = 1 << 16;
/// Link-up bit of the config status field.
pub const LINK_UP: u16 = 1;
/// Bytes of `virtio_net_hdr` (modern layout, with `num_buffers`).
pub const HDR_LEN: usize = 12;
/// Largest Ethernet frame (without FCS), VLAN tag included.
pub const MAX_FRAME: usize = 1526;
/// Bytes of one buffer: header plus frame.
pub const BUF_LEN: usize = HDR_LEN + MAX_FRAME;
/// Frames smoltcp may send: 1500-byte IP packets plus the Ethernet header.
pub const MTU: usize = 1514;
/// Queue size asked for on both queues.
pub const QUEUE_SIZE: u16 = 256;
/// Receive buffers kept posted.
pub const RX_BUFFERS: usize = 128;
/// Transmit buffers in the pool.
pub const TX_BUFFERS: usize = 128;
/// The receive queue.
pub const RX_QUEUE: u16 = 0;
/// The transmit queue.
pub const TX_QUEUE: u16 = 1;

/// A locally administered MAC for devices that offer none.
pub const FALLBACK_MAC: [u8; 6] = [0x02, 0x6b, 0x65, 0x63, 0x32, 0x01];

/// The frame inside a received buffer of which the device wrote `used_len` bytes (header
/// included); `None` if it is too short to hold a header.
pub fn rx_frame(buf: &[u8], used_len: u32) -> Option<&[u8]> {
    let len = usize::try_from(used_len).ok()?.min(buf.len());
    (len > HDR_LEN).then(|| &buf[HDR_LEN..len])
}

/// Ethertype of ARP.
const ETHERTYPE_ARP: u16 = 0x0806;
/// Bytes of an Ethernet header followed by an ARP packet for IPv4 over Ethernet.
const ARP_FRAME_LEN: usize = 14 + 28;

/// The target protocol address of `frame` if it is an ARP request (operation 1) for an IPv4
/// address over Ethernet; `None` for any other frame (replies included), or one too short.
pub fn arp_request_target(frame: &[u8]) -> Option<[u8; 4]> {
    let arp = frame.get(..ARP_FRAME_LEN)?;
    let be16 = |at: usize| u16::from_be_bytes([arp[at], arp[at + 1]]);
    let ipv4_over_ethernet = be16(14) == 1 && be16(16) == 0x0800 && arp[18] == 6 && arp[19] == 4;
    if be16(12) != ETHERTYPE_ARP || !ipv4_over_ethernet || be16(20) != 1 {
        return None;
    }
    let mut target = [0u8; 4];
    target.copy_from_slice(&arp[38..42]);
    Some(target)
}

/// Formats a MAC as `52:54:00:12:34:56`.
pub struct MacDisplay(pub [u8; 6]);

impl core::fmt::Display for MacDisplay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

#[derive(Debug)]
struct Rx {
    queue: Virtqueue,
    bufs: Vec<u8>,
    /// Buffer index of each head descriptor in flight.
    slot_of: Vec<u16>,
    /// Buffers smoltcp has consumed, to post again.
    done: Vec<u16>,
}

#[derive(Debug)]
struct Tx {
    dev: MmioDevice,
    queue: Virtqueue,
    bufs: Vec<u8>,
    slot_of: Vec<u16>,
    free: Vec<u16>,
    kick_pending: bool,
    /// Where a frame goes if no buffer is free when a token is consumed (it is dropped).
    scratch: Vec<u8>,
}

impl Tx {
    /// Takes back the buffers the device has sent.
    fn reclaim(&mut self) -> bool {
        let mut bad = false;
        while let Some(used) = self.queue.pop_used() {
            match used {
                Ok(u) => self.free.push(self.slot_of[usize::from(u.head)]),
                Err(_) => bad = true,
            }
        }
        bad
    }

    fn kick(&mut self) {
        if self.kick_pending && self.queue.should_notify() {
            self.dev.notify(TX_QUEUE);
        }
        self.kick_pending = false;
    }
}

/// One virtio net device, live.
#[derive(Debug)]
pub struct VirtioNet {
    dev: MmioDevice,
    mac: [u8; 6],
    status_feature: bool,
    rx: Rx,
    tx: Tx,
    /// The device returned a descriptor id that was not in flight.
    pub bad_used: bool,
    /// Received ARP requests for this address are dropped before smoltcp sees them.
    ignored_arp_target: Option<[u8; 4]>,
    /// Reset the device when dropped (not when replaced by a reinitialised instance).
    reset_on_drop: bool,
}

impl VirtioNet {
    /// Brings the device up: features `VERSION_1` (+ `MAC`, `STATUS`, `RING_EVENT_IDX` if
    /// offered), the receive queue with its buffers posted, the transmit queue.
    pub fn init(dev: MmioDevice) -> Result<Self, InitError> {
        let features = dev.negotiate(F_MAC | F_STATUS | F_RING_EVENT_IDX)?;
        let (rx_queue, tx_queue) = setup_queues(dev, features)?;
        let mac = if features & F_MAC != 0 {
            dev.config_bytes::<6>(0)
        } else {
            FALLBACK_MAC
        };
        let mut net = Self::from_queues(dev, mac, features & F_STATUS != 0, rx_queue, tx_queue);
        // Buffers may be posted before DRIVER_OK, but the device is notified only after it.
        net.post_rx();
        dev.driver_ok()?;
        net.dev.notify(RX_QUEUE);
        Ok(net)
    }

    fn from_queues(
        dev: MmioDevice,
        mac: [u8; 6],
        status_feature: bool,
        rx_queue: Virtqueue,
        tx_queue: Virtqueue,
    ) -> Self {
        let rx_count = RX_BUFFERS.min(usize::from(rx_queue.size()));
        let tx_count = TX_BUFFERS.min(usize::from(tx_queue.size()));
        Self {
            dev,
            mac,
            status_feature,
            rx: Rx {
                slot_of: vec![0; usize::from(rx_queue.size())],
                queue: rx_queue,
                bufs: vec![0; rx_count * BUF_LEN],
                done: (0..rx_count as u16).collect(),
            },
            tx: Tx {
                dev,
                slot_of: vec![0; usize::from(tx_queue.size())],
                queue: tx_queue,
                bufs: vec![0; tx_count * BUF_LEN],
                free: (0..tx_count as u16).collect(),
                kick_pending: false,
                scratch: vec![0; BUF_LEN],
            },
            bad_used: false,
            ignored_arp_target: None,
            reset_on_drop: true,
        }
    }

    /// Resets the device and brings it up again with fresh queues and buffers (after
    /// `DEVICE_NEEDS_RESET` or a device error).
    pub fn reinit(&mut self) -> Result<(), InitError> {
        self.dev.reset();
        let mut fresh = Self::init(self.dev)?;
        fresh.ignored_arp_target = self.ignored_arp_target;
        let mut old = core::mem::replace(self, fresh);
        old.reset_on_drop = false;
        Ok(())
    }

    /// A device for host tests: `dev` is any register window (notifications land there),
    /// the receive buffers are posted; returns it with its (rx, tx) ring addresses.
    #[cfg(test)]
    pub fn for_test(dev: MmioDevice, mac: [u8; 6]) -> (Self, [super::fake::RingAddrs; 2]) {
        let rx = Virtqueue::new(QUEUE_SIZE).unwrap();
        let tx = Virtqueue::new(QUEUE_SIZE).unwrap();
        let addrs = [
            super::fake::RingAddrs::of(&rx),
            super::fake::RingAddrs::of(&tx),
        ];
        let mut net = Self::from_queues(dev, mac, false, rx, tx);
        net.post_rx();
        (net, addrs)
    }

    /// The MAC address (from config space, or [`FALLBACK_MAC`]).
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The link state, if the device reports it (`VIRTIO_NET_F_STATUS`).
    pub fn link_up(&self) -> Option<bool> {
        self.status_feature
            .then(|| u16::from_le_bytes(self.dev.config_bytes::<2>(6)) & LINK_UP != 0)
    }

    /// The register window (for status checks and interrupt acknowledgement).
    pub fn mmio(&self) -> MmioDevice {
        self.dev
    }

    /// Drops received ARP requests for `ip` from now on (`None`: drop none). Replies, and
    /// requests for other addresses, still pass.
    pub fn ignore_arp_requests_for(&mut self, ip: Option<[u8; 4]>) {
        self.ignored_arp_target = ip;
    }

    /// True if a received frame is waiting.
    pub fn rx_pending(&self) -> bool {
        self.rx.queue.has_used()
    }

    /// Posts consumed receive buffers again and notifies the device of them and of queued
    /// transmissions. Call after each round of smoltcp polling.
    pub fn flush(&mut self) {
        if self.post_rx() && self.rx.queue.should_notify() {
            self.dev.notify(RX_QUEUE);
        }
        self.tx.kick();
    }

    /// True if no transmit buffer is free (the device still holds them all).
    pub fn tx_full(&mut self) -> bool {
        if self.tx.reclaim() {
            self.bad_used = true;
        }
        self.tx.free.is_empty()
    }

    /// Posts the consumed receive buffers; true if it posted any.
    fn post_rx(&mut self) -> bool {
        if self.rx.done.is_empty() {
            return false;
        }
        while let Some(slot) = self.rx.done.pop() {
            let addr = self.rx.bufs.as_ptr() as u64 + (usize::from(slot) * BUF_LEN) as u64;
            match self.rx.queue.add(&[Buffer::writable(addr, BUF_LEN as u32)]) {
                Ok(head) => self.rx.slot_of[usize::from(head)] = slot,
                Err(_) => {
                    self.rx.done.push(slot);
                    break;
                }
            }
        }
        true
    }
}

/// The receive and transmit queues, using event indexes if `features` has them; the device is
/// marked failed if either cannot be set up.
pub fn setup_queues(dev: MmioDevice, features: u64) -> Result<(Virtqueue, Virtqueue), InitError> {
    let setup = || -> Result<(Virtqueue, Virtqueue), InitError> {
        Ok((
            dev.setup_queue(RX_QUEUE, QUEUE_SIZE)?,
            dev.setup_queue(TX_QUEUE, QUEUE_SIZE)?,
        ))
    };
    let (mut rx, mut tx) = setup().inspect_err(|_| dev.fail())?;
    let event_idx = features & F_RING_EVENT_IDX != 0;
    rx.set_event_idx(event_idx);
    tx.set_event_idx(event_idx);
    Ok((rx, tx))
}

impl Drop for VirtioNet {
    fn drop(&mut self) {
        if self.reset_on_drop {
            self.dev.reset();
        }
    }
}

/// A received frame, borrowed from its receive buffer.
pub struct RxToken<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.frame)
    }
}

/// Permission to send one frame.
pub struct TxToken<'a> {
    tx: &'a mut Tx,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let tx = self.tx;
        let len = len.min(MAX_FRAME);
        tx.reclaim();
        let Some(slot) = tx.free.pop() else {
            // No buffer: the frame is built and dropped (TCP retransmits).
            return f(&mut tx.scratch[HDR_LEN..HDR_LEN + len]);
        };
        let start = usize::from(slot) * BUF_LEN;
        let buf = &mut tx.bufs[start..start + HDR_LEN + len];
        buf[..HDR_LEN].fill(0);
        let result = f(&mut buf[HDR_LEN..]);
        let addr = buf.as_ptr() as u64;
        match tx
            .queue
            .add(&[Buffer::readable(addr, (HDR_LEN + len) as u32)])
        {
            Ok(head) => {
                tx.slot_of[usize::from(head)] = slot;
                tx.kick_pending = true;
            }
            Err(_) => tx.free.push(slot),
        }
        result
    }
}

impl phy::Device for VirtioNet {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        loop {
            let used = match self.rx.queue.pop_used()? {
                Ok(u) => u,
                Err(_) => {
                    self.bad_used = true;
                    continue;
                }
            };
            let slot = self.rx.slot_of[usize::from(used.head)];
            // Posted again at the next `flush`, after smoltcp has consumed the frame.
            self.rx.done.push(slot);
            let start = usize::from(slot) * BUF_LEN;
            let Some(frame) = rx_frame(&self.rx.bufs[start..start + BUF_LEN], used.len) else {
                continue;
            };
            if self.ignored_arp_target.is_some()
                && arp_request_target(frame) == self.ignored_arp_target
            {
                continue;
            }
            if self.tx.reclaim() {
                self.bad_used = true;
            }
            return Some((RxToken { frame }, TxToken { tx: &mut self.tx }));
        }
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        if self.tx.reclaim() {
            self.bad_used = true;
        }
        if self.tx.free.is_empty() {
            self.tx.kick();
            return None;
        }
        Some(TxToken { tx: &mut self.tx })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps.max_burst_size = None;
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_skip_the_header() {
        let mut buf = vec![0u8; BUF_LEN];
        buf[HDR_LEN] = 0xaa;
        buf[HDR_LEN + 59] = 0xbb;
        let frame = rx_frame(&buf, (HDR_LEN + 60) as u32).unwrap();
        assert_eq!(frame.len(), 60);
        assert_eq!((frame[0], frame[59]), (0xaa, 0xbb));
        assert!(rx_frame(&buf, HDR_LEN as u32).is_none());
        assert!(rx_frame(&buf, 3).is_none());
        // A device claiming more than the buffer is clamped to it.
        assert_eq!(rx_frame(&buf, 1_000_000).unwrap().len(), MAX_FRAME);
    }

    /// An ARP packet for IPv4 over Ethernet with operation `op`, asking for `target`.
    fn arp(op: u16, target: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4]);
        f.extend_from_slice(&op.to_be_bytes());
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 10, 0, 0, 1]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&target);
        f.resize(60, 0);
        f
    }

    #[test]
    fn finds_arp_requests() {
        let request = arp(1, [10, 0, 0, 2]);
        assert_eq!(arp_request_target(&request), Some([10, 0, 0, 2]));
        assert_eq!(arp_request_target(&request[..42]), Some([10, 0, 0, 2]));
        assert_eq!(arp_request_target(&request[..41]), None);
        assert_eq!(arp_request_target(&arp(2, [10, 0, 0, 2])), None, "a reply");
        let mut ipv4 = request.clone();
        ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(arp_request_target(&ipv4), None);
        let mut other_protocol = request.clone();
        other_protocol[16..18].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(arp_request_target(&other_protocol), None);
        assert_eq!(arp_request_target(&[]), None);
    }

    #[test]
    fn mac_display() {
        let shown = format!("{}", MacDisplay([0x52, 0x54, 0, 0x12, 0xab, 0x0f]));
        assert_eq!(shown, "52:54:00:12:ab:0f");
    }
}
