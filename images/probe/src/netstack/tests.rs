//! Tests of the stack: smoltcp time from the TSC, and two stacks over fake virtio net devices
//! joined by a wire, one serving, the other a client of its services.

use smoltcp::socket::tcp;
use smoltcp::wire::IpAddress;

use super::*;
use crate::keyboard::Keyboard;

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
