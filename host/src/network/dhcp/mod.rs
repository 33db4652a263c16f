//! The DHCP server each ENI's tap gets. It reads the guest's frames from a packet socket on
//! the tap itself (so it sees them before the bridge does, and knows which tap they came
//! from), answers only the ENI's own MAC with the ENI's fixed lease, and writes the reply back
//! to that tap alone. A guest thus keeps its address for its whole life, and no guest can
//! take another's lease.

pub mod frame;
#[cfg(test)]
mod fuzz;
pub mod packet;

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;

use tokio::io::unix::AsyncFd;

use packet::{Lease, MessageType, Request};

use super::packet_socket;
use crate::netns::NetNs;

/// The server port.
pub const SERVER_PORT: u16 = 67;
/// The client port.
pub const CLIENT_PORT: u16 = 68;

/// Why a DHCP server could not start.
#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    /// The packet socket could not be made or bound to the tap.
    #[error("cannot open a DHCP packet socket on {interface}")]
    Socket {
        /// The tap.
        interface: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Who the server is and whom it serves on one tap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapLease {
    /// The tap.
    pub tap: String,
    /// The server's (router's) address.
    pub server_ip: Ipv4Addr,
    /// The server's MAC (the bridge's).
    pub server_mac: [u8; 6],
    /// The ENI's MAC, the only client served.
    pub client_mac: [u8; 6],
    /// What the client gets.
    pub lease: Lease,
}

/// A DHCP server bound to one tap.
#[derive(Debug)]
pub struct DhcpServer {
    fd: AsyncFd<OwnedFd>,
    config: TapLease,
}

/// Classic BPF: accept only unfragmented IPv4/UDP frames to port 67.
fn filter() -> [libc::sock_filter; 11] {
    let op = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    [
        op(0x28, 0, 0, 12),     // ldh [12]: ethertype
        op(0x15, 0, 8, 0x0800), // jeq IPv4, else drop
        op(0x30, 0, 0, 23),     // ldb [23]: IP protocol
        op(0x15, 0, 6, 17),     // jeq UDP, else drop
        op(0x28, 0, 0, 20),     // ldh [20]: flags and fragment offset
        op(0x45, 4, 0, 0x1fff), // jset offset: a fragment, drop
        op(0xb1, 0, 0, 14),     // ldxb 4*([14]&0xf): IP header length
        op(0x48, 0, 0, 16),     // ldh [x+16]: UDP destination port
        op(0x15, 0, 1, 67),     // jeq 67, else drop
        op(0x06, 0, 0, 65535),  // accept
        op(0x06, 0, 0, 0),      // drop
    ]
}

impl DhcpServer {
    /// Opens the packet socket on `config.tap` in namespace `ns`. Must be called inside a
    /// tokio runtime.
    pub fn bind(ns: &NetNs, config: TapLease) -> Result<Self, DhcpError> {
        let err = |source| DhcpError::Socket {
            interface: config.tap.clone(),
            source,
        };
        let fd = ns
            .run(|| packet_socket::open(&config.tap, &filter()))
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(err)?;
        // SAFETY: the AsyncFd owns `fd`, an open packet socket that stays open (and is the
        // same descriptor) until the AsyncFd is dropped.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(|e| err(e.into_parts().1))?;
        Ok(DhcpServer { fd, config })
    }

    /// Answers requests until the task is dropped or the tap goes away. Borrows the server,
    /// so that a run that panicked can be replaced by a new one on the same socket.
    pub async fn serve(&self) {
        let c = &self.config;
        let mut buf = vec![0u8; 2048];
        loop {
            let got = match self.fd.readable().await {
                Ok(mut ready) => {
                    match ready.try_io(|fd| packet_socket::recv_frame(fd.get_ref(), &mut buf)) {
                        Ok(got) => got,
                        Err(_would_block) => continue,
                    }
                }
                Err(e) => Err(e),
            };
            let n = match got {
                Ok(Some(n)) => n,
                Ok(None) => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                    tracing::debug!(tap = %c.tap, "dhcp: tap is down");
                    continue;
                }
                Err(e) => {
                    tracing::info!(tap = %c.tap, "dhcp: the tap is gone ({e}); stopping");
                    return;
                }
            };
            let Some(payload) = frame::client_payload(&buf[..n], &c.client_mac) else {
                continue;
            };
            let Ok(request) = Request::parse(payload) else {
                continue;
            };
            if request.mac != c.client_mac {
                tracing::warn!(tap = %c.tap, "dhcp: request for another MAC refused");
                continue;
            }
            let Some(kind) = packet::answer(&request, &c.lease, c.server_ip) else {
                continue;
            };
            let offered = (kind != MessageType::Nak).then_some(&c.lease);
            let reply = packet::reply(&request, kind, offered, c.server_ip);
            let out = frame::server_frame(&c.server_mac, c.server_ip, &c.client_mac, &reply);
            match packet_socket::send_frame(self.fd.get_ref(), &out) {
                Ok(()) => tracing::debug!(tap = %c.tap, ?kind, ip = %c.lease.ip, "dhcp reply"),
                Err(e) => tracing::warn!(tap = %c.tap, "dhcp: send failed: {e}"),
            }
        }
    }
}

/// Parses `02:00:...` into bytes.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}
