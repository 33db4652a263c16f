//! virtio-net end to end, inside a network namespace the test creates: the host side of the
//! tap pings the probe, fetches its web page, echoes 10 MiB through its TCP stack, and keeps a
//! TCP connection across a snapshot and restore.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::probe_vm::ProbeVm;
use common::{NetNs, api, api_json, eventually};

/// A probe at 10.0.0.2 on `tap0` of its own namespace, with a control socket, serving.
struct ServingProbe {
    /// Declared first: the VM ends before its namespace goes.
    vm: ProbeVm,
    ns: NetNs,
}

impl ServingProbe {
    fn start(tag: &str, extra: &str) -> Self {
        let ns = NetNs::with_tap(tag, "10.0.0.1/24");
        let cmdline = format!("probe.net=static:10.0.0.2/24,10.0.0.1 {extra}");
        let vm = ProbeVm::start_with_api(&ns, "tap0", "02:00:00:00:00:02", &cmdline);
        vm.wait_for_line("probe: net serving", Duration::from_secs(20));
        ServingProbe { vm, ns }
    }
}

#[test]
fn host_pings_the_probe_and_fetches_its_page() {
    let probe = ServingProbe::start("web", "probe.http=i-0123456789abcdef0");
    let ping = probe.ns.exec(&["ping", "-c", "3", "-W", "2", "10.0.0.2"]);
    assert!(String::from_utf8_lossy(&ping.stdout).contains("3 received"));
    let body = probe.ns.run(|| {
        let mut s = TcpStream::connect(("10.0.0.2", 80)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\nHost: 10.0.0.2\r\n\r\n")
            .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        reply
    });
    assert!(body.starts_with("HTTP/1.0 200 OK"), "{body}");
    assert!(body.ends_with("\r\n\r\ni-0123456789abcdef0\n"), "{body}");
    assert!(
        probe
            .vm
            .console()
            .contains("probe: net mac 02:00:00:00:00:02")
    );
    // The device counted the traffic.
    let status = api(probe.vm.api_sock(), "status");
    let net = &status["status"]["devices"][0];
    assert!(
        net["device"].as_str().unwrap().starts_with("net tap0"),
        "{net}"
    );
    assert!(net["requests"].as_u64().unwrap() >= 6, "{net}");
}

#[test]
fn tcp_echo_of_10_mib_is_exact() {
    let probe = ServingProbe::start("echo", "");
    let (sent, received) = probe.ns.run(|| {
        let data: Vec<u8> = (0..10u32 << 20).map(|i| (i * 7 + i / 4096) as u8).collect();
        let mut s = TcpStream::connect(("10.0.0.2", 7)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut reader = s.try_clone().unwrap();
        let total = data.len();
        let receiver = std::thread::spawn(move || {
            let mut got = Vec::with_capacity(total);
            let mut buf = vec![0u8; 65536];
            while got.len() < total {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            got
        });
        s.write_all(&data).unwrap();
        let received = receiver.join().unwrap();
        let _ = s.shutdown(Shutdown::Both);
        (data, received)
    });
    assert_eq!(received.len(), sent.len());
    assert!(received == sent, "echoed bytes differ");
}

/// Sends `data` on the echo connection and reads the same bytes back.
fn echo(s: &mut TcpStream, data: &[u8]) -> Vec<u8> {
    s.write_all(data).unwrap();
    let mut got = vec![0u8; data.len()];
    s.read_exact(&mut got).unwrap();
    got
}

#[test]
fn a_tcp_connection_survives_a_snapshot_and_restore() {
    let mut probe = ServingProbe::start("hib", "");
    let sock = probe.vm.api_sock().to_owned();
    let snap = probe.vm.dir().join("vm.snap");
    let mut conn = probe
        .ns
        .run(|| TcpStream::connect(("10.0.0.2", 7)).unwrap());
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    assert_eq!(
        echo(&mut conn, b"before the snapshot"),
        b"before the snapshot"
    );

    let answer = api_json(
        &sock,
        &serde_json::json!({ "action": "snapshot", "path": snap }),
    );
    assert_eq!(answer["ok"], true, "{answer}");
    let net = &answer["status"]["devices"][0];
    assert!(net["requests"].as_u64().unwrap() > 0, "{net}");
    assert_eq!(api(&sock, "stop")["ok"], true);
    assert!(
        eventually(Duration::from_secs(10), || probe
            .vm
            .try_wait()
            .is_some_and(|status| status.success())),
        "the first vmm ends"
    );
    // A new vmm on the same tap, in the same namespace.
    probe.vm.restore(&probe.ns, &snap);
    assert!(
        eventually(Duration::from_secs(10), || sock.exists()),
        "the restored vmm listens"
    );
    // The same connection, served by the restored guest.
    assert_eq!(echo(&mut conn, b"after the restore"), b"after the restore");
    let ping = probe.ns.exec(&["ping", "-c", "2", "-W", "2", "10.0.0.2"]);
    assert!(String::from_utf8_lossy(&ping.stdout).contains("2 received"));
    let restored = std::fs::read_to_string(probe.vm.console_path()).unwrap();
    assert!(
        !restored.contains("probe: net serving"),
        "no second boot:\n{restored}"
    );
}
