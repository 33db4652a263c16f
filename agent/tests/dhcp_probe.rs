//! The agent's DHCP server against the probe's real DHCP client, through a tap in a network
//! namespace this test creates and removes.

mod common;

use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent::network::dhcp::packet::Lease;
use agent::network::dhcp::{DhcpServer, TapLease};
use agent::network::netns::NetNs;
use common::netns::{self, Namespace};

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

fn boot_probe(ns: &Namespace, mac: &str, log: &std::path::Path) -> Child {
    let manifest = common::probe_manifest();
    let probe = manifest.with_file_name("probe.elf");
    Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(common::vmm_bin())
        .arg("--kernel")
        .arg(probe)
        .args(["--mem-mib", "64", "--net", &format!("tap=tap0,mac={mac}")])
        .args(["--cmdline", "probe.net=dhcp"])
        .arg("--serial-log")
        .arg(log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
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
    let mut known = boot_probe(&ns, "02:00:00:00:00:05", &known_log);
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
    let mut stranger = boot_probe(&ns, "02:00:00:00:00:66", &stranger_log);
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
