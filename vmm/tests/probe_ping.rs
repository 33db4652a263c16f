//! The probe's pings end to end (`probe.ping=`), and options given in user-data: in a network
//! namespace the test creates, probes on taps ping each other, the namespace and an address
//! nobody has; an IMDS double (behind a DNAT of 169.254.169.254:80, as in `probe_imds.rs`)
//! hands a probe `probe.ping=` and `probe.fetch=` in its user-data.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::NetNs;
use common::probe_vm::ProbeVm;

/// The namespace's own address (bridge or tap).
const HOST_IP: &str = "10.0.0.1";
/// How long a probe may take from start to its last ping line (an unanswered address costs
/// 5 s of tries; the host is shared).
const PING_TIMEOUT: Duration = Duration::from_secs(60);

/// The `rtt_us` of a `probe: ping <ip> ok rtt_us=<n>` line.
fn rtt_us(line: &str, ip: &str) -> u64 {
    let prefix = format!("probe: ping {ip} ok rtt_us=");
    let n = line
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{line:?} is not {prefix:?}<n>"));
    n.parse()
        .unwrap_or_else(|e| panic!("{line:?}: rtt_us not a number: {e}"))
}

/// One ICMP echo from the namespace to `ip` answered (waiting up to 10 s).
fn namespace_pings(ns: &NetNs, ip: &str) {
    ns.exec(&["ping", "-n", "-q", "-c", "1", "-w", "10", ip]);
}

#[test]
fn probes_on_a_bridge_ping_each_other_and_the_host() {
    let ns = NetNs::with_bridge("ping2", "10.0.0.1/24", &["tap0", "tap1"]);
    let a = ProbeVm::start(
        &ns,
        "tap0",
        "02:00:00:00:00:02",
        "probe.net=static:10.0.0.2/24,10.0.0.1 probe.http=a",
    );
    a.wait_for_line("probe: net serving", Duration::from_secs(30));
    let b = ProbeVm::start(
        &ns,
        "tap1",
        "02:00:00:00:00:03",
        "probe.net=static:10.0.0.3/24,10.0.0.1 probe.ping=10.0.0.2,10.0.0.1,10.0.0.99",
    );
    b.wait_for_line("probe: ping 10.0.0.99 ", PING_TIMEOUT);

    let to_a = b.wait_for_line("probe: ping 10.0.0.2 ", Duration::ZERO);
    let to_host = b.wait_for_line("probe: ping 10.0.0.1 ", Duration::ZERO);
    eprintln!("{to_a}\n{to_host}");
    assert!(rtt_us(&to_a, "10.0.0.2") < 5_000_000, "{to_a}");
    assert!(rtt_us(&to_host, "10.0.0.1") < 5_000_000, "{to_host}");
    b.assert_line("probe: ping 10.0.0.99 timeout");
    // In the order given, after the address.
    assert!(b.line_index("probe: net static") < b.line_index("probe: ping 10.0.0.2 "));
    assert!(b.line_index("probe: ping 10.0.0.2 ") < b.line_index("probe: ping 10.0.0.1 "));
    assert!(b.line_index("probe: ping 10.0.0.1 ") < b.line_index("probe: ping 10.0.0.99 "));
    assert!(
        !a.console().contains("probe: ping"),
        "a pings nobody:\n{}",
        a.console()
    );

    // Both keep answering pings (and serving) afterwards.
    namespace_pings(&ns, "10.0.0.3");
    namespace_pings(&ns, "10.0.0.2");
    assert!(http_get(&ns, "10.0.0.2", 80, "/").ends_with("\r\n\r\na\n"));
}

#[test]
fn a_bad_ping_list_powers_off() {
    let ns = NetNs::with_tap("pingbad", "10.0.0.1/24");
    let vm = ProbeVm::start(
        &ns,
        "tap0",
        "02:00:00:00:00:02",
        "probe.net=static:10.0.0.2/24 probe.ping=10.0.0.1,,10.0.0.3",
    );
    vm.wait_for_line("probe: power off 1", Duration::from_secs(30));
    vm.assert_line("probe: bad probe.ping=10.0.0.1,,10.0.0.3");
}

#[test]
fn user_data_options_ping_and_fetch_after_the_metadata() {
    let ns = NetNs::with_tap("pingud", "10.0.0.1/24");
    let listener = ns.run(|| TcpListener::bind((HOST_IP, 0)).expect("double binds"));
    let port = listener.local_addr().unwrap().port();
    let user_data =
        format!("probe.ping={HOST_IP} probe.fetch=http://{HOST_IP}:{port}/ probe.mode=count\n");
    let double = ImdsDouble::start(listener, user_data.clone());
    dnat_imds(&ns, port);
    // The command line's ping and fetch are replaced by the user-data's.
    let vm = ProbeVm::start(
        &ns,
        "tap0",
        "02:00:00:00:00:02",
        &format!(
            "probe.net=static:10.0.0.2/24,10.0.0.1 probe.imds=v2 probe.ping=10.0.0.77 \
             probe.fetch=http://{HOST_IP}:{port}/from-cmdline"
        ),
    );
    vm.wait_for_line("probe: fetch ", PING_TIMEOUT);

    let options =
        format!("probe.ping={HOST_IP} probe.fetch=http://{HOST_IP}:{port}/ probe.mode=count");
    vm.assert_line(&format!("probe: imds user-data={options}\\n"));
    vm.assert_line(&format!("probe: user-data options {options}"));
    vm.assert_line("probe: user-data option probe.mode ignored");
    let ping = vm.wait_for_line("probe: ping ", Duration::ZERO);
    assert!(rtt_us(&ping, HOST_IP) < 5_000_000, "{ping}");
    vm.assert_line("probe: fetch 200 fetched through user-data");
    assert!(
        !vm.console().contains("probe: ping 10.0.0.77"),
        "{}",
        vm.console()
    );
    // Order: metadata, options, ping, fetch.
    let at = |prefix: &str| vm.line_index(prefix);
    assert!(at("probe: imds done") < at("probe: user-data options "));
    assert!(at("probe: user-data options ") < at("probe: user-data option probe.mode ignored"));
    assert!(at("probe: user-data option probe.mode ignored") < at("probe: ping "));
    assert!(at("probe: ping ") < at("probe: fetch "));
    let paths = double.paths();
    assert!(paths.iter().any(|p| p == "GET /"), "{paths:?}");
    assert!(
        !paths.iter().any(|p| p.contains("from-cmdline")),
        "{paths:?}"
    );

    // Still serving, and answering pings.
    namespace_pings(&ns, "10.0.0.2");
    assert!(http_get(&ns, "10.0.0.2", 80, "/").ends_with("\r\n\r\nprobe\n"));
}

#[test]
fn user_data_that_is_not_options_changes_nothing() {
    let ns = NetNs::with_tap("pingscript", "10.0.0.1/24");
    let listener = ns.run(|| TcpListener::bind((HOST_IP, 0)).expect("double binds"));
    let port = listener.local_addr().unwrap().port();
    let _double = ImdsDouble::start(listener, "#!/bin/sh\nprobe.ping=10.0.0.77\n".to_string());
    dnat_imds(&ns, port);
    let vm = ProbeVm::start(
        &ns,
        "tap0",
        "02:00:00:00:00:02",
        "probe.net=static:10.0.0.2/24,10.0.0.1 probe.imds=v1 probe.ping=10.0.0.1",
    );
    let ping = vm.wait_for_line("probe: ping ", PING_TIMEOUT);
    assert!(rtt_us(&ping, HOST_IP) < 5_000_000, "{ping}");
    vm.assert_line(r"probe: imds user-data=#!/bin/sh\nprobe.ping=10.0.0.77\n");
    assert!(
        !vm.console().contains("user-data option"),
        "{}",
        vm.console()
    );
}

/// `GET http://ip:port/path` from inside the namespace: the whole reply.
fn http_get(ns: &NetNs, ip: &'static str, port: u16, path: &'static str) -> String {
    ns.run(move || {
        let mut s = TcpStream::connect((ip, port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n").unwrap();
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        reply
    })
}

/// Sends 169.254.169.254:80 arriving from the probe to the double at `HOST_IP:port`.
fn dnat_imds(ns: &NetNs, port: u16) {
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

/// A small metadata service (any token accepted) whose user-data is given, and which also
/// answers `GET /` (the target of the user-data's `probe.fetch=`). One connection at a
/// time, each answered and closed; stops (and joins its thread) when dropped.
struct ImdsDouble {
    /// `METHOD PATH` of every request.
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ImdsDouble {
    fn start(listener: TcpListener, user_data: String) -> Self {
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
                        Ok((stream, _)) => serve(stream, &user_data, &seen),
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

    fn paths(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
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

/// Waits up to `timeout_ms` for a connection to accept.
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

/// Reads one request head from `stream`, logs its request line, answers and closes.
fn serve(mut stream: TcpStream, user_data: &str, seen: &Mutex<Vec<String>>) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    while !data.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
        if data.len() > 16 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&data).into_owned();
    let mut request_line = head.split("\r\n").next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default();
    let path = request_line.next().unwrap_or_default();
    seen.lock().unwrap().push(format!("{method} {path}"));
    let (status, body) = match (method, path) {
        ("PUT", "/latest/api/token") => ("200 OK", "AQAEAKec2PingToken=="),
        ("GET", "/latest/meta-data/instance-id") => ("200 OK", "i-0ping0000000000001"),
        ("GET", "/latest/user-data") => ("200 OK", user_data),
        ("GET", "/") => ("200 OK", "fetched through user-data\n"),
        _ => ("404 Not Found", "Not Found"),
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes());
}
