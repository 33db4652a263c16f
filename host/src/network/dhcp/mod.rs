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
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

use packet::{Lease, MessageType, Request};

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

fn ifindex(name: &str) -> std::io::Result<u32> {
    let c = std::ffi::CString::new(name)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated string for the call's duration.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(index)
    }
}

/// A packet socket bound to `tap` that only passes DHCP requests.
fn packet_socket(tap: &str) -> std::io::Result<OwnedFd> {
    let index = ifindex(tap)?;
    // ETH_P_ALL: only such taps see a bridge port's frames before the bridge takes them; the
    // filter keeps just the DHCP requests.
    let protocol = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket creation; the descriptor is owned at once below.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            i32::from(protocol),
        )
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let program = filter();
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `program`, which outlives the call; the kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&raw const fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: an all-zero sockaddr_ll is valid; the fields that matter are set below.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = protocol;
    addr.sll_ifindex = index as i32;
    // SAFETY: `addr` is a valid sockaddr_ll of the size given.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// Receives one frame; `None` for frames the host itself sent out of the tap.
fn recv_frame(fd: &OwnedFd, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
    // SAFETY: an all-zero sockaddr_ll is valid for the kernel to fill.
    let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `buf` and `from` are valid for writes of the sizes given.
    let n = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            0,
            (&raw mut from).cast(),
            &mut len,
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((from.sll_pkttype != libc::PACKET_OUTGOING).then_some(n as usize))
}

fn send_frame(fd: &OwnedFd, frame: &[u8]) -> std::io::Result<()> {
    // SAFETY: `frame` is valid for reads of its length; the socket is bound to the tap.
    let n = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
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
            .run(|| packet_socket(&config.tap))
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
                Ok(mut ready) => match ready.try_io(|fd| recv_frame(fd.get_ref(), &mut buf)) {
                    Ok(got) => got,
                    Err(_would_block) => continue,
                },
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
            match send_frame(self.fd.get_ref(), &out) {
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
