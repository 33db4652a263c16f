//! The net device on a real tap, without KVM: a thread of the test moves into a network
//! namespace of its own, where the tap and an AF_PACKET socket on it live, and plays the
//! driver on guest memory. Needs root (CAP_NET_ADMIN), as the integration tests do.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryMmap};

use super::*;
use crate::devices::irq::CountingIrq;
use crate::devices::virtio::queue::testing::{offer, queue_at, used, write_desc};
use crate::devices::virtio::queue::{DESC_F_NEXT, DESC_F_WRITE};
use crate::kvm::memory::create_guest_memory;

const TAP: &str = "kec2t0";
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];
const TX_BASE: u64 = 0x4_0000;
const RX_BASE: u64 = 0x1_0000;
const FRAMES: u64 = 0x10_0000;

/// Runs `f` on a thread in a new network namespace; false if one cannot be made (not root).
fn in_own_netns(f: impl FnOnce() + Send + 'static) -> bool {
    std::thread::spawn(move || {
        // SAFETY: unshare only changes this thread's namespaces.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            eprintln!("skipped: cannot make a network namespace (needs root)");
            return false;
        }
        f();
        true
    })
    .join()
    .expect("the test thread panicked")
}

/// An AF_PACKET socket on `TAP` (which must be up), non-blocking.
fn packet_socket() -> OwnedFd {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket calls with valid arguments; the fd is owned at once.
    unsafe {
        let fd = libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK,
            proto.into(),
        );
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let fd = OwnedFd::from_raw_fd(fd);
        let name = std::ffi::CString::new(TAP).unwrap();
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = proto;
        addr.sll_ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
        let rc = libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        );
        assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
        fd
    }
}

/// Frames of ours the socket has received so far.
fn received(sock: &OwnedFd) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut buf = vec![0u8; 70_000];
    for _ in 0..200 {
        // SAFETY: reads into a buffer of the given length.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            if frames.is_empty() {
                std::thread::sleep(std::time::Duration::from_millis(5));
                continue;
            }
            break;
        }
        let frame = &buf[..n as usize];
        if frame.len() >= 14 && frame[12..14] == ETHERTYPE {
            frames.push(frame.to_vec());
        }
    }
    frames
}

fn send(sock: &OwnedFd, frame: &[u8]) {
    // SAFETY: sends from a buffer of the given length.
    let n = unsafe { libc::send(sock.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    assert_eq!(
        n,
        frame.len() as isize,
        "{}",
        std::io::Error::last_os_error()
    );
}

fn frame(tag: u8) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02];
    f.extend_from_slice(&ETHERTYPE);
    f.resize(60, tag);
    f
}

struct Rig {
    mem: GuestMemoryMmap,
    net: Net,
    rx: Queue,
    tx: Queue,
    irqs: Arc<AtomicU32>,
    sock: OwnedFd,
}

/// A device on a fresh tap, activated with `features`.
fn rig(features: u64) -> Rig {
    let mem = create_guest_memory(4 << 20).unwrap();
    let mut net = Net::new(TAP, [2, 0, 0, 0, 0, 2], RateLimiter::default()).unwrap();
    // No IPv6 chatter (router solicitations) in the rx buffers.
    let _ = Command::new("sysctl")
        .args(["-qw", &format!("net.ipv6.conf.{TAP}.disable_ipv6=1")])
        .status();
    let up = Command::new("ip")
        .args(["link", "set", TAP, "up"])
        .status()
        .unwrap();
    assert!(up.success());
    let sock = packet_socket();
    let mut rx = queue_at(&mem, RX_BASE, 16);
    let mut tx = queue_at(&mem, TX_BASE, 16);
    let event_idx = features & F_RING_EVENT_IDX != 0;
    rx.set_event_idx(event_idx);
    tx.set_event_idx(event_idx);
    let irqs = Arc::new(AtomicU32::new(0));
    let interrupt = VirtioInterrupt::new(Box::new(CountingIrq(irqs.clone())), None);
    net.activate(Activation {
        memory: mem.clone(),
        queues: vec![rx.clone(), tx.clone()],
        acked_features: features,
        interrupt,
    })
    .unwrap();
    Rig {
        mem,
        net,
        rx,
        tx,
        irqs,
        sock,
    }
}

impl Rig {
    /// Offers frame `i` on the tx queue as a header and a body in two descriptors.
    fn offer_tx(&self, i: u16, header: [u8; 12], body: &[u8]) {
        let at = FRAMES + u64::from(i) * 0x1000;
        self.mem.write_slice(&header, GuestAddress(at)).unwrap();
        self.mem
            .write_slice(body, GuestAddress(at + 0x100))
            .unwrap();
        write_desc(&self.mem, &self.tx, 2 * i, at, 12, DESC_F_NEXT, 2 * i + 1);
        write_desc(
            &self.mem,
            &self.tx,
            2 * i + 1,
            at + 0x100,
            body.len() as u32,
            0,
            0,
        );
        offer(&self.mem, &self.tx, 2 * i);
    }

    fn irqs(&self) -> u32 {
        self.irqs.load(Ordering::SeqCst)
    }
}

#[test]
fn tx_frames_reach_the_tap_with_one_interrupt_per_pass() {
    in_own_netns(|| {
        let mut r = rig(F_RING_EVENT_IDX);
        for i in 0..3u16 {
            r.offer_tx(i, [0; 12], &frame(i as u8));
        }
        r.net.handle_event(DeviceEvent::Queue(TX));
        let frames = received(&r.sock);
        assert_eq!(frames.len(), 3);
        assert!(
            frames
                .iter()
                .enumerate()
                .all(|(i, f)| f[59] == i as u8 && f.len() == 60)
        );
        assert_eq!(used(&r.mem, &r.tx).0, 3);
        assert_eq!(r.irqs(), 1, "one interrupt for the pass");
        // The driver asks to hear only after entry 5: entries 3 and 4 pass silently.
        let used_event = r.tx.avail_ring.unchecked_add(4 + 2 * 16);
        r.mem.write_obj(5u16, used_event).unwrap();
        for i in 3..5u16 {
            r.offer_tx(i, [0; 12], &frame(i as u8));
        }
        r.net.handle_event(DeviceEvent::Queue(TX));
        assert_eq!(received(&r.sock).len(), 2);
        assert_eq!(r.irqs(), 1, "used_event not reached");
        r.offer_tx(5, [0; 12], &frame(5));
        r.net.handle_event(DeviceEvent::Queue(TX));
        assert_eq!(r.irqs(), 2);
        // Drained: the device asks to be notified of the next entry.
        let avail_event: u16 = r
            .mem
            .read_obj(r.tx.used_ring.unchecked_add(4 + 8 * 16))
            .unwrap();
        assert_eq!(avail_event, 6);
    });
}

#[test]
fn a_lying_vnet_header_costs_only_its_frame() {
    in_own_netns(|| {
        let mut r = rig(0);
        // GSO TCPv4 with a segment size of 0 and a header longer than the frame; then a
        // checksum request pointing past the end.
        let mut gso = [0u8; 12];
        gso[0] = 1;
        gso[1] = 1;
        gso[2..4].copy_from_slice(&9000u16.to_le_bytes());
        gso[6..8].copy_from_slice(&34u16.to_le_bytes());
        gso[8..10].copy_from_slice(&16u16.to_le_bytes());
        r.offer_tx(0, gso, &frame(0));
        let mut csum = [0u8; 12];
        csum[0] = 1;
        csum[6..8].copy_from_slice(&u16::MAX.to_le_bytes());
        csum[8..10].copy_from_slice(&u16::MAX.to_le_bytes());
        r.offer_tx(1, csum, &frame(1));
        r.offer_tx(2, [0; 12], &frame(2));
        r.net.handle_event(DeviceEvent::Queue(TX));
        let frames = received(&r.sock);
        assert!(
            frames.iter().any(|f| f[59] == 2),
            "the honest frame went out"
        );
        assert!(
            !frames.iter().any(|f| f[59] == 0),
            "the lying GSO frame did not"
        );
        assert_eq!(used(&r.mem, &r.tx).0, 3, "every chain came back");
        assert!(r.net.counters().snapshot(String::new()).errors >= 1);
        assert!(r.net.active.is_some(), "the device goes on");
    });
}

#[test]
fn rx_frames_land_in_guest_buffers_or_are_dropped_when_too_big() {
    in_own_netns(|| {
        let mut r = rig(F_RING_EVENT_IDX);
        // Buffer 0 is too small for a frame; buffers 1 and 2 take one each, header and
        // frame split over two descriptors.
        write_desc(&r.mem, &r.rx, 0, FRAMES, 40, DESC_F_WRITE, 0);
        offer(&r.mem, &r.rx, 0);
        for i in 1..3u16 {
            let at = FRAMES + u64::from(i) * 0x1000;
            write_desc(
                &r.mem,
                &r.rx,
                2 * i,
                at,
                12,
                DESC_F_WRITE | DESC_F_NEXT,
                2 * i + 1,
            );
            write_desc(&r.mem, &r.rx, 2 * i + 1, at + 0x100, 1600, DESC_F_WRITE, 0);
            offer(&r.mem, &r.rx, 2 * i);
        }
        for tag in 0..3u8 {
            send(&r.sock, &frame(tag));
        }
        r.net.handle_event(DeviceEvent::Fd(FD_TAP));
        let (idx, entries) = used(&r.mem, &r.rx);
        assert_eq!(idx, 3);
        assert_eq!(entries[0], (0, 0), "too small: returned empty");
        assert_eq!(entries[1], (2, 72));
        assert_eq!(entries[2], (4, 72));
        let mut body = [0u8; 60];
        r.mem
            .read_slice(&mut body, GuestAddress(FRAMES + 0x2100))
            .unwrap();
        assert_eq!(body.to_vec(), frame(2));
        assert_eq!(r.irqs(), 1);
        // Out of buffers: the device asks to be told of new ones.
        let avail_event: u16 = r
            .mem
            .read_obj(r.rx.used_ring.unchecked_add(4 + 8 * 16))
            .unwrap();
        assert_eq!(avail_event, 3);
    });
}

#[test]
fn the_offered_guest_offloads_are_those_the_tap_takes() {
    in_own_netns(|| {
        let net = Net::new(TAP, [2, 0, 0, 0, 0, 2], RateLimiter::default()).unwrap();
        let offered = net.features();
        // This kernel's tap takes all four; the offer follows what TUNSETOFFLOAD accepted.
        for feature in [F_GUEST_CSUM, F_GUEST_TSO4, F_GUEST_TSO6, F_GUEST_ECN] {
            assert_ne!(offered & feature, 0, "{feature:#x}");
        }
        // The tap goes with its only descriptor; the rig makes it again.
        drop(net);
        let mut r = rig(offered);
        assert!(
            r.net.active.is_some(),
            "activated with every offload the tap was asked for"
        );
        r.offer_tx(0, [0; 12], &frame(0));
        r.net.handle_event(DeviceEvent::Queue(TX));
        assert_eq!(received(&r.sock).len(), 1);
    });
}
