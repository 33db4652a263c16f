//! The probe's network side: smoltcp over the virtio net driver, polled, with the services
//! of `probe.net=` / `probe.http=` (TCP echo on 7, HTTP on 80, discard sink on 9, chargen-like
//! source on 19), DHCP or a static address, a blocking HTTP client, and the pings of
//! `probe.ping=` (`netstack/ping.rs`).
//!
//! Between polls the vCPU blocks on the wait port with smoltcp's `poll_delay` as the deadline
//! (capped); a received packet or a finished transmission wakes it, so an idle probe costs no
//! CPU.

use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{dhcpv4, tcp};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Cidr};

use crate::cmdline::NetConfig;
use crate::console::ByteStr;
use crate::http::{self, ParseError, Response};
use crate::keyboard::Keyboard;
use crate::power;
use crate::say;
use crate::time::{self, Clock};
use crate::virtio::net::{MacDisplay, VirtioNet};
use crate::wait::{self, Wake};

mod ping;

pub use ping::{PING_INTERVAL_MS, PING_TRIES, PingOutcome, echo_reply_seq, ping_all};

/// Longest wait between polls. smoltcp's own deadline is usually sooner; a packet, a finished
/// transmission or a key wakes the wait early. One wake-up a second at most when idle keeps an
/// idle probe as cheap as `probe.mode=count`.
pub const MAX_WAIT_MICROS: u64 = 1_000_000;
/// Most smoltcp polls in one round before the wait (smoltcp sends one segment per socket per
/// poll, so a round of a busy source sends up to this many).
const MAX_ROUNDS: usize = 1024;
/// Longest interval between i8042 and InterruptStatus reads while the stack is busy.
const HOUSEKEEPING_MS: u64 = 20;
/// Longest wait for the device to finish transmissions when no transmit buffer is free.
const TX_FULL_WAIT_MICROS: u64 = 10_000;
/// How often the device status is checked for `DEVICE_NEEDS_RESET`.
const STATUS_CHECK_MS: u64 = 1000;
/// TCP echo port and sockets.
pub const ECHO_PORT: u16 = 7;
const ECHO_SOCKETS: usize = 6;
const ECHO_BUFFER: usize = 64 * 1024;
/// HTTP responder port and sockets.
pub const HTTP_PORT: u16 = 80;
const HTTP_SOCKETS: usize = 8;
const HTTP_BUFFER: usize = 8 * 1024;
/// How long an HTTP connection may stay open before it is aborted.
const HTTP_CONN_LIMIT_MS: u64 = 30_000;
/// Discard sink port and sockets.
pub const SINK_PORT: u16 = 9;
const SINK_SOCKETS: usize = 2;
const SINK_BUFFER: usize = 512 * 1024;
/// Chargen-like source port and sockets.
pub const SOURCE_PORT: u16 = 19;
const SOURCE_SOCKETS: usize = 2;
const SOURCE_BUFFER: usize = 512 * 1024;
/// Client socket buffers.
const CLIENT_RX_BUFFER: usize = 64 * 1024;
const CLIENT_TX_BUFFER: usize = 16 * 1024;
/// First local port of client connections.
const EPHEMERAL_BASE: u16 = 49152;

/// Byte `i` of the source's stream: printable ASCII, cycling.
pub fn source_byte(i: u64) -> u8 {
    b' ' + (i % 95) as u8
}

/// Period of the source stream.
const SOURCE_PERIOD: usize = 95;
/// Whole periods in [`SOURCE_TABLE`]: copies of up to `SOURCE_PERIOD * (SOURCE_PERIODS - 1)`
/// bytes start at any phase.
const SOURCE_PERIODS: usize = 44;
/// The source stream from position 0, several periods long.
static SOURCE_TABLE: [u8; SOURCE_PERIOD * SOURCE_PERIODS] = {
    let mut table = [0u8; SOURCE_PERIOD * SOURCE_PERIODS];
    let mut i = 0;
    while i < table.len() {
        table[i] = b' ' + (i % SOURCE_PERIOD) as u8;
        i += 1;
    }
    table
};

/// Fills `buf` with the source stream from position `from` (copies from a table: the source
/// runs at line rate).
pub fn fill_source(buf: &mut [u8], from: u64) {
    let mut phase = (from % SOURCE_PERIOD as u64) as usize;
    for chunk in buf.chunks_mut(SOURCE_PERIOD * (SOURCE_PERIODS - 1)) {
        chunk.copy_from_slice(&SOURCE_TABLE[phase..phase + chunk.len()]);
        phase = (phase + chunk.len()) % SOURCE_PERIOD;
    }
}

fn tcp_socket(rx: usize, tx: usize) -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; rx]),
        tcp::SocketBuffer::new(vec![0; tx]),
    )
}

/// Makes a listening socket of a closed one (re-arming a service after a connection); a
/// socket lingering in TIME-WAIT is released at once so the service stays available.
/// True if the socket was (re)armed now.
fn rearm(socket: &mut tcp::Socket<'_>, port: u16) -> bool {
    if socket.state() == tcp::State::TimeWait {
        socket.abort();
    }
    if socket.is_open() {
        return false;
    }
    socket.listen(port).is_ok()
}

#[derive(Debug, Default)]
struct HttpConn {
    request: Vec<u8>,
    answered: bool,
    /// When the connection was first seen (TSC), to drop stuck ones.
    since: Option<u64>,
}

#[derive(Debug, Default)]
struct SinkConn {
    bytes: u64,
    reported: bool,
}

#[derive(Debug, Default)]
struct SourceConn {
    sent: u64,
    done: bool,
}

/// The listening services and their per-connection state.
struct Services {
    name: Vec<u8>,
    source_bytes: u64,
    /// TSC ticks an HTTP connection may stay open.
    http_limit: u64,
    echo: Vec<SocketHandle>,
    http: Vec<(SocketHandle, HttpConn)>,
    sink: Vec<(SocketHandle, SinkConn)>,
    source: Vec<(SocketHandle, SourceConn)>,
    scratch: Vec<u8>,
}

impl Services {
    fn new(
        sockets: &mut SocketSet<'static>,
        name: Vec<u8>,
        source_bytes: u64,
        clock: Clock,
    ) -> Self {
        let mut add = |rx, tx| sockets.add(tcp_socket(rx, tx));
        Self {
            name,
            source_bytes,
            http_limit: clock.ticks_from_millis(HTTP_CONN_LIMIT_MS),
            echo: (0..ECHO_SOCKETS)
                .map(|_| add(ECHO_BUFFER, ECHO_BUFFER))
                .collect(),
            http: (0..HTTP_SOCKETS)
                .map(|_| (add(HTTP_BUFFER, HTTP_BUFFER), HttpConn::default()))
                .collect(),
            sink: (0..SINK_SOCKETS)
                .map(|_| (add(SINK_BUFFER, 1024), SinkConn::default()))
                .collect(),
            source: (0..SOURCE_SOCKETS)
                .map(|_| (add(4096, SOURCE_BUFFER), SourceConn::default()))
                .collect(),
            scratch: vec![0; 4096],
        }
    }

    /// Moves data between the sockets and the services; true if anything happened.
    fn run(&mut self, sockets: &mut SocketSet<'static>, now: u64) -> bool {
        let mut busy = false;
        for &handle in &self.echo {
            let s = sockets.get_mut::<tcp::Socket>(handle);
            rearm(s, ECHO_PORT);
            while s.can_recv() {
                let room = s.send_capacity() - s.send_queue();
                if room == 0 {
                    break;
                }
                let want = room.min(self.scratch.len());
                let Ok(n) = s.recv_slice(&mut self.scratch[..want]) else {
                    break;
                };
                if n == 0 {
                    break;
                }
                let _ = s.send_slice(&self.scratch[..n]);
                busy = true;
            }
            if s.state() == tcp::State::CloseWait && !s.can_recv() && s.send_queue() == 0 {
                s.close();
                busy = true;
            }
        }
        for (handle, conn) in &mut self.http {
            let s = sockets.get_mut::<tcp::Socket>(*handle);
            if rearm(s, HTTP_PORT) {
                *conn = HttpConn::default();
            }
            // A client that never sends its request, or never closes after the answer, must
            // not hold the socket for good.
            if s.is_active() {
                let since = *conn.since.get_or_insert(now);
                if now.saturating_sub(since) > self.http_limit {
                    s.abort();
                    *conn = HttpConn::default();
                    busy = true;
                    continue;
                }
            }
            if conn.answered {
                // Drain whatever else the client sends; the socket is closing.
                let _ = s.recv(|b| (b.len(), ()));
                continue;
            }
            while s.can_recv() && conn.request.len() < http::MAX_REQUEST {
                let room = http::MAX_REQUEST - conn.request.len();
                let _ = s.recv(|b| {
                    let n = b.len().min(room);
                    conn.request.extend_from_slice(&b[..n]);
                    (n, ())
                });
                busy = true;
            }
            let complete = http::request_complete(&conn.request)
                || conn.request.len() >= http::MAX_REQUEST
                || (!conn.request.is_empty() && !s.may_recv());
            if complete && s.may_send() {
                let answer = http::respond(&conn.request, &self.name);
                let _ = s.send_slice(&answer);
                s.close();
                conn.answered = true;
                busy = true;
            } else if !s.may_recv() && s.state() == tcp::State::CloseWait {
                s.close();
            }
        }
        for (handle, conn) in &mut self.sink {
            let s = sockets.get_mut::<tcp::Socket>(*handle);
            while s.can_recv() {
                match s.recv(|b| (b.len(), b.len())) {
                    Ok(n) if n > 0 => {
                        conn.bytes += n as u64;
                        busy = true;
                    }
                    _ => break,
                }
            }
            let state = s.state();
            let ended = matches!(
                state,
                tcp::State::CloseWait
                    | tcp::State::LastAck
                    | tcp::State::Closing
                    | tcp::State::Closed
                    | tcp::State::TimeWait
            );
            if ended && !conn.reported && (conn.bytes > 0 || state == tcp::State::CloseWait) {
                say!("sink {} bytes", conn.bytes);
                conn.reported = true;
                busy = true;
            }
            if state == tcp::State::CloseWait {
                s.close();
            }
            if rearm(s, SINK_PORT) {
                *conn = SinkConn::default();
            }
        }
        for (handle, conn) in &mut self.source {
            let s = sockets.get_mut::<tcp::Socket>(*handle);
            if rearm(s, SOURCE_PORT) {
                *conn = SourceConn::default();
            }
            let _ = s.recv(|b| (b.len(), ()));
            if conn.done || !s.may_send() {
                continue;
            }
            while s.can_send() && conn.sent < self.source_bytes {
                let left = self.source_bytes - conn.sent;
                let from = conn.sent;
                if let Ok(n) = s.send(|b| {
                    let n = b.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    fill_source(&mut b[..n], from);
                    (n, n)
                }) {
                    if n == 0 {
                        break;
                    }
                    conn.sent += n as u64;
                    busy = true;
                }
            }
            if conn.sent >= self.source_bytes {
                s.close();
                conn.done = true;
                say!("source {} bytes", conn.sent);
            }
        }
        busy
    }
}

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

/// The network stack: interface, device, sockets and services.
pub struct Stack {
    iface: Interface,
    dev: VirtioNet,
    sockets: SocketSet<'static>,
    clock: Clock,
    keyboard: Keyboard,
    dhcp: Option<SocketHandle>,
    services: Services,
    address: Option<Ipv4Cidr>,
    next_port: u16,
    next_status_check: u64,
    /// When the i8042 and InterruptStatus are next read even without a device wake (TSC):
    /// both are register exits, kept off the per-packet path.
    next_housekeeping: u64,
    /// The last wait was ended by a device.
    woken: bool,
    announced: bool,
}

impl Stack {
    /// Brings up the interface on `dev` with `config` and arms the services.
    pub fn new(
        mut dev: VirtioNet,
        config: NetConfig,
        name: &[u8],
        source_bytes: u64,
        clock: Clock,
        keyboard: Keyboard,
    ) -> Self {
        let mac = dev.mac();
        say!("net mac {}", MacDisplay(mac));
        if dev.link_up() == Some(false) {
            say!("net link down");
        }
        let mut iface_config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        iface_config.random_seed = time::now()
            ^ u64::from_le_bytes([0, 0, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]]);
        let now = instant(clock, time::now());
        let iface = Interface::new(iface_config, &mut dev, now);
        let mut sockets = SocketSet::new(Vec::new());
        let services = Services::new(&mut sockets, name.to_vec(), source_bytes, clock);
        let mut stack = Self {
            iface,
            dev,
            sockets,
            clock,
            keyboard,
            dhcp: None,
            services,
            address: None,
            next_port: EPHEMERAL_BASE + (time::now() % 8192) as u16,
            next_status_check: 0,
            next_housekeeping: 0,
            woken: false,
            announced: false,
        };
        match config {
            NetConfig::Dhcp => {
                stack.dhcp = Some(stack.sockets.add(dhcpv4::Socket::new()));
            }
            NetConfig::Static { cidr, gateway } => {
                let cidr = Ipv4Cidr::new(Ipv4Addr::from(cidr.addr), cidr.prefix);
                let gateway = gateway.map(Ipv4Addr::from);
                stack.configure(cidr, gateway);
                say!("net static {cidr} gw {}", GatewayDisplay(gateway));
            }
        }
        stack
    }

    /// The clock the stack keeps time with.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The interface address, once there is one.
    pub fn address(&self) -> Option<Ipv4Cidr> {
        self.address
    }

    fn configure(&mut self, cidr: Ipv4Cidr, gateway: Option<Ipv4Addr>) {
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            let _ = addrs.push(IpCidr::Ipv4(cidr));
        });
        self.iface.routes_mut().remove_default_ipv4_route();
        if let Some(gw) = gateway {
            let _ = self.iface.routes_mut().add_default_ipv4_route(gw);
        }
        self.address = Some(cidr);
    }

    fn deconfigure(&mut self) {
        self.iface.update_ip_addrs(|addrs| addrs.clear());
        self.iface.routes_mut().remove_default_ipv4_route();
        self.address = None;
    }

    fn now(&self) -> Instant {
        instant(self.clock, time::now())
    }

    /// The name the HTTP responder on port 80 answers with from now on.
    pub fn set_http_name(&mut self, name: &[u8]) {
        self.services.name = name.to_vec();
    }

    /// Keeps the stack running (services included) for `millis` milliseconds.
    pub fn pause(&mut self, millis: u64) {
        let deadline = time::now().saturating_add(self.clock.ticks_from_millis(millis));
        loop {
            let now = time::now();
            if now >= deadline {
                return;
            }
            let left = self.clock.micros_ceil(deadline - now);
            self.poll_within(true, left.min(MAX_WAIT_MICROS));
        }
    }

    /// One round: keyboard, smoltcp, DHCP, services, device notifications; then, if `block`,
    /// wait on the wait port until a packet arrives or smoltcp next needs polling.
    pub fn poll(&mut self, block: bool) {
        self.poll_within(block, MAX_WAIT_MICROS);
    }

    /// [`Stack::poll`], waiting at most `max_wait_micros`.
    fn poll_within(&mut self, block: bool, max_wait_micros: u64) {
        let now = time::now();
        if self.woken || now >= self.next_housekeeping {
            // A key press wakes the wait, so checking after device wakes (and now and then
            // while busy) is enough; likewise for acknowledging the device's interrupt bits.
            self.next_housekeeping =
                now.saturating_add(self.clock.ticks_from_millis(HOUSEKEEPING_MS));
            self.woken = false;
            if self.keyboard.poll() {
                power::ctrl_alt_del();
            }
            self.dev.mmio().ack_interrupt();
        }
        self.check_device();
        for _ in 0..MAX_ROUNDS {
            let now = self.now();
            let changed = self.iface.poll(now, &mut self.dev, &mut self.sockets)
                != smoltcp::iface::PollResult::None;
            self.poll_dhcp();
            let busy = self.services.run(&mut self.sockets, time::now());
            if !changed && !busy {
                break;
            }
        }
        // Send what the services queued in the last round.
        let now = self.now();
        self.iface.poll(now, &mut self.dev, &mut self.sockets);
        self.dev.flush();
        if self.address.is_some() && !self.announced {
            self.announced = true;
            say!("net serving");
        }
        if block {
            self.wait_idle(max_wait_micros);
        }
    }

    /// Blocks on the wait port until a device has work (a packet, a finished transmission, a
    /// key) or smoltcp next needs polling, at most `max_wait_micros`; returns at once if a
    /// received frame is waiting.
    fn wait_idle(&mut self, max_wait_micros: u64) {
        if self.dev.rx_pending() {
            return;
        }
        let now = self.now();
        let delay = self
            .iface
            .poll_delay(now, &self.sockets)
            .map_or(max_wait_micros, |d| d.total_micros())
            .min(max_wait_micros);
        // With every transmit buffer held by the device, wait for it to send some (its
        // completion wakes the wait).
        let delay = if delay == 0 && self.dev.tx_full() {
            TX_FULL_WAIT_MICROS
        } else {
            delay
        };
        if delay == 0 {
            return;
        }
        self.woken = wait::wait_micros(delay) == Wake::Device;
    }

    fn check_device(&mut self) {
        let now = time::now();
        if now < self.next_status_check {
            return;
        }
        self.next_status_check = now.saturating_add(self.clock.ticks_from_millis(STATUS_CHECK_MS));
        if self.dev.mmio().needs_reset() || self.dev.bad_used {
            say!("net needs reset");
            // Reinitialise the device in place; if that fails there is no network left.
            match self.dev.reinit() {
                Ok(()) => {}
                Err(e) => {
                    say!("net reinit failed: {e}");
                    power::power_off(power::FAILURE);
                }
            }
        }
    }

    fn poll_dhcp(&mut self) {
        let Some(handle) = self.dhcp else { return };
        let event = self.sockets.get_mut::<dhcpv4::Socket>(handle).poll();
        match event {
            Some(dhcpv4::Event::Configured(config)) => {
                let (cidr, router) = (config.address, config.router);
                self.configure(cidr, router);
                say!("net dhcp {cidr} gw {}", GatewayDisplay(router));
            }
            Some(dhcpv4::Event::Deconfigured) => {
                if self.address.is_some() {
                    say!("net dhcp lease lost");
                }
                self.deconfigure();
            }
            None => {}
        }
    }

    /// Polls until the interface has an address or `timeout_ms` pass; true if it has one.
    pub fn wait_for_address(&mut self, timeout_ms: u64) -> bool {
        let deadline = time::now().saturating_add(self.clock.ticks_from_millis(timeout_ms));
        while self.address.is_none() {
            if time::now() >= deadline {
                return false;
            }
            self.poll(true);
        }
        true
    }

    /// Serves until the VM is stopped.
    pub fn serve_forever(&mut self) -> ! {
        loop {
            self.poll(true);
        }
    }

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
                self.wait_idle(MAX_WAIT_MICROS);
            }
            last = seen;
            self.poll(false);
        }
    }
}

/// smoltcp's time from a TSC reading.
pub fn instant(clock: Clock, ticks: u64) -> Instant {
    let micros = u128::from(ticks) * 1000 / u128::from(clock.khz());
    Instant::from_micros(i64::try_from(micros).unwrap_or(i64::MAX))
}

/// A gateway for console lines: the address or `none`.
struct GatewayDisplay(Option<Ipv4Addr>);

impl core::fmt::Display for GatewayDisplay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(gw) => write!(f, "{gw}"),
            None => f.write_str("none"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_stream_is_printable_and_continuous() {
        let mut a = vec![0u8; 20_000];
        fill_source(&mut a, 0);
        let mut b = vec![0u8; 9_000];
        fill_source(&mut b, 100);
        assert_eq!(&a[100..9_100], &b[..]);
        assert!(a.iter().all(|c| (b' '..=b'~').contains(c)));
        assert_eq!(a[0], b' ');
        assert_eq!(a[94], b'~');
        assert_eq!(a[95], b' ');
        for (i, &c) in a.iter().enumerate() {
            assert_eq!(c, source_byte(i as u64));
        }
    }

    /// Two stacks over fake virtio net devices joined by a wire: ARP, TCP, the HTTP
    /// responder and the HTTP client, end to end through the driver.
    #[test]
    fn http_between_two_stacks() {
        use crate::cmdline::Ipv4Cidr as Cidr;
        use crate::virtio::fake::{Wire, dummy_window};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};

        let clock = Clock::new(0);
        let (server_dev, server_rings) = VirtioNet::for_test(dummy_window(), [2, 0, 0, 0, 0, 2]);
        let (client_dev, client_rings) = VirtioNet::for_test(dummy_window(), [2, 0, 0, 0, 0, 1]);
        let _wire = Wire::connect(server_rings, client_rings);
        let config = |last| NetConfig::Static {
            cidr: Cidr {
                addr: [10, 0, 0, last],
                prefix: 24,
            },
            gateway: Some([10, 0, 0, 1]),
        };
        let mut server = Stack::new(
            server_dev,
            config(2),
            b"web-1",
            100_000,
            clock,
            Keyboard::new(),
        );
        let mut client = Stack::new(
            client_dev,
            config(1),
            b"probe",
            100_000,
            clock,
            Keyboard::new(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let serving = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                server.poll(true);
            }
        });

        let r = client
            .http_get([10, 0, 0, 2], 80, b"/", &[])
            .expect("GET answered");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"web-1\n");
        assert_eq!(r.header("content-type"), Some(&b"text/plain"[..]));
        // Several in a row (sockets are recycled).
        for _ in 0..10 {
            let r = client.http_get([10, 0, 0, 2], 80, b"/x", &[]).unwrap();
            assert_eq!(r.first_line(), b"web-1");
        }
        let r = client
            .http_put(
                [10, 0, 0, 2],
                80,
                b"/latest/api/token",
                &[("X-aws-ec2-metadata-token-ttl-seconds", "21600")],
                b"",
            )
            .unwrap();
        assert_eq!(r.status, 405);
        // Echo: everything comes back, in order.
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 1000) as u8).collect();
        assert_eq!(session(&mut client, ECHO_PORT, &data, data.len()), data);
        // Source: the configured number of bytes of the pattern, then the server closes.
        let got = session(&mut client, SOURCE_PORT, b"", usize::MAX);
        assert_eq!(got.len(), 100_000);
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, &c)| c == source_byte(i as u64))
        );
        // Sink: takes everything; the session ends when the server closes after our FIN.
        assert!(session(&mut client, SINK_PORT, &data, usize::MAX).is_empty());
        // Nothing listens on 81: refused.
        assert_eq!(
            client
                .http_get([10, 0, 0, 2], 81, b"/", &[])
                .map(|r| r.status),
            Err(HttpError::Connection)
        );
        stop.store(true, Ordering::SeqCst);
        serving.join().unwrap();
    }

    /// A client TCP session on `stack` to 10.0.0.2:`port`: sends `send`, closes its side,
    /// and returns what arrived until `limit` bytes or the server's close.
    fn session(stack: &mut Stack, port: u16, send: &[u8], limit: usize) -> Vec<u8> {
        let handle = stack.sockets.add(tcp_socket(65536, 65536));
        let local = stack.next_port;
        stack.next_port += 1;
        let remote = (IpAddress::v4(10, 0, 0, 2), port);
        stack
            .sockets
            .get_mut::<tcp::Socket>(handle)
            .connect(stack.iface.context(), remote, local)
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let (mut sent, mut got, mut closing) = (0, Vec::new(), false);
        loop {
            stack.poll(true);
            let s = stack.sockets.get_mut::<tcp::Socket>(handle);
            if s.may_send() && sent < send.len() {
                sent += s.send_slice(&send[sent..]).unwrap();
            }
            if s.may_send() && sent == send.len() && !closing {
                s.close();
                closing = true;
            }
            while s.can_recv() {
                s.recv(|b| {
                    got.extend_from_slice(b);
                    (b.len(), ())
                })
                .unwrap();
            }
            if got.len() >= limit || (closing && !s.is_open()) || (closing && !s.may_recv()) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "session to port {port} stalled"
            );
        }
        stack.sockets.get_mut::<tcp::Socket>(handle).abort();
        stack.poll(false);
        stack.sockets.remove(handle);
        got
    }

    #[test]
    fn instants_from_the_tsc() {
        let clock = Clock::new(2_000_000);
        assert_eq!(instant(clock, 2_000_000_000).total_millis(), 1000);
        assert_eq!(instant(clock, 2_000).total_micros(), 1);
    }
}
