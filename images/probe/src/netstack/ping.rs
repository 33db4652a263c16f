//! `probe.ping=`: ICMP echo requests from the probe, through a smoltcp ICMP socket bound to
//! an identifier of its own. (Answering other hosts' pings needs no socket: the interface
//! replies to echo requests itself.)

use alloc::vec;
use core::net::Ipv4Addr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::icmp;
use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr, IpAddress};

use super::Stack;
use crate::say;
use crate::time;

/// Echo requests sent to each address at most.
pub const PING_TRIES: u16 = 5;
/// Time between two requests to the same address, and how long the last one is waited for.
pub const PING_INTERVAL_MS: u64 = 1000;
/// The payload of every echo request.
pub const PING_PAYLOAD: &[u8] = b"kec2 probe ping";

/// What pinging one address came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PingOutcome {
    /// An echo reply came back: microseconds from the request leaving the stack to the reply.
    Reply {
        /// The round-trip time in microseconds.
        rtt_us: u64,
    },
    /// No reply to any of the requests.
    Timeout,
}

impl Stack {
    /// Sends up to `tries` echo requests to `ip`, `interval_ms` apart, and stops at the first
    /// reply; gives up `interval_ms` after the last request. The services keep running.
    /// While the address's hardware address is still being resolved (ARP) the request waits
    /// in the socket and no further one is queued.
    pub fn ping(&mut self, ip: [u8; 4], tries: u16, interval_ms: u64) -> PingOutcome {
        if self.address.is_none() {
            return PingOutcome::Timeout;
        }
        let target = Ipv4Addr::from(ip);
        // An identifier of this ping's own: replies to earlier pings do not count.
        let ident = (time::now() >> 6) as u16;
        let mut socket = icmp::Socket::new(
            icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 8], vec![0; 1024]),
            icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 2], vec![0; 256]),
        );
        if socket.bind(icmp::Endpoint::Ident(ident)).is_err() {
            return PingOutcome::Timeout;
        }
        let handle = self.sockets.add(socket);
        // When each request left the stack (TSC), by sequence number.
        let mut sent = vec![None; usize::from(tries)];
        let mut queued = None;
        let mut outcome = PingOutcome::Timeout;
        'tries: for seq in 0..tries {
            let try_end = time::now().saturating_add(self.clock.ticks_from_millis(interval_ms));
            let s = self.sockets.get_mut::<icmp::Socket>(handle);
            if s.send_queue() == 0 {
                let request = Icmpv4Repr::EchoRequest {
                    ident,
                    seq_no: seq,
                    data: PING_PAYLOAD,
                };
                if let Ok(buf) = s.send(request.buffer_len(), IpAddress::Ipv4(target)) {
                    request.emit(
                        &mut Icmpv4Packet::new_unchecked(buf),
                        &ChecksumCapabilities::default(),
                    );
                    queued = Some(seq);
                }
            }
            loop {
                self.poll(false);
                let now = time::now();
                let s = self.sockets.get_mut::<icmp::Socket>(handle);
                if let Some(seq) = queued
                    && s.send_queue() == 0
                {
                    sent[usize::from(seq)] = Some(now);
                    queued = None;
                }
                while let Ok((packet, from)) = s.recv() {
                    if from != IpAddress::Ipv4(target) {
                        continue;
                    }
                    let Some(seq_no) = echo_reply_seq(packet, ident) else {
                        continue;
                    };
                    if let Some(Some(at)) = sent.get(usize::from(seq_no)) {
                        let rtt_us = self.clock.micros_ceil(now.saturating_sub(*at));
                        outcome = PingOutcome::Reply { rtt_us };
                        break 'tries;
                    }
                }
                if now >= try_end {
                    break;
                }
                let left = self.clock.micros_ceil(try_end - now);
                self.wait_idle(Some(left));
            }
        }
        self.sockets.remove(handle);
        outcome
    }
}

/// The sequence number of `packet` if it is an echo reply with identifier `ident`.
pub fn echo_reply_seq(packet: &[u8], ident: u16) -> Option<u16> {
    let packet = Icmpv4Packet::new_checked(packet).ok()?;
    match Icmpv4Repr::parse(&packet, &ChecksumCapabilities::default()).ok()? {
        Icmpv4Repr::EchoReply {
            ident: got, seq_no, ..
        } if got == ident => Some(seq_no),
        _ => None,
    }
}

/// The `probe.ping=` option: pings each of `targets` in turn ([`PING_TRIES`] requests,
/// [`PING_INTERVAL_MS`] apart) and prints `probe: ping <ip> ok rtt_us=<n>` or
/// `probe: ping <ip> timeout`.
pub fn ping_all(stack: &mut Stack, targets: &[[u8; 4]]) {
    for &ip in targets {
        match stack.ping(ip, PING_TRIES, PING_INTERVAL_MS) {
            PingOutcome::Reply { rtt_us } => say!("ping {} ok rtt_us={rtt_us}", Ipv4Addr::from(ip)),
            PingOutcome::Timeout => say!("ping {} timeout", Ipv4Addr::from(ip)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_echo_replies_with_our_identifier_count() {
        let emit = |repr: Icmpv4Repr<'_>| {
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(
                &mut Icmpv4Packet::new_unchecked(&mut buf[..]),
                &ChecksumCapabilities::default(),
            );
            buf
        };
        let reply = emit(Icmpv4Repr::EchoReply {
            ident: 0x1234,
            seq_no: 3,
            data: PING_PAYLOAD,
        });
        assert_eq!(echo_reply_seq(&reply, 0x1234), Some(3));
        assert_eq!(echo_reply_seq(&reply, 0x1235), None);
        let request = emit(Icmpv4Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 3,
            data: PING_PAYLOAD,
        });
        assert_eq!(echo_reply_seq(&request, 0x1234), None);
        let mut corrupt = reply.clone();
        corrupt[8] ^= 1;
        assert_eq!(echo_reply_seq(&corrupt, 0x1234), None, "bad checksum");
        assert_eq!(echo_reply_seq(&reply[..4], 0x1234), None);
    }

    /// Two stacks over fake virtio net devices joined by a wire: the client's ping of the
    /// server is answered (by the server's interface, with no socket of its own), a ping of
    /// an address nobody has times out after its tries.
    #[test]
    fn pings_between_two_stacks() {
        use crate::cmdline::{Ipv4Cidr, NetConfig};
        use crate::keyboard::Keyboard;
        use crate::time::Clock;
        use crate::virtio::fake::{Wire, dummy_window};
        use crate::virtio::net::VirtioNet;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};

        let clock = Clock::new(0);
        let (server_dev, server_rings) = VirtioNet::for_test(dummy_window(), [2, 0, 0, 0, 0, 2]);
        let (client_dev, client_rings) = VirtioNet::for_test(dummy_window(), [2, 0, 0, 0, 0, 1]);
        let _wire = Wire::connect(server_rings, client_rings);
        let config = |last| NetConfig::Static {
            cidr: Ipv4Cidr {
                addr: [10, 0, 0, last],
                prefix: 24,
            },
            gateway: None,
        };
        let stack =
            |dev, last| Stack::new(dev, config(last), b"probe", 1000, clock, Keyboard::new());
        let mut server = stack(server_dev, 2);
        let mut client = stack(client_dev, 1);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let serving = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                server.poll(true);
            }
        });

        for _ in 0..3 {
            match client.ping([10, 0, 0, 2], PING_TRIES, PING_INTERVAL_MS) {
                PingOutcome::Reply { rtt_us } => assert!(rtt_us < 1_000_000, "{rtt_us} us"),
                PingOutcome::Timeout => panic!("no reply from 10.0.0.2"),
            }
        }
        // (The test clock assumes a 1 GHz TSC, so "100 ms" is shorter or longer in real time.)
        let start = std::time::Instant::now();
        assert_eq!(client.ping([10, 0, 0, 9], 3, 100), PingOutcome::Timeout);
        assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
        // The client's sockets are back to the services alone, and they still work.
        let r = client.http_get([10, 0, 0, 2], 80, b"/", &[]).unwrap();
        assert_eq!(r.first_line(), b"probe");
        stop.store(true, Ordering::SeqCst);
        serving.join().unwrap();
    }
}
