//! The agent's DHCP server against the probe's real DHCP client, through a tap in a network
//! namespace this test creates and removes.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::netns::{self, Namespace};
use host::netns::NetNs;
use host::network::dhcp::frame::server_frame;
use host::network::dhcp::packet::Lease;
use host::network::dhcp::{DhcpServer, TapLease};

/// Runs the DHCP server for tap0 on a thread inside the namespace, for as long as the test.
fn serve_dhcp(ns: &Namespace, config: TapLease) {
    let path = format!("/var/run/netns/{}", ns.0);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        netns::enter(&path);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = DhcpServer::bind(&NetNs::current(), config).unwrap();
            ready_tx.send(()).unwrap();
            server.serve().await;
        });
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the server starts");
}

fn lease(ip: [u8; 4]) -> Lease {
    Lease {
        ip: Ipv4Addr::from(ip),
        prefix: 24,
        router: Ipv4Addr::new(10, 0, 0, 1),
        dns: vec![Ipv4Addr::new(10, 0, 0, 2)],
        hostname: "ip-10-0-0-5".into(),
        lease_secs: 3600,
        mtu: 1500,
    }
}

#[test]
fn the_probe_gets_its_enis_address_and_a_stranger_gets_nothing() {
    let ns = Namespace::new("dhcp");
    ns.add_tap("tap0", "10.0.0.1/24");
    serve_dhcp(
        &ns,
        TapLease {
            tap: "tap0".into(),
            server_ip: Ipv4Addr::new(10, 0, 0, 1),
            server_mac: [2, 0, 0, 0, 0, 1],
            client_mac: [2, 0, 0, 0, 0, 5],
            lease: lease([10, 0, 0, 5]),
        },
    );
    let dir = tempfile::tempdir().unwrap();

    let known_log = dir.path().join("known.log");
    let mut known =
        common::boot_probe_on_tap0(&ns, "02:00:00:00:00:05", "probe.net=dhcp", &known_log);
    let start = Instant::now();
    let mut console = String::new();
    while start.elapsed() < Duration::from_secs(20) && !console.contains("probe: net dhcp") {
        std::thread::sleep(Duration::from_millis(100));
        console = std::fs::read_to_string(&known_log).unwrap_or_default();
    }
    let _ = known.kill();
    let _ = known.wait();
    assert!(
        console.contains("probe: net dhcp 10.0.0.5/24 gw 10.0.0.1"),
        "{console}"
    );

    // A guest with a MAC that is not the ENI's gets no answer.
    let stranger_log = dir.path().join("stranger.log");
    let mut stranger =
        common::boot_probe_on_tap0(&ns, "02:00:00:00:00:66", "probe.net=dhcp", &stranger_log);
    std::thread::sleep(Duration::from_secs(4));
    let _ = stranger.kill();
    let _ = stranger.wait();
    let console = std::fs::read_to_string(&stranger_log).unwrap();
    assert!(
        console.contains("probe: net mac 02:00:00:00:00:66"),
        "{console}"
    );
    assert!(!console.contains("probe: net dhcp"), "{console}");
}

/// A tap opened as a guest's end (no packet-information header), blocking.
fn open_tap(name: &str) -> std::fs::File {
    #[repr(C)]
    struct IfReq {
        name: [u8; libc::IFNAMSIZ],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
    const IFF_TAP: libc::c_short = 0x0002;
    const IFF_NO_PI: libc::c_short = 0x1000;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .unwrap();
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: IFF_TAP | IFF_NO_PI,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    use std::os::fd::AsRawFd;
    // SAFETY: TUNSETIFF takes a pointer to an ifreq-shaped struct that lives across the call.
    let rc = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            TUNSETIFF,
            (&raw const req).cast::<libc::c_void>(),
        )
    };
    assert_eq!(rc, 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
    file
}

/// A client frame from `mac`: UDP 68 to 67, IPv4 0.0.0.0 to the broadcast address.
fn client_frame(mac: [u8; 6], payload: &[u8]) -> Vec<u8> {
    let mut f = server_frame(&mac, Ipv4Addr::UNSPECIFIED, &[0xff; 6], payload);
    let udp = 14 + 20;
    f[udp..udp + 2].copy_from_slice(&68u16.to_be_bytes());
    f[udp + 2..udp + 4].copy_from_slice(&67u16.to_be_bytes());
    f
}

/// A DHCPDISCOVER from `mac` with transaction id `xid`.
fn discover(mac: [u8; 6], xid: u32) -> Vec<u8> {
    let mut p = vec![0u8; 236];
    p[0] = 1; // BOOTREQUEST
    p[1] = 1; // Ethernet
    p[2] = 6;
    p[4..8].copy_from_slice(&xid.to_be_bytes());
    p[28..34].copy_from_slice(&mac);
    p.extend([99, 130, 83, 99, 53, 1, 1, 255]); // cookie, DHCPDISCOVER, end
    p
}

/// Whether `frame` is a BOOTREPLY from port 67 with transaction id `xid`.
fn is_reply(frame: &[u8], xid: u32) -> bool {
    let udp = 14 + 20;
    frame.len() > udp + 8 + 8
        && frame[12..14] == [0x08, 0x00]
        && frame[udp..udp + 2] == 67u16.to_be_bytes()
        && frame[udp + 8] == 2
        && frame[udp + 8 + 4..udp + 8 + 8] == xid.to_be_bytes()
}

/// The frames that once killed the agent, or would have come near: an IPv4 total length
/// shorter than the IPv4 header, a 60-byte header in a 40-byte datagram, a UDP length
/// shorter than the UDP header, a truncated DHCP message. After them, the server still
/// answers a DHCPDISCOVER.
#[test]
fn malformed_frames_from_a_guest_leave_the_server_answering() {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    let ns = Namespace::new("dhcpbad");
    ns.add_tap("tap0", "10.0.0.1/24");
    let mac = [2, 0, 0, 0, 0, 5];
    serve_dhcp(
        &ns,
        TapLease {
            tap: "tap0".into(),
            server_ip: Ipv4Addr::new(10, 0, 0, 1),
            server_mac: [2, 0, 0, 0, 0, 1],
            client_mac: mac,
            lease: lease([10, 0, 0, 5]),
        },
    );
    let answered = ns.run(move || {
        let mut tap = open_tap("tap0");
        let ip = 14;
        let mut short_total = client_frame(mac, &discover(mac, 1));
        short_total[ip + 2..ip + 4].copy_from_slice(&10u16.to_be_bytes());
        let mut long_header = client_frame(mac, &discover(mac, 2));
        long_header[ip] = 0x4f;
        long_header[ip + 2..ip + 4].copy_from_slice(&40u16.to_be_bytes());
        let mut short_udp = client_frame(mac, &discover(mac, 3));
        short_udp[ip + 24..ip + 26].copy_from_slice(&4u16.to_be_bytes());
        let truncated = client_frame(mac, &discover(mac, 4)[..100]);
        for bad in [short_total, long_header, short_udp, truncated] {
            tap.write_all(&bad).unwrap();
        }
        // The good DISCOVER is sent again every half second, as a real client retransmits:
        // the tap's transmit queue starts only once the kernel's link watch has seen its
        // carrier, and a reply sent before that is dropped.
        let good = client_frame(mac, &discover(mac, 5));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut next_send = Instant::now();
        let mut buf = vec![0u8; 2048];
        let mut replies = Vec::new();
        while Instant::now() < deadline {
            if Instant::now() >= next_send {
                tap.write_all(&good).unwrap();
                next_send = Instant::now() + Duration::from_millis(500);
            }
            let mut poll = libc::pollfd {
                fd: tap.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the call's duration.
            if unsafe { libc::poll(&mut poll, 1, 200) } <= 0 {
                continue;
            }
            let n = tap.read(&mut buf).unwrap();
            if let Some(xid) = (1..=5).find(|x| is_reply(&buf[..n], *x)) {
                replies.push(xid);
                if xid == 5 {
                    break;
                }
            }
        }
        replies
    });
    assert_eq!(
        answered,
        vec![5],
        "only the well-formed DISCOVER is answered"
    );
}
