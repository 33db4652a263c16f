//! The probe's metadata client end to end (`probe.imds=`, `probe.http=imds`,
//! `probe.imds_bench=`): in a network namespace the test creates, a DNAT rule sends
//! 169.254.169.254:80 to the IMDS double (`common/imds_double.rs`) that the test runs on the
//! tap's host side, and the probe's console lines and the double's log of requests are checked.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::imds_double::{HOST_IP, ImdsDouble, Metadata, TOKEN, closed_port, dnat_imds};
use common::probe_vm::ProbeVm;
use common::{NetNs, eventually};

/// The probe's address, fixed.
const STATIC: &str = "probe.net=static:10.0.0.2/24,10.0.0.1";

/// A probe serving at 10.0.0.2 on the namespace's `tap0`; killed when dropped.
fn start_vm(ns: &NetNs, cmdline: &str) -> ProbeVm {
    ProbeVm::start(ns, "tap0", "02:00:00:00:00:02", cmdline)
}

/// The body of `GET http://10.0.0.2/`, from inside the namespace, once the responder no
/// longer answers `imds-pending`.
fn probe_page(ns: &NetNs) -> String {
    let mut body = String::new();
    eventually(Duration::from_secs(10), || {
        body = ns.run(|| {
            let Ok(mut s) = TcpStream::connect(("10.0.0.2", 80)) else {
                return String::new();
            };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.write_all(b"GET / HTTP/1.0\r\nHost: 10.0.0.2\r\n\r\n");
            let mut reply = String::new();
            let _ = s.read_to_string(&mut reply);
            reply
        });
        body.starts_with("HTTP/1.0 200 OK") && !body.ends_with("\r\n\r\nimds-pending\n")
    });
    body
}

/// Sends `data` to the probe's TCP echo service from inside the namespace; returns what
/// came back.
fn echo(ns: &NetNs, data: &'static [u8]) -> Vec<u8> {
    ns.run(move || {
        let mut s = TcpStream::connect(("10.0.0.2", 7)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(data).unwrap();
        let mut got = vec![0u8; data.len()];
        s.read_exact(&mut got).unwrap();
        got
    })
}

/// How long a probe may take from start to `probe: imds done` (the fetch retries for 5 s).
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn v2_fetches_with_a_token_and_the_page_names_the_instance() {
    let ns = NetNs::with_tap("imds2", "10.0.0.1/24");
    let (double, port) = ImdsDouble::start(&ns, 0, Metadata::default());
    dnat_imds(&ns, port);
    let vm = start_vm(
        &ns,
        &format!("{STATIC} probe.imds=v2 probe.http=imds probe.imds_bench=200"),
    );
    let bench = vm.wait_for_line("probe: imds bench ", FETCH_TIMEOUT);
    eprintln!("{bench}");

    vm.assert_line("probe: imds instance-id=i-0feedc0ffee123456");
    vm.assert_line("probe: imds local-ipv4=10.0.0.2");
    vm.assert_line(
        "probe: imds public-keys/0/openssh-key=\
         ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKec2TestKey kec2-test",
    );
    vm.assert_line("probe: imds user-data=HTTP 404");
    vm.assert_line("probe: imds done");
    assert!(
        !vm.console().contains("probe: imds token="),
        "{}",
        vm.console()
    );
    assert!(
        bench.starts_with("probe: imds bench n=200 ok=200 rps="),
        "{bench}"
    );

    // One PUT with the TTL, then every GET (4 items, 20 timed) with the token.
    let seen = double.seen();
    assert_eq!(seen[0].method, "PUT", "{seen:?}");
    assert_eq!(seen[0].path, "/latest/api/token");
    assert_eq!(
        seen[0].header("X-aws-ec2-metadata-token-ttl-seconds"),
        Some("21600")
    );
    assert_eq!(seen.len(), 1 + 4 + 200, "{seen:?}");
    for request in &seen[1..] {
        assert_eq!(request.method, "GET", "{request:?}");
        assert_eq!(
            request.header("X-aws-ec2-metadata-token"),
            Some(TOKEN),
            "{request:?}"
        );
    }
    let paths: Vec<&str> = seen[1..5].iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/latest/meta-data/instance-id",
            "/latest/meta-data/local-ipv4",
            "/latest/meta-data/public-keys/0/openssh-key",
            "/latest/user-data",
        ]
    );

    let page = probe_page(&ns);
    assert!(page.starts_with("HTTP/1.0 200 OK"), "{page}");
    assert!(page.ends_with("\r\n\r\ni-0feedc0ffee123456\n"), "{page}");
}

#[test]
fn v1_against_required_tokens_gets_401() {
    let ns = NetNs::with_tap("imds1", "10.0.0.1/24");
    let (double, port) = ImdsDouble::start(&ns, 0, Metadata::default());
    dnat_imds(&ns, port);
    let vm = start_vm(&ns, &format!("{STATIC} probe.imds=v1 probe.http=imds"));
    vm.wait_for_line("probe: imds done", FETCH_TIMEOUT);

    vm.assert_line("probe: imds instance-id=HTTP 401");
    vm.assert_line("probe: imds user-data=HTTP 401");
    let seen = double.seen();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(
        seen.iter()
            .all(|r| r.method == "GET" && r.header("X-aws-ec2-metadata-token").is_none()),
        "{seen:?}"
    );
    let page = probe_page(&ns);
    assert!(page.ends_with("\r\n\r\nimds-unavailable\n"), "{page}");
}

#[test]
fn user_data_is_printed_escaped_on_one_line() {
    let ns = NetNs::with_tap("imdsud", "10.0.0.1/24");
    let metadata = Metadata {
        tokens_required: false,
        openssh_key: b"ssh-ed25519 AAAAkey k1\n",
        user_data: Some(b"#!/bin/sh\necho h\xe9llo > C:\\x\r\n".to_vec()),
        ..Metadata::default()
    };
    let (_double, port) = ImdsDouble::start(&ns, 0, metadata);
    dnat_imds(&ns, port);
    // With a probe.fetch= after the metadata, and the other services still serving.
    let vm = start_vm(
        &ns,
        &format!(
            "{STATIC} probe.imds=v1 probe.fetch=http://{HOST_IP}:{port}/latest/meta-data/local-ipv4"
        ),
    );
    vm.wait_for_line("probe: fetch ", FETCH_TIMEOUT);
    vm.assert_line("probe: fetch 200 10.0.0.2");
    assert_eq!(echo(&ns, b"echo after imds"), b"echo after imds");

    vm.assert_line(r"probe: imds user-data=#!/bin/sh\necho h\xe9llo > C:\\x\r\n");
    vm.assert_line(r"probe: imds public-keys/0/openssh-key=ssh-ed25519 AAAAkey k1\n");
    vm.assert_line("probe: imds instance-id=i-0feedc0ffee123456");
}

#[test]
fn a_service_that_comes_up_late_is_retried() {
    let ns = NetNs::with_tap("imdslate", "10.0.0.1/24");
    // The port stays closed (connections are refused) while the probe starts.
    let port = closed_port(&ns);
    dnat_imds(&ns, port);
    let vm = start_vm(&ns, &format!("{STATIC} probe.imds=v2"));
    vm.wait_for_line("probe: net serving", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(1500));
    let (double, _) = ImdsDouble::start(&ns, port, Metadata::default());
    vm.wait_for_line("probe: imds done", FETCH_TIMEOUT);

    vm.assert_line("probe: imds instance-id=i-0feedc0ffee123456");
    assert!(
        !vm.console().contains("probe: imds token="),
        "{}",
        vm.console()
    );
    assert_eq!(double.seen()[0].method, "PUT");
}

#[test]
fn an_unreachable_service_is_reported_and_the_page_says_so() {
    let ns = NetNs::with_tap("imdsnone", "10.0.0.1/24");
    dnat_imds(&ns, closed_port(&ns));
    let vm = start_vm(&ns, &format!("{STATIC} probe.http=imds"));
    vm.wait_for_line("probe: imds done", FETCH_TIMEOUT);

    vm.assert_line("probe: imds token=error connection refused or reset");
    vm.assert_line("probe: imds instance-id=error connection refused or reset");
    vm.assert_line("probe: imds user-data=error connection refused or reset");
    let page = probe_page(&ns);
    assert!(page.ends_with("\r\n\r\nimds-unavailable\n"), "{page}");
}

/// dnsmasq serving one DHCP lease (10.0.0.2, router 10.0.0.1) on the namespace's tap; killed
/// when dropped.
struct Dhcp {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Dhcp {
    /// None if dnsmasq is not installed.
    fn start(ns: &NetNs) -> Option<Dhcp> {
        let dir = tempfile::tempdir().unwrap();
        let leases = format!("--dhcp-leasefile={}", dir.path().join("leases").display());
        let child = ns
            .command(&[
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--port=0",
                "--user=root",
                "--pid-file=",
                "--interface=tap0",
                "--bind-interfaces",
                "--dhcp-range=10.0.0.2,10.0.0.2,255.255.255.0,1h",
                "--dhcp-option=option:router,10.0.0.1",
                &leases,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        let mut dhcp = Dhcp { child, _dir: dir };
        std::thread::sleep(Duration::from_millis(300));
        if let Some(status) = dhcp.child.try_wait().unwrap() {
            let mut err = String::new();
            let _ = dhcp.child.stderr.take().unwrap().read_to_string(&mut err);
            // `ip netns exec` exits 255 when it cannot run the program.
            if status.code() == Some(255) && err.contains("No such file") {
                return None;
            }
            panic!("dnsmasq exited with {status}: {err}");
        }
        Some(dhcp)
    }
}

impl Drop for Dhcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_fetch_waits_for_a_dhcp_lease() {
    let ns = NetNs::with_tap("imdsdhcp", "10.0.0.1/24");
    let (double, port) = ImdsDouble::start(&ns, 0, Metadata::default());
    dnat_imds(&ns, port);
    let _dhcp = Dhcp::start(&ns).expect("dnsmasq (scripts/install-deps.sh installs it)");
    let vm = start_vm(&ns, "probe.net=dhcp probe.imds=v2 probe.http=imds");
    vm.wait_for_line("probe: imds done", FETCH_TIMEOUT);

    vm.assert_line("probe: net dhcp 10.0.0.2/24 gw 10.0.0.1");
    vm.assert_line("probe: imds instance-id=i-0feedc0ffee123456");
    assert_eq!(double.seen().len(), 1 + 4);
    let page = probe_page(&ns);
    assert!(page.ends_with("\r\n\r\ni-0feedc0ffee123456\n"), "{page}");
    assert_eq!(echo(&ns, b"dhcp echo"), b"dhcp echo");
}
