//! A small instance metadata service for the probe tests: it listens on the host side of a
//! [`NetNs`]'s tap or bridge, [`dnat_imds`] sends the guest's 169.254.169.254:80 to it, and it
//! logs every request it answers.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::NetNs;

/// The namespace's own address (tap or bridge), where the double listens.
pub const HOST_IP: &str = "10.0.0.1";
/// The token the double issues, and the only one it accepts.
pub const TOKEN: &str = "AQAEAKec2TestToken-1==";

/// What the double serves.
#[derive(Clone, Debug)]
pub struct Metadata {
    /// GETs without a token get 401 (IMDSv2 required); a wrong token always does.
    pub tokens_required: bool,
    /// `meta-data/instance-id`.
    pub instance_id: &'static str,
    /// `meta-data/local-ipv4`.
    pub local_ipv4: &'static str,
    /// `meta-data/public-keys/0/openssh-key`.
    pub openssh_key: &'static [u8],
    /// `user-data`; None: 404.
    pub user_data: Option<Vec<u8>>,
    /// Other paths a GET may ask for (a `probe.fetch=` target), with their bodies.
    pub other: Vec<(&'static str, &'static [u8])>,
}

impl Default for Metadata {
    fn default() -> Self {
        Self {
            tokens_required: true,
            instance_id: "i-0feedc0ffee123456",
            local_ipv4: "10.0.0.2",
            openssh_key: b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKec2TestKey kec2-test",
            user_data: None,
            other: Vec::new(),
        }
    }
}

/// One request the double received.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The request target.
    pub path: String,
    /// Every header, in order, name and value trimmed.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The value of header `name` (any case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A tiny HTTP/1.1 metadata service on `HOST_IP` inside the namespace, one connection at a
/// time, each answered and closed. Stops (and joins its thread) when dropped.
pub struct ImdsDouble {
    seen: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ImdsDouble {
    /// Serves `metadata` on `HOST_IP:port` inside `ns` (0: any free port); returns the double
    /// and its port.
    pub fn start(ns: &NetNs, port: u16, metadata: Metadata) -> (Self, u16) {
        let listener = listen(ns, port);
        let port = listener.local_addr().unwrap().port();
        (Self::with_listener(listener, metadata), port)
    }

    /// Serves `metadata` on a `listener` from [`listen`], for a test that must know the port
    /// before it knows the metadata.
    pub fn with_listener(listener: TcpListener, metadata: Metadata) -> Self {
        listener.set_nonblocking(true).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if !readable(&listener, 20) {
                        continue;
                    }
                    match listener.accept() {
                        Ok((stream, _)) => serve(stream, &metadata, &seen),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(e) => panic!("double accept: {e}"),
                    }
                }
            })
        };
        Self {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }

    /// `METHOD PATH` of every request so far, in order.
    pub fn request_lines(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

impl Drop for ImdsDouble {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A listener on `HOST_IP:port` inside `ns` (0: any free port).
pub fn listen(ns: &NetNs, port: u16) -> TcpListener {
    ns.run(move || TcpListener::bind((HOST_IP, port)).expect("double binds"))
}

/// A free port on `HOST_IP` inside `ns`, left closed: connections to it are refused.
pub fn closed_port(ns: &NetNs) -> u16 {
    listen(ns, 0).local_addr().unwrap().port()
}

/// Sends 169.254.169.254:80 arriving from the probe to the double at `HOST_IP:port`.
pub fn dnat_imds(ns: &NetNs, port: u16) {
    let to = format!("{HOST_IP}:{port}");
    ns.exec(&[
        "iptables",
        "-t",
        "nat",
        "-A",
        "PREROUTING",
        "-d",
        "169.254.169.254/32",
        "-p",
        "tcp",
        "--dport",
        "80",
        "-j",
        "DNAT",
        "--to-destination",
        &to,
    ]);
}

/// Waits up to `timeout_ms` for a connection to accept: the double answers at once without
/// spinning, and still sees its stop flag.
fn readable(listener: &TcpListener, timeout_ms: i32) -> bool {
    let mut fd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd that lives across the call, for a descriptor the listener owns.
    let ready = unsafe { libc::poll(&mut fd, 1, timeout_ms) };
    ready > 0
}

/// Reads one request from `stream`, logs it, answers it and closes.
fn serve(mut stream: TcpStream, metadata: &Metadata, seen: &Mutex<Vec<Request>>) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let Some(request) = read_request(&mut stream) else {
        return;
    };
    seen.lock().unwrap().push(request.clone());
    let (status, body): (&str, &[u8]) = answer(&request, metadata);
    let mut reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    reply.extend_from_slice(body);
    let _ = stream.write_all(&reply);
}

/// The request line and headers of one request; None if the peer closes, stalls, or sends
/// more than 16 KiB without ending its head.
fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
        if data.len() > 16 * 1024 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    Some(Request {
        method: request_line.next().unwrap_or_default().to_string(),
        path: request_line.next().unwrap_or_default().to_string(),
        headers: lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect(),
    })
}

/// The double's answer: status line text and body.
fn answer<'m>(request: &Request, metadata: &'m Metadata) -> (&'static str, &'m [u8]) {
    const UNAUTHORIZED: (&str, &[u8]) = ("401 Unauthorized", b"");
    const NOT_FOUND: (&str, &[u8]) = ("404 Not Found", b"Not Found");
    match request.method.as_str() {
        "PUT" if request.path == "/latest/api/token" => {
            let ttl = request.header("X-aws-ec2-metadata-token-ttl-seconds");
            match ttl.and_then(|t| t.parse::<u32>().ok()) {
                Some(1..=21600) => ("200 OK", TOKEN.as_bytes()),
                _ => ("400 Bad Request", b""),
            }
        }
        "GET" => {
            match request.header("X-aws-ec2-metadata-token") {
                Some(TOKEN) => {}
                Some(_) => return UNAUTHORIZED,
                None if metadata.tokens_required => return UNAUTHORIZED,
                None => {}
            }
            match request.path.as_str() {
                "/latest/meta-data/instance-id" => ("200 OK", metadata.instance_id.as_bytes()),
                "/latest/meta-data/local-ipv4" => ("200 OK", metadata.local_ipv4.as_bytes()),
                "/latest/meta-data/public-keys/0/openssh-key" => ("200 OK", metadata.openssh_key),
                "/latest/user-data" => metadata
                    .user_data
                    .as_deref()
                    .map_or(NOT_FOUND, |d| ("200 OK", d)),
                path => metadata
                    .other
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map_or(NOT_FOUND, |(_, body)| ("200 OK", *body)),
            }
        }
        _ => ("405 Method Not Allowed", b""),
    }
}
