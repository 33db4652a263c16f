//! The DHCP server each ENI's tap gets: it answers only on that tap, and only the ENI's own
//! MAC, with the ENI's fixed private address, so a guest keeps its address for its whole life.

pub mod packet;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, RwLock};

use packet::{Lease, MessageType, Request};

/// The server port.
pub const SERVER_PORT: u16 = 67;
/// The client port.
pub const CLIENT_PORT: u16 = 68;

/// Why a DHCP server could not start.
#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    /// The socket could not be made, bound to the interface, or bound to port 67.
    #[error("cannot open a DHCP socket on interface {interface}")]
    Socket {
        /// The interface.
        interface: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Leases by client MAC.
pub type LeaseTable = Arc<RwLock<HashMap<[u8; 6], Lease>>>;

/// A DHCP server bound to one interface.
#[derive(Debug)]
pub struct DhcpServer {
    socket: tokio::net::UdpSocket,
    interface: String,
    server_ip: Ipv4Addr,
    leases: LeaseTable,
}

fn setsockopt<T>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
    len: usize,
) -> std::io::Result<()> {
    // SAFETY: `value` points at `len` readable bytes for the duration of the call, and `fd` is
    // an open socket we own.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            len as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A UDP socket on 0.0.0.0:67 that only sees and sends traffic of `interface`.
fn bound_socket(interface: &str) -> std::io::Result<std::net::UdpSocket> {
    // SAFETY: plain socket creation; the descriptor is owned at once below.
    let raw = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let one: libc::c_int = 1;
    let int_len = std::mem::size_of::<libc::c_int>();
    setsockopt(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &one, int_len)?;
    setsockopt(&fd, libc::SOL_SOCKET, libc::SO_BROADCAST, &one, int_len)?;
    let name = interface.as_bytes();
    setsockopt(
        &fd,
        libc::SOL_SOCKET,
        libc::SO_BINDTODEVICE,
        &name[0],
        name.len(),
    )?;
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: SERVER_PORT.to_be(),
        sin_addr: libc::in_addr { s_addr: 0 },
        sin_zero: [0; 8],
    };
    // SAFETY: `addr` is a valid sockaddr_in of the size given.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(std::net::UdpSocket::from(fd))
}

impl DhcpServer {
    /// Listens on `interface`, answering as `server_ip` from `leases`. Must be called inside a
    /// tokio runtime, in the network namespace of the interface.
    pub fn bind(
        interface: &str,
        server_ip: Ipv4Addr,
        leases: LeaseTable,
    ) -> Result<Self, DhcpError> {
        let err = |source| DhcpError::Socket {
            interface: interface.to_owned(),
            source,
        };
        let std_socket = bound_socket(interface).map_err(err)?;
        let socket = tokio::net::UdpSocket::from_std(std_socket).map_err(err)?;
        Ok(DhcpServer {
            socket,
            interface: interface.to_owned(),
            server_ip,
            leases,
        })
    }

    /// Answers requests until the task is dropped.
    pub async fn serve(self) {
        let mut buf = vec![0u8; 1500];
        loop {
            let (n, _) = match self.socket.recv_from(&mut buf).await {
                Ok(got) => got,
                Err(err) => {
                    tracing::warn!("dhcp on {}: receive failed: {err}", self.interface);
                    continue;
                }
            };
            let Ok(request) = Request::parse(&buf[..n]) else {
                continue;
            };
            let lease = self
                .leases
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&request.mac)
                .cloned();
            let Some(lease) = lease else {
                tracing::debug!(
                    "dhcp on {}: no lease for {:02x?}",
                    self.interface,
                    request.mac
                );
                continue;
            };
            let Some(kind) = packet::answer(&request, &lease, self.server_ip) else {
                continue;
            };
            let offered = (kind != MessageType::Nak).then_some(&lease);
            let reply = packet::reply(&request, kind, offered, self.server_ip);
            let to = if request.ciaddr.is_unspecified() || kind == MessageType::Nak {
                SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT)
            } else {
                SocketAddrV4::new(request.ciaddr, CLIENT_PORT)
            };
            if let Err(err) = self.socket.send_to(&reply, to).await {
                tracing::warn!("dhcp on {}: send failed: {err}", self.interface);
            } else {
                tracing::debug!(
                    "dhcp on {}: {kind:?} {} to {:02x?}",
                    self.interface,
                    lease.ip,
                    request.mac
                );
            }
        }
    }
}
