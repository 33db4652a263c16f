//! Security groups in iptables against a real probe on a VPC-style bridge: an outside client,
//! routed through the host namespace, reaches the probe's web page only while a rule allows it.
//! Both namespaces are created and removed by the test.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Child;
use std::time::{Duration, Instant};

use common::netns::Namespace;
use host::netns::NetNs;
use host::network::firewall::{self, EniFirewall, FirewallPlan, Peer, Protocol, Rule};

struct Vm(Child);

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Host namespace: bridge br0 (10.0.0.1/24) with tap0, forwarding on, bridged traffic through
/// iptables; outside namespace: 10.9.0.2 behind a veth, routed to 10.0.0.0/24 via the host.
fn topology() -> (Namespace, Namespace) {
    let host = Namespace::new("sg-host");
    let outside = Namespace::new("sg-out");
    host.exec(&["ip", "link", "add", "br0", "type", "bridge"]);
    host.exec(&["ip", "addr", "add", "10.0.0.1/24", "dev", "br0"]);
    host.exec(&["ip", "link", "set", "br0", "up"]);
    host.exec(&["ip", "tuntap", "add", "dev", "tap0", "mode", "tap"]);
    host.exec(&["ip", "link", "set", "tap0", "master", "br0"]);
    host.exec(&["ip", "link", "set", "tap0", "up"]);
    host.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    host.exec(&["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"]);
    host.exec(&[
        "ip", "link", "add", "veth-h", "type", "veth", "peer", "name", "veth-o",
    ]);
    host.exec(&["ip", "link", "set", "veth-o", "netns", &outside.0]);
    host.exec(&["ip", "addr", "add", "10.9.0.1/24", "dev", "veth-h"]);
    host.exec(&["ip", "link", "set", "veth-h", "up"]);
    outside.exec(&["ip", "addr", "add", "10.9.0.2/24", "dev", "veth-o"]);
    outside.exec(&["ip", "link", "set", "veth-o", "up"]);
    outside.exec(&["ip", "route", "add", "10.0.0.0/24", "via", "10.9.0.1"]);
    (host, outside)
}

fn boot_probe(host: &Namespace, log: &std::path::Path) -> Vm {
    let vm = Vm(common::boot_probe_on_tap0(
        host,
        "02:00:00:00:00:02",
        "probe.net=static:10.0.0.2/24,10.0.0.1 probe.http=i-sgtest",
        log,
    ));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains("probe: net serving")
        {
            return vm;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "the probe did not come up: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// A fresh connection from the outside namespace to the probe's web page.
fn fetch(outside: &Namespace) -> Option<String> {
    outside.run(|| {
        let addr: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).ok()?;
        Some(reply)
    })
}

fn apply(host: &Namespace, ingress: Vec<Rule>) {
    let eni = EniFirewall {
        tap: "tap0".into(),
        ip: Ipv4Addr::new(10, 0, 0, 2),
        mac: "02:00:00:00:00:02".into(),
        ingress,
        egress: vec![Rule {
            protocol: Protocol::All,
            ports: None,
            peer: Peer::Cidr(Ipv4Addr::UNSPECIFIED, 0),
        }],
        imds_port: None,
        public_ip: None,
    };
    let plan = FirewallPlan {
        enis: vec![eni],
        ..FirewallPlan::default()
    };
    host.run(move || firewall::apply(&NetNs::current(), &plan))
        .unwrap();
}

fn tcp(port: u16, cidr: (Ipv4Addr, u8)) -> Rule {
    Rule {
        protocol: Protocol::Tcp,
        ports: Some((port, port)),
        peer: Peer::Cidr(cidr.0, cidr.1),
    }
}

#[test]
fn the_page_is_reachable_only_while_port_80_is_authorized() {
    let (host, outside) = topology();
    let dir = tempfile::tempdir().unwrap();
    let _vm = boot_probe(&host, &dir.path().join("console.log"));
    assert!(
        fetch(&outside).is_some(),
        "without agent rules the network itself works"
    );

    apply(&host, vec![]);
    assert!(fetch(&outside).is_none(), "default deny inbound");

    apply(
        &host,
        vec![
            tcp(22, (Ipv4Addr::new(10, 9, 0, 0), 24)),
            tcp(80, (Ipv4Addr::new(192, 0, 2, 0), 24)),
        ],
    );
    assert!(
        fetch(&outside).is_none(),
        "port 80 from a CIDR without the client stays closed"
    );

    apply(&host, vec![tcp(80, (Ipv4Addr::new(10, 9, 0, 0), 24))]);
    let page = fetch(&outside).expect("authorized");
    assert!(page.ends_with("i-sgtest\n"), "{page}");

    apply(&host, vec![]);
    assert!(
        fetch(&outside).is_none(),
        "revoked: new connections are cut"
    );

    // Only the agent's own chains were created, and re-applying leaves no stale ones.
    let rules = String::from_utf8(host.exec(&["iptables", "-S"]).stdout).unwrap();
    let mut chains: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.strip_prefix("-N "))
        .collect();
    chains.sort();
    assert_eq!(
        chains,
        [
            "KEC2-E-tap0",
            "KEC2-FORWARD",
            "KEC2-FWD-ACCEPT",
            "KEC2-FWD-EGRESS",
            "KEC2-FWD-INGRESS",
            "KEC2-I-tap0",
            "KEC2-IN-SPOOF",
            "KEC2-INPUT",
            "KEC2-OUT-INGRESS",
            "KEC2-OUTPUT",
            "KEC2-S-tap0",
            "KEC2-VPC"
        ]
    );
    assert_eq!(
        rules.matches("-A FORWARD -j KEC2-FORWARD").count(),
        1,
        "hooked once"
    );
    host.run(|| firewall::apply(&NetNs::current(), &FirewallPlan::default()))
        .unwrap();
    let rules = String::from_utf8(host.exec(&["iptables", "-S"]).stdout).unwrap();
    assert!(
        !rules.contains("KEC2-I-tap0"),
        "a gone ENI's chains are removed:\n{rules}"
    );
}
