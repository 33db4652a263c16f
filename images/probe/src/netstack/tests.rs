//! Tests of the stack: smoltcp time from the TSC, and two stacks over fake virtio net devices
//! joined by a wire, one serving, the other a client of its services.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant as StdInstant};

use smoltcp::socket::tcp;
use smoltcp::wire::IpAddress;

use super::*;
use crate::burn::Phase;
use crate::keyboard::Keyboard;
use crate::virtio::fake::Wire;

/// A server (10.0.0.2, answering `web-1`) and a client (10.0.0.1) over fake virtio net
/// devices joined by a wire (keep the wire alive while they talk).
fn two_stacks() -> (Stack, Stack, Wire) {
    use crate::cmdline::Ipv4Cidr as Cidr;
    use crate::virtio::fake::dummy_window;

    let clock = Clock::new(0);
    let (server_dev, server_rings) = VirtioNet::for_test(dummy_window(), [2, 0, 0, 0, 0, 2]);
    let (client_dev, client_rings) = VirtioNet::for_test(dummy_window(), [2, 0, 0, 0, 0, 1]);
    let wire = Wire::connect(server_rings, client_rings);
    let config = |last| NetConfig::Static {
        cidr: Cidr {
            addr: [10, 0, 0, last],
            prefix: 24,
        },
        gateway: Some([10, 0, 0, 1]),
    };
    let server = Stack::new(
        server_dev,
        config(2),
        b"web-1",
        1000,
        clock,
        Keyboard::new(),
    );
    let client = Stack::new(
        client_dev,
        config(1),
        b"probe",
        1000,
        clock,
        Keyboard::new(),
    );
    (server, client, wire)
}

/// A burn share of the test's own (stacks share the probe's one otherwise).
fn own_burn() -> &'static Burn {
    let burn: &'static Burn = Box::leak(Box::new(Burn::new()));
    burn.enter(Phase::Settled);
    burn
}

/// Runs `server` on a thread, calling `each` on it every round, until the returned flag is set.
fn serve(
    mut server: Stack,
    mut each: impl FnMut(&mut Stack) + Send + 'static,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        while !flag.load(Ordering::SeqCst) {
            each(&mut server);
            server.poll(true);
        }
    });
    (stop, thread)
}

/// `GET path` from `client` to the server: status and body.
fn get(client: &mut Stack, path: &[u8]) -> (u16, Vec<u8>) {
    let r = client
        .http_get([10, 0, 0, 2], 80, path, &[])
        .expect("answered");
    (r.status, r.body)
}

/// The control paths set the share and the ARP switch; everything else still answers the
/// name; a burning server still answers at once.
#[test]
fn http_control_paths() {
    let (mut server, mut client, _wire) = two_stacks();
    let burn = own_burn();
    server.use_burn(burn);
    let (stop, thread) = serve(server, |_| {});

    assert_eq!(get(&mut client, b"/burn/30"), (200, b"burn 30\n".to_vec()));
    assert_eq!(burn.share(), 30);
    assert_eq!(get(&mut client, b"/burn/101").0, 400);
    assert_eq!(get(&mut client, b"/burn/x").0, 400);
    assert_eq!(burn.share(), 30, "a bad value changes nothing");
    // At 100% the server never waits, yet answers promptly (it burns by serving).
    assert_eq!(get(&mut client, b"/burn/100").1, b"burn 100\n");
    for _ in 0..5 {
        let started = StdInstant::now();
        assert_eq!(get(&mut client, b"/"), (200, b"web-1\n".to_vec()));
        assert!(started.elapsed() < Duration::from_millis(500));
    }
    assert_eq!(get(&mut client, b"/burn/0").1, b"burn 0\n");
    assert_eq!(burn.share(), 0);
    assert_eq!(get(&mut client, b"/arp/off"), (200, b"arp off\n".to_vec()));
    // The client knows the server's address already: still answered.
    assert_eq!(get(&mut client, b"/burn"), (200, b"web-1\n".to_vec()));
    assert_eq!(get(&mut client, b"/arp/on"), (200, b"arp on\n".to_vec()));
    stop.store(true, Ordering::SeqCst);
    thread.join().unwrap();
}

/// With ARP off the client cannot resolve the server; switched on, it can.
#[test]
fn arp_off_hides_the_probe() {
    let (mut server, mut client, _wire) = two_stacks();
    server.set_answer_arp(false);
    let switch_on = Arc::new(AtomicBool::new(false));
    let switch = Arc::clone(&switch_on);
    let (stop, thread) = serve(server, move |server| {
        if switch.load(Ordering::SeqCst) {
            server.set_answer_arp(true);
        }
    });

    let r = client.http_request("GET", [10, 0, 0, 2], 80, b"/", &[], b"", 2000);
    assert_eq!(r.map(|r| r.status), Err(HttpError::Timeout));
    switch_on.store(true, Ordering::SeqCst);
    assert_eq!(get(&mut client, b"/"), (200, b"web-1\n".to_vec()));
    stop.store(true, Ordering::SeqCst);
    thread.join().unwrap();
}

/// With ARP off the probe still resolves others (their replies pass the filter).
#[test]
fn arp_off_keeps_resolving_others() {
    let (mut server, mut client, _wire) = two_stacks();
    server.set_answer_arp(false);
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let asking = std::thread::spawn(move || {
        let r = server.http_get([10, 0, 0, 1], 80, b"/", &[]);
        flag.store(true, Ordering::SeqCst);
        r.map(|r| r.body)
    });
    let deadline = StdInstant::now() + Duration::from_secs(20);
    while !done.load(Ordering::SeqCst) {
        client.poll(true);
        assert!(StdInstant::now() < deadline, "the server's GET stalled");
    }
    assert_eq!(asking.join().unwrap(), Ok(b"probe\n".to_vec()));
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
