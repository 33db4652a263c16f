//! Raw Ethernet frames with no network stack, to measure the vmm's virtio-net data path
//! (`probe.frames=`):
//!
//! - `tx,COUNT,SIZE` sends COUNT frames of SIZE bytes (Ethernet header included, no FCS) as
//!   fast as the transmit ring takes them. Up to 1514 bytes they are plain frames of
//!   ethertype [`ETHERTYPE`]; above, TCP/IPv4 segments of up to 64 KiB handed to the device
//!   for segmentation (`VIRTIO_NET_F_HOST_TSO4` through the virtio-net header).
//! - `rx,COUNT` counts received frames of ethertype [`ETHERTYPE`] until COUNT arrived, or
//!   none for [`IDLE_MILLIS`] after the first (or [`START_MILLIS`] before it).
//!
//! Each prints `probe: frames tx|rx N frames B bytes T us F fps M MBps` (rx also `first`
//! and the frames lost are the sender's count minus N). Only the completions wake the probe:
//! with event indexes, a sender with a full ring asks to be woken when three quarters of it
//! are done, so each wake-up refills many buffers with one notification at most.

use alloc::vec;
use alloc::vec::Vec;

use crate::cmdline::parse_u64;
use crate::say;
use crate::time::{self, Clock};
use crate::virtio::mmio::{InitError, MmioDevice};
use crate::virtio::net::{F_MAC, FALLBACK_MAC, HDR_LEN, RX_QUEUE, TX_QUEUE, setup_queues};
use crate::virtio::queue::{Buffer, F_RING_EVENT_IDX, Virtqueue};
use crate::wait::{self, Wake};

/// The command-line key.
pub const FRAMES_KEY: &[u8] = b"probe.frames";
/// Ethertype of the frames (IEEE 802 local experimental 1).
pub const ETHERTYPE: u16 = 0x88b5;
/// Largest plain frame: 1500 bytes of payload and the Ethernet header.
pub const MAX_PLAIN: usize = 1514;
/// Smallest frame (without FCS).
pub const MIN_FRAME: usize = 60;
/// Largest segmentation-offload frame: a 65535-byte IPv4 packet and the Ethernet header.
pub const MAX_GSO: usize = 14 + 65_535;
/// The receiver gives up this long after the last frame.
pub const IDLE_MILLIS: u64 = 2000;
/// The receiver gives up if nothing arrives this long after it is ready.
pub const START_MILLIS: u64 = 60_000;
/// Bytes the transmit buffers may take at most.
const TX_POOL_BYTES: usize = 8 << 20;
/// Receive buffer: header plus a plain frame with a VLAN tag.
const RX_BUF: usize = HDR_LEN + MAX_PLAIN + 4;
/// `VIRTIO_NET_F_CSUM`: the device completes partial checksums.
const F_CSUM: u64 = 1 << 0;
/// `VIRTIO_NET_F_HOST_TSO4`: the device segments TCP/IPv4.
const F_HOST_TSO4: u64 = 1 << 11;
/// Frames the receiver lets arrive per wake-up while they stream in (less than its buffers).
const RX_BATCH: u16 = 64;
/// Segment size asked of the device for large frames.
const GSO_MSS: u16 = 1448;

/// What `probe.frames=` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FramesMode {
    /// Send `count` frames of `size` bytes.
    Tx {
        /// Frames to send.
        count: u64,
        /// Bytes of each (Ethernet header included).
        size: usize,
    },
    /// Count up to `count` received frames.
    Rx {
        /// Frames expected.
        count: u64,
    },
}

impl FramesMode {
    /// Parses `tx,COUNT,SIZE` or `rx,COUNT`; `None` if malformed or out of range.
    pub fn parse(value: &[u8]) -> Option<Self> {
        let mut parts = value.split(|&b| b == b',');
        let kind = parts.next()?;
        let count = parse_u64(parts.next()?).filter(|&c| c > 0)?;
        let mode = match kind {
            b"tx" => {
                let size = usize::try_from(parse_u64(parts.next()?)?).ok()?;
                (MIN_FRAME..=MAX_GSO)
                    .contains(&size)
                    .then_some(Self::Tx { count, size })?
            }
            b"rx" => Self::Rx { count },
            _ => return None,
        };
        parts.next().is_none().then_some(mode)
    }
}

/// The 12-byte virtio-net header and the frame of `size` bytes from `mac`, as sent.
pub fn build_frame(mac: [u8; 6], size: usize) -> Vec<u8> {
    let mut buf = vec![0u8; HDR_LEN + size];
    let (hdr, frame) = buf.split_at_mut(HDR_LEN);
    frame[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    frame[6..12].copy_from_slice(&mac);
    if size <= MAX_PLAIN {
        frame[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
        for (i, b) in frame[14..].iter_mut().enumerate() {
            *b = i as u8;
        }
        return buf;
    }
    // A TCP/IPv4 segment for the device to cut into GSO_MSS pieces.
    frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (size - 14) as u16;
    let ip = &mut frame[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&[10, 0, 0, 2]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 1]);
    let sum = ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let tcp = &mut frame[34..54];
    tcp[0..2].copy_from_slice(&40_000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&9u16.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x18; // PSH, ACK
    tcp[14..16].copy_from_slice(&0xffffu16.to_be_bytes());
    // virtio_net_hdr: NEEDS_CSUM, GSO_TCPV4, hdr_len, gso_size, csum_start, csum_offset.
    hdr[0] = 1;
    hdr[1] = 1;
    hdr[2..4].copy_from_slice(&54u16.to_le_bytes());
    hdr[4..6].copy_from_slice(&GSO_MSS.to_le_bytes());
    hdr[6..8].copy_from_slice(&34u16.to_le_bytes());
    hdr[8..10].copy_from_slice(&16u16.to_le_bytes());
    buf
}

/// The Internet checksum of an IPv4 header whose checksum field is zero.
pub fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The frame's ethertype if the device wrote a whole header and Ethernet header.
pub fn rx_ethertype(buf: &[u8], used_len: u32) -> Option<u16> {
    let len = usize::try_from(used_len).ok()?.min(buf.len());
    (len >= HDR_LEN + 14).then(|| u16::from_be_bytes([buf[HDR_LEN + 12], buf[HDR_LEN + 13]]))
}

/// Runs `mode` on net device `dev`; false if the device failed.
pub fn run(dev: MmioDevice, mode: FramesMode, clock: Clock) -> bool {
    let result = match mode {
        FramesMode::Tx { count, size } => send(dev, count, size, clock),
        FramesMode::Rx { count } => receive(dev, count, clock),
    };
    match result {
        Ok(()) => true,
        Err(e) => {
            say!("frames failed: {e}");
            false
        }
    }
}

/// Brings the device up with `wanted` features (plus event indexes and the MAC if offered).
fn bring_up(
    dev: MmioDevice,
    wanted: u64,
) -> Result<(u64, [u8; 6], Virtqueue, Virtqueue), InitError> {
    let features = dev.negotiate(wanted | F_MAC | F_RING_EVENT_IDX)?;
    let (rx, tx) = setup_queues(dev, features)?;
    let mac = if features & F_MAC != 0 {
        dev.config_bytes::<6>(0)
    } else {
        FALLBACK_MAC
    };
    Ok((features, mac, rx, tx))
}

/// `n` per second over `micros` (0 for no time).
pub fn per_second(n: u64, micros: u64) -> u64 {
    if micros == 0 {
        return 0;
    }
    u64::try_from(u128::from(n) * 1_000_000 / u128::from(micros)).unwrap_or(u64::MAX)
}

/// Prints the result line of `dir`.
fn report(dir: &str, frames: u64, bytes: u64, ticks: u64, clock: Clock) {
    let micros = clock.micros_ceil(ticks).max(1);
    say!(
        "frames {dir} {frames} frames {bytes} bytes {micros} us {} fps {} MBps",
        per_second(frames, micros),
        per_second(bytes, micros) / 1_000_000
    );
}

fn send(dev: MmioDevice, count: u64, size: usize, clock: Clock) -> Result<(), InitError> {
    let gso = size > MAX_PLAIN;
    let wanted = if gso { F_CSUM | F_HOST_TSO4 } else { 0 };
    let (features, mac, _rx, mut tx) = bring_up(dev, wanted)?;
    if gso && features & (F_CSUM | F_HOST_TSO4) != F_CSUM | F_HOST_TSO4 {
        say!("frames tx: the device does not offer TSO4; large frames cannot be sent");
        dev.fail();
        return Ok(());
    }
    dev.driver_ok()?;
    let frame = build_frame(mac, size);
    let slots = usize::from(tx.size()).min((TX_POOL_BYTES / frame.len()).max(1));
    // Every buffer holds the same frame, built once; the device only reads them.
    let pool: Vec<Vec<u8>> = (0..slots).map(|_| frame.clone()).collect();
    let mut free: Vec<usize> = (0..slots).collect();
    let mut slot_of = vec![0usize; usize::from(tx.size())];
    let (mut added, mut done) = (0u64, 0u64);
    say!("frames tx start {count} frames of {size} bytes, {slots} buffers");
    let start = time::now();
    while done < count {
        let mut progress = false;
        while let Some(used) = tx.pop_used() {
            let used = used.map_err(|_| InitError::NeedsReset)?;
            free.push(slot_of[usize::from(used.head)]);
            done += 1;
            progress = true;
        }
        let mut kick = false;
        while added < count {
            let Some(slot) = free.pop() else { break };
            let buf = &pool[slot];
            let head = tx
                .add(&[Buffer::readable(buf.as_ptr() as u64, buf.len() as u32)])
                .map_err(|_| InitError::NeedsReset)?;
            slot_of[usize::from(head)] = slot;
            added += 1;
            kick = true;
        }
        if kick && tx.should_notify() {
            dev.notify(TX_QUEUE);
        }
        if progress || kick || done >= count {
            continue;
        }
        // Nothing to do until buffers come back: sleep until most of those in flight are.
        let in_flight = tx.in_flight();
        tx.delay_used_event((in_flight - in_flight / 4).max(1) - 1);
        // (Register reads exit to the vmm: the status is read only when a wait times out.)
        if !tx.has_used() && wait::wait_micros(10_000) == Wake::Timeout && dev.needs_reset() {
            return Err(InitError::NeedsReset);
        }
    }
    let ticks = time::now() - start;
    report("tx", count, count * size as u64, ticks, clock);
    Ok(())
}

fn receive(dev: MmioDevice, count: u64, clock: Clock) -> Result<(), InitError> {
    let (_, _, mut rx, _tx) = bring_up(dev, 0)?;
    let slots = usize::from(rx.size());
    let mut bufs = vec![0u8; slots * RX_BUF];
    let mut slot_of = vec![0usize; slots];
    let base = bufs.as_mut_ptr() as u64;
    for slot in 0..slots {
        let addr = base + (slot * RX_BUF) as u64;
        let head = rx
            .add(&[Buffer::writable(addr, RX_BUF as u32)])
            .map_err(|_| InitError::NeedsReset)?;
        slot_of[usize::from(head)] = slot;
    }
    dev.driver_ok()?;
    dev.notify(RX_QUEUE);
    say!("frames rx ready for {count} frames");
    let (mut frames, mut bytes, mut other) = (0u64, 0u64, 0u64);
    let (mut first, mut last) = (0u64, 0u64);
    let ready = time::now();
    let mut streaming = false;
    while frames < count {
        let (mut got, mut ours) = (false, false);
        while let Some(used) = rx.pop_used() {
            let used = used.map_err(|_| InitError::NeedsReset)?;
            let slot = slot_of[usize::from(used.head)];
            let buf = &bufs[slot * RX_BUF..(slot + 1) * RX_BUF];
            if rx_ethertype(buf, used.len) == Some(ETHERTYPE) {
                if frames == 0 {
                    first = time::now();
                }
                frames += 1;
                ours = true;
                bytes += u64::from(used.len) - HDR_LEN as u64;
            } else {
                other += 1;
            }
            let head = rx
                .add(&[Buffer::writable(
                    base + (slot * RX_BUF) as u64,
                    RX_BUF as u32,
                )])
                .map_err(|_| InitError::NeedsReset)?;
            slot_of[usize::from(head)] = slot;
            got = true;
        }
        let now = time::now();
        if ours {
            // Other frames (the host's IPv6 chatter) do not count, nor extend the time.
            last = now;
        }
        if got {
            if rx.should_notify() {
                dev.notify(RX_QUEUE);
            }
            continue;
        }
        let idle = if frames == 0 {
            now - ready > clock.ticks_from_millis(START_MILLIS)
        } else {
            now - last > clock.ticks_from_millis(IDLE_MILLIS)
        };
        if idle {
            break;
        }
        // While frames stream in, woken once per RX_BATCH of them; after a wait that timed
        // out (the stream paused or ended), at the next frame again.
        if streaming {
            rx.delay_used_event(RX_BATCH - 1);
            if rx.has_used() {
                continue;
            }
        }
        streaming = wait::wait_micros(1000) == Wake::Device;
        if !streaming && dev.needs_reset() {
            break;
        }
    }
    if other > 0 {
        say!("frames rx ignored {other} other frames");
    }
    // From the first frame's arrival to the last's: the rate the path delivered.
    report("rx", frames, bytes, last.saturating_sub(first), clock);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(per_second(3, 1_500_000), 2);
        assert_eq!(per_second(3, 0), 0);
        assert_eq!(per_second(u64::MAX, 1), u64::MAX);
    }

    #[test]
    fn parses_modes() {
        assert_eq!(
            FramesMode::parse(b"tx,1000,64"),
            Some(FramesMode::Tx {
                count: 1000,
                size: 64
            })
        );
        assert_eq!(
            FramesMode::parse(b"rx,5"),
            Some(FramesMode::Rx { count: 5 })
        );
        assert_eq!(
            FramesMode::parse(b"tx,1,65549"),
            Some(FramesMode::Tx {
                count: 1,
                size: 65_549
            })
        );
        for bad in [
            &b"tx,1000"[..],
            b"tx,0,64",
            b"tx,10,59",
            b"tx,10,65550",
            b"rx",
            b"rx,x",
            b"rx,5,64",
            b"up,5",
            b"",
        ] {
            assert_eq!(FramesMode::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn plain_frames_carry_the_ethertype_and_a_zero_header() {
        let buf = build_frame([2, 0, 0, 0, 0, 2], 64);
        assert_eq!(buf.len(), HDR_LEN + 64);
        assert!(buf[..HDR_LEN].iter().all(|&b| b == 0));
        assert_eq!(&buf[HDR_LEN + 6..HDR_LEN + 12], &[2, 0, 0, 0, 0, 2]);
        assert_eq!(rx_ethertype(&buf, buf.len() as u32), Some(ETHERTYPE));
        assert_eq!(rx_ethertype(&buf, 20), None);
    }

    #[test]
    fn large_frames_are_tcp_segments_for_the_device_to_cut() {
        let size = 65_549;
        let buf = build_frame([2, 0, 0, 0, 0, 2], size);
        let frame = &buf[HDR_LEN..];
        assert_eq!(u16::from_be_bytes([frame[12], frame[13]]), 0x0800);
        assert_eq!(u16::from_be_bytes([frame[16], frame[17]]), 65_535);
        assert_eq!(
            ipv4_checksum(&frame[14..34]),
            0,
            "a valid header sums to zero"
        );
        let le = |at: usize| u16::from_le_bytes([buf[at], buf[at + 1]]);
        assert_eq!((buf[0], buf[1]), (1, 1), "NEEDS_CSUM, GSO_TCPV4");
        assert_eq!((le(2), le(4), le(6), le(8)), (54, GSO_MSS, 34, 16));
    }
}
