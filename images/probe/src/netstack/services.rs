//! The listening services of the stack and their per-connection state: TCP echo on 7, the
//! HTTP responder on 80, the discard sink on 9 and the chargen-like source on 19 (whose byte
//! stream is defined here too). Each socket is re-armed as a listener when its connection ends.

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;

use super::tcp_socket;
use crate::burn::Burn;
use crate::http::{self, Control};
use crate::say;
use crate::time::Clock;

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

/// What the responder's control paths (`GET /burn/<PCT>`, `/arp/on`, `/arp/off`) change.
#[derive(Debug)]
pub(super) struct Controls {
    /// The share every vCPU burns at.
    pub(super) burn: &'static Burn,
    /// Whether the probe answers ARP requests for its address.
    pub(super) answer_arp: bool,
}

impl Controls {
    /// Answering ARP, burning at `burn`'s share.
    pub(super) fn new(burn: &'static Burn) -> Self {
        Self {
            burn,
            answer_arp: true,
        }
    }

    /// Answers ARP requests or not from now on; prints `probe: arp on|off` on a change.
    pub(super) fn set_answer_arp(&mut self, on: bool) {
        if self.answer_arp != on {
            self.answer_arp = on;
            say!("arp {}", if on { "on" } else { "off" });
        }
    }

    /// Does what `control` asks (nothing for a bad value).
    fn apply(&mut self, control: Control) {
        match control {
            Control::Burn(share) => {
                self.burn.set(share);
            }
            Control::BadBurn => {}
            Control::Arp(on) => self.set_answer_arp(on),
        }
    }
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
pub(super) struct Services {
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
    /// Arms every service's sockets in `sockets`; the HTTP responder answers `name`, the
    /// source sends `source_bytes` per connection.
    pub(super) fn new(
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

    /// The name the HTTP responder answers with from now on.
    pub(super) fn set_name(&mut self, name: &[u8]) {
        self.name = name.to_vec();
    }

    /// Moves data between the sockets and the services, applying the HTTP control paths to
    /// `controls`; true if anything happened.
    pub(super) fn run(
        &mut self,
        sockets: &mut SocketSet<'static>,
        now: u64,
        controls: &mut Controls,
    ) -> bool {
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
                // A control takes effect before its answer is queued: the answer's finished
                // transmission is the device event that wakes the other vCPUs (`burn.rs`).
                let answer = match http::control(&conn.request) {
                    Some(control) => {
                        controls.apply(control);
                        http::respond_control(control)
                    }
                    None => http::respond(&conn.request, &self.name),
                };
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
}
