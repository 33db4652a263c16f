//! The stack's blocking HTTP/1.0 client (`Stack::http_get`, `Stack::http_put`), used by the
//! metadata client, and the `probe.fetch=` option built on it. The services keep running
//! while a request is under way.

use alloc::vec::Vec;
use core::net::Ipv4Addr;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::wire::IpAddress;

use super::{Stack, tcp_socket};
use crate::console::ByteStr;
use crate::http::{self, ParseError, Response};
use crate::say;
use crate::time;

/// Client socket buffers.
const CLIENT_RX_BUFFER: usize = 64 * 1024;
const CLIENT_TX_BUFFER: usize = 16 * 1024;
/// First local port of client connections.
pub(super) const EPHEMERAL_BASE: u16 = 49152;

/// Why an HTTP request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// No address yet.
    NoAddress,
    /// The connection was refused or reset.
    Connection,
    /// No (complete) response in time.
    Timeout,
    /// The server sent something that is not an HTTP response.
    Malformed,
}

impl core::fmt::Display for HttpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NoAddress => "no address",
            Self::Connection => "connection refused or reset",
            Self::Timeout => "timed out",
            Self::Malformed => "malformed response",
        })
    }
}

impl Stack {
    /// `GET http://ip:port/path` with extra `headers`; the services keep running meanwhile.
    pub fn http_get(
        &mut self,
        ip: [u8; 4],
        port: u16,
        path: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<Response, HttpError> {
        self.http_request("GET", ip, port, path, headers, b"", 10_000)
    }

    /// `PUT http://ip:port/path` with extra `headers` and `body`.
    pub fn http_put(
        &mut self,
        ip: [u8; 4],
        port: u16,
        path: &[u8],
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, HttpError> {
        self.http_request("PUT", ip, port, path, headers, body, 10_000)
    }

    /// One HTTP/1.0 request over a fresh connection, waiting at most `timeout_ms`.
    #[allow(clippy::too_many_arguments)]
    pub fn http_request(
        &mut self,
        method: &str,
        ip: [u8; 4],
        port: u16,
        path: &[u8],
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<Response, HttpError> {
        if self.address.is_none() {
            return Err(HttpError::NoAddress);
        }
        let request = http::format_request(method, ip, port, path, headers, body);
        let handle = self
            .sockets
            .add(tcp_socket(CLIENT_RX_BUFFER, CLIENT_TX_BUFFER));
        let local = self.next_port;
        self.next_port = if self.next_port == u16::MAX {
            EPHEMERAL_BASE
        } else {
            self.next_port + 1
        };
        let remote = (IpAddress::Ipv4(Ipv4Addr::from(ip)), port);
        let connected = self.sockets.get_mut::<tcp::Socket>(handle).connect(
            self.iface.context(),
            remote,
            local,
        );
        let result = if connected.is_err() {
            Err(HttpError::Connection)
        } else {
            self.exchange(handle, &request, timeout_ms)
        };
        self.sockets.get_mut::<tcp::Socket>(handle).abort();
        let now = self.now();
        self.iface.poll(now, &mut self.dev, &mut self.sockets);
        self.dev.flush();
        self.sockets.remove(handle);
        result
    }

    fn exchange(
        &mut self,
        handle: SocketHandle,
        request: &[u8],
        timeout_ms: u64,
    ) -> Result<Response, HttpError> {
        let deadline = time::now().saturating_add(self.clock.ticks_from_millis(timeout_ms));
        let mut sent = 0;
        let mut received = Vec::new();
        let mut was_open = false;
        // What the last round saw: the client waits for the network only when nothing moved
        // (a poll that blocked right after taking in the SYN-ACK or the response would stall
        // the request until the next packet or timer).
        let mut last = None;
        loop {
            let s = self.sockets.get_mut::<tcp::Socket>(handle);
            if s.may_send() {
                was_open = true;
                if sent < request.len()
                    && let Ok(n) = s.send_slice(&request[sent..])
                {
                    sent += n;
                }
            }
            while s.can_recv() && received.len() < http::MAX_RESPONSE {
                let _ = s.recv(|b| {
                    received.extend_from_slice(b);
                    (b.len(), ())
                });
            }
            let eof = was_open && !s.may_recv() && !s.can_recv();
            if !received.is_empty() || eof {
                match http::parse_response(&received, eof) {
                    Ok(r) => return Ok(r),
                    Err(ParseError::Malformed) => return Err(HttpError::Malformed),
                    Err(ParseError::Incomplete) => {}
                }
            }
            if s.state() == tcp::State::Closed {
                return Err(HttpError::Connection);
            }
            if time::now() >= deadline {
                return Err(HttpError::Timeout);
            }
            let seen = Some((s.state(), sent, received.len()));
            if seen == last {
                let left = self.clock.micros_ceil(deadline.saturating_sub(time::now()));
                self.wait_idle(Some(left));
            }
            last = seen;
            self.poll(false);
        }
    }
}

/// The `probe.fetch=` option: fetches `url` once and prints `probe: fetch <status> <first
/// line>` or `probe: fetch failed <reason>`.
pub fn fetch(stack: &mut Stack, url: &[u8]) {
    let Some(url) = http::parse_url(url) else {
        say!("fetch failed bad url {}", ByteStr(url));
        return;
    };
    match stack.http_get(url.ip, url.port, url.path, &[]) {
        Ok(r) => say!("fetch {} {}", r.status, ByteStr(r.first_line())),
        Err(e) => say!("fetch failed {e}"),
    }
}
