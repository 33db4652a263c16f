//! The probe's pings end to end (`probe.ping=`), and options given in user-data: in a network
//! namespace the test creates, probes on taps ping each other, the namespace and an address
//! nobody has; the IMDS double (`common/imds_double.rs`, behind a DNAT of 169.254.169.254:80)
//! hands a probe `probe.ping=` and `probe.fetch=` in its user-data.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::NetNs;
use common::imds_double::{HOST_IP, ImdsDouble, Metadata, dnat_imds, listen};
use common::probe_vm::ProbeVm;

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

/// What the double serves these tests: metadata with or without a token, `user_data`, and
/// `GET /` (the target of the user-data's `probe.fetch=`).
fn metadata(user_data: &str) -> Metadata {
    Metadata {
        tokens_required: false,
        instance_id: "i-0ping0000000000001",
        user_data: Some(user_data.as_bytes().to_vec()),
        other: vec![("/", b"fetched through user-data\n")],
        ..Metadata::default()
    }
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
    let listener = listen(&ns, 0);
    let port = listener.local_addr().unwrap().port();
    let user_data =
        format!("probe.ping={HOST_IP} probe.fetch=http://{HOST_IP}:{port}/ probe.mode=count\n");
    let double = ImdsDouble::with_listener(listener, metadata(&user_data));
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
    let paths = double.request_lines();
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
    let (_double, port) = ImdsDouble::start(&ns, 0, metadata("#!/bin/sh\nprobe.ping=10.0.0.77\n"));
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
