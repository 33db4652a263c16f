//! The instance status check's reachability test, as EC2 makes it from outside the guest: an
//! ARP request for the guest's private address written down its ENI's tap (as if from the
//! subnet's router), and whether the guest answers. It needs nothing from the guest but a
//! working network stack, so a guest whose kernel hangs, whose network is down or whose
//! stack is wedged fails it.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::packet_socket;

/// Who is asked on one tap, and in whose name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpTarget {
    /// The ENI's tap.
    pub tap: String,
    /// The guest's private address.
    pub guest_ip: Ipv4Addr,
    /// The ENI's MAC.
    pub guest_mac: [u8; 6],
    /// The subnet's router (the bridge's address), the request's sender.
    pub router_ip: Ipv4Addr,
    /// The bridge's MAC, where the answer goes.
    pub router_mac: [u8; 6],
}

/// What the check found on one tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The guest answered.
    Answered,
    /// The guest did not answer in time.
    Silent,
    /// The tap could not be used (gone, or the socket failed): nothing was asked.
    Unchecked,
}

const ETHERTYPE_ARP: u16 = 0x0806;
const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;
/// An Ethernet header and an IPv4-over-Ethernet ARP packet.
const FRAME_LEN: usize = 14 + 28;

/// The broadcast ARP request "who has `guest_ip`? tell `router_ip`".
pub fn request_frame(t: &ArpTarget) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&t.router_mac);
    f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // hardware: Ethernet
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // protocol: IPv4
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&ARP_REQUEST.to_be_bytes());
    f[22..28].copy_from_slice(&t.router_mac);
    f[28..32].copy_from_slice(&t.router_ip.octets());
    // Target hardware address: unknown, zero.
    f[38..42].copy_from_slice(&t.guest_ip.octets());
    f
}

/// Whether `frame` is the guest's ARP reply: from its MAC, giving its address.
pub fn is_reply(frame: &[u8], t: &ArpTarget) -> bool {
    frame.len() >= FRAME_LEN
        && frame[12..14] == ETHERTYPE_ARP.to_be_bytes()
        && frame[14..16] == 1u16.to_be_bytes()
        && frame[16..18] == 0x0800u16.to_be_bytes()
        && frame[20..22] == ARP_REPLY.to_be_bytes()
        && frame[22..28] == t.guest_mac
        && frame[28..32] == t.guest_ip.octets()
}

/// Classic BPF: accept only ARP replies.
fn filter() -> [libc::sock_filter; 6] {
    let op = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    [
        op(0x28, 0, 0, 12),                       // ldh [12]: ethertype
        op(0x15, 0, 3, u32::from(ETHERTYPE_ARP)), // jeq ARP, else drop
        op(0x28, 0, 0, 20),                       // ldh [20]: ARP operation
        op(0x15, 0, 1, u32::from(ARP_REPLY)),     // jeq reply, else drop
        op(0x06, 0, 0, 65535),                    // accept
        op(0x06, 0, 0, 0),                        // drop
    ]
}

/// Asks every target at once and waits up to `wait` for the answers, asking the silent ones
/// again halfway (a frame lost on a busy host does not fail the check). Must run on a thread
/// in the taps' network namespace.
///
/// One packet socket serves the whole round, bound to no interface: it writes each request
/// to its tap and reads the replies wherever they show (on the tap, and again on its bridge),
/// telling them apart by the guest's MAC and address. (A socket per tap would cost a kernel
/// RCU grace period at each close: seconds for hundreds of instances.) Time is linear in the
/// targets: two frames each at most, a hash lookup per reply.
pub fn check(targets: &[ArpTarget], wait: Duration) -> Vec<Reach> {
    let mut reach = vec![Reach::Unchecked; targets.len()];
    if targets.is_empty() {
        return reach;
    }
    let fd = match packet_socket::open_unbound(&filter()) {
        Ok(fd) => fd,
        Err(e) => {
            tracing::warn!("reachability: cannot open a packet socket: {e}");
            return reach;
        }
    };
    let mut by_guest: HashMap<([u8; 6], Ipv4Addr), usize> = HashMap::with_capacity(targets.len());
    let mut index = vec![0u32; targets.len()];
    let ask = |i: usize, ifindex: u32| {
        packet_socket::send_frame_to(&fd, ifindex, &request_frame(&targets[i]))
    };
    for (i, t) in targets.iter().enumerate() {
        match packet_socket::ifindex(&t.tap).and_then(|ifx| ask(i, ifx).map(|()| ifx)) {
            Ok(ifx) => {
                index[i] = ifx;
                reach[i] = Reach::Silent;
                by_guest.insert((t.guest_mac, t.guest_ip), i);
            }
            Err(e) => tracing::debug!(tap = %t.tap, "reachability: cannot ask: {e}"),
        }
    }
    let start = Instant::now();
    let mut asked_again = false;
    let mut silent = by_guest.len();
    let mut buf = [0u8; 128];
    while silent > 0 {
        let elapsed = start.elapsed();
        if elapsed >= wait {
            break;
        }
        if !asked_again && elapsed >= wait / 2 {
            asked_again = true;
            for (i, r) in reach.iter().enumerate() {
                if *r == Reach::Silent {
                    let _ = ask(i, index[i]);
                }
            }
        }
        let until = if asked_again { wait } else { wait / 2 };
        let timeout = until.saturating_sub(elapsed).as_millis().max(1);
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is one valid pollfd for the call.
        let n = unsafe { libc::poll(&mut pfd, 1, i32::try_from(timeout).unwrap_or(i32::MAX)) };
        if n <= 0 {
            continue;
        }
        // Drain what is queued.
        loop {
            match packet_socket::recv_frame(&fd, &mut buf) {
                Ok(Some(len)) => {
                    let frame = &buf[..len.min(buf.len())];
                    let Some(key) = reply_sender(frame) else {
                        continue;
                    };
                    if let Some(&i) = by_guest.get(&key)
                        && reach[i] == Reach::Silent
                        && is_reply(frame, &targets[i])
                    {
                        reach[i] = Reach::Answered;
                        silent -= 1;
                    }
                }
                Ok(None) => {}
                Err(_) => break,
            }
        }
    }
    reach
}

/// The sender (MAC, address) of an ARP reply.
fn reply_sender(frame: &[u8]) -> Option<([u8; 6], Ipv4Addr)> {
    if frame.len() < FRAME_LEN || frame[20..22] != ARP_REPLY.to_be_bytes() {
        return None;
    }
    let mac: [u8; 6] = frame[22..28].try_into().ok()?;
    let ip: [u8; 4] = frame[28..32].try_into().ok()?;
    Some((mac, Ipv4Addr::from(ip)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> ArpTarget {
        ArpTarget {
            tap: "kec2t1".into(),
            guest_ip: Ipv4Addr::new(172, 31, 0, 4),
            guest_mac: [2, 0, 0, 0, 0, 4],
            router_ip: Ipv4Addr::new(172, 31, 0, 1),
            router_mac: [2, 0, 0, 0, 0, 1],
        }
    }

    /// The guest's answer to `request`, as a stack writes it.
    fn answer(request: &[u8; FRAME_LEN], mac: [u8; 6]) -> Vec<u8> {
        let mut r = request.to_vec();
        r[0..6].copy_from_slice(&request[6..12]);
        r[6..12].copy_from_slice(&mac);
        r[20..22].copy_from_slice(&ARP_REPLY.to_be_bytes());
        r[32..38].copy_from_slice(&request[22..28]);
        r[38..42].copy_from_slice(&request[28..32]);
        r[22..28].copy_from_slice(&mac);
        r[28..32].copy_from_slice(&request[38..42]);
        r.extend_from_slice(&[0; 18]); // padding to the Ethernet minimum
        r
    }

    #[test]
    fn the_request_asks_for_the_guest_in_the_routers_name() {
        let t = target();
        let f = request_frame(&t);
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[20..22], &[0, 1]);
        assert_eq!(&f[22..28], &t.router_mac);
        assert_eq!(&f[28..32], &[172, 31, 0, 1]);
        assert_eq!(&f[38..42], &[172, 31, 0, 4]);
    }

    #[test]
    fn only_the_guests_own_reply_counts() {
        let t = target();
        let request = request_frame(&t);
        assert!(is_reply(&answer(&request, t.guest_mac), &t));
        // Another MAC claiming the address, the request itself, a short frame: no.
        assert!(!is_reply(&answer(&request, [2, 0, 0, 0, 0, 9]), &t));
        assert!(!is_reply(&request, &t));
        assert!(!is_reply(&answer(&request, t.guest_mac)[..30], &t));
        let mut other = t.clone();
        other.guest_ip = Ipv4Addr::new(172, 31, 0, 5);
        assert!(!is_reply(&answer(&request, t.guest_mac), &other));
    }

    #[test]
    fn the_reply_names_its_sender() {
        let t = target();
        let reply = answer(&request_frame(&t), t.guest_mac);
        assert_eq!(reply_sender(&reply), Some((t.guest_mac, t.guest_ip)));
        assert_eq!(reply_sender(&request_frame(&t)), None);
    }

    #[test]
    fn a_missing_tap_is_unchecked_not_silent() {
        let mut t = target();
        t.tap = "kec2-no-such".into();
        assert_eq!(
            check(&[t], Duration::from_millis(50)),
            vec![Reach::Unchecked]
        );
    }

    proptest::proptest! {
        #[test]
        fn any_frame_is_judged_without_panic(frame in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100)) {
            let _ = is_reply(&frame, &target());
        let _ = reply_sender(&frame);
        }
    }
}
