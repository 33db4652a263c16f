//! A tap's DHCP server run the way the agent runs it, as a unit restarted after a panic
//! (`host::tasks`): the first run hits an (injected) defect while serving, the panic is
//! logged with the instance and tap, and the probe's real DHCP client, booted only after
//! the panic, gets its lease from the restarted run on the same socket. Through a tap in a
//! network namespace this test creates and removes.

mod common;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::netns::{self, Namespace};
use host::netns::NetNs;
use host::network::dhcp::packet::Lease;
use host::network::dhcp::{DhcpServer, TapLease};
use host::tasks::{self, Backoff, Unit};

/// The tracing output of the server's thread.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs tap0's DHCP unit on a thread inside the namespace; its first run serves for 200 ms
/// and then panics.
fn serve_dhcp_with_a_defect(ns: &Namespace, config: TapLease, runs: Arc<AtomicU32>) -> Logs {
    let path = format!("/var/run/netns/{}", ns.0);
    let logs = Logs::default();
    let writer = logs.clone();
    std::thread::spawn(move || {
        netns::enter(&path);
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _log = tracing::subscriber::set_default(subscriber);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = Arc::new(DhcpServer::bind(&NetNs::current(), config).unwrap());
            let unit = Unit::new("dhcp server").instance("i-0probe").tap("tap0");
            let backoff = Backoff {
                first: Duration::from_millis(500),
                ..Backoff::SERVER
            };
            let unit = tasks::spawn_restarting(unit, backoff, move || {
                let server = server.clone();
                let run = runs.fetch_add(1, Ordering::SeqCst);
                async move {
                    if run == 0 {
                        let serving = server.serve();
                        let _ = tokio::time::timeout(Duration::from_millis(200), serving).await;
                        panic!("injected DHCP defect");
                    }
                    server.serve().await;
                }
            });
            let _ = unit.await;
        });
    });
    logs
}

/// Polls `what` every 50 ms for up to `secs` seconds.
fn wait_until(secs: u64, mut what: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if what() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    what()
}

#[test]
fn a_dhcp_server_that_panicked_is_restarted_and_leases_to_the_probe() {
    let ns = Namespace::new("dhcppanic");
    ns.add_tap("tap0", "10.0.0.1/24");
    let runs = Arc::new(AtomicU32::new(0));
    let config = TapLease {
        tap: "tap0".into(),
        server_ip: Ipv4Addr::new(10, 0, 0, 1),
        server_mac: [2, 0, 0, 0, 0, 1],
        client_mac: [2, 0, 0, 0, 0, 5],
        lease: Lease {
            ip: Ipv4Addr::new(10, 0, 0, 5),
            prefix: 24,
            router: Ipv4Addr::new(10, 0, 0, 1),
            dns: vec![Ipv4Addr::new(10, 0, 0, 2)],
            hostname: "ip-10-0-0-5".into(),
            lease_secs: 3600,
            mtu: 1500,
        },
    };
    let logs = serve_dhcp_with_a_defect(&ns, config, runs.clone());
    assert!(
        wait_until(5, || logs.text().contains("a unit panicked")),
        "the first run panics: {}",
        logs.text()
    );
    let panic_line = logs
        .text()
        .lines()
        .find(|l| l.contains("a unit panicked"))
        .map(str::to_owned)
        .unwrap();
    for part in ["dhcp server", "i-0probe", "tap0", "injected DHCP defect"] {
        assert!(panic_line.contains(part), "{part} missing: {panic_line}");
    }

    // Booted only now: whatever answers it is a run after the panic.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("probe.log");
    let mut probe = common::boot_probe_on_tap0(&ns, "02:00:00:00:00:05", "probe.net=dhcp", &log);
    // The whole line: the console is read while the probe may still be writing it.
    let leased = wait_until(20, || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .split_once("probe: net dhcp")
            .is_some_and(|(_, rest)| rest.contains('\n'))
    });
    let _ = probe.kill();
    let _ = probe.wait();
    let console = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(leased, "{console}\n{}", logs.text());
    assert!(
        console.contains("probe: net dhcp 10.0.0.5/24 gw 10.0.0.1"),
        "{console}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2, "one restart");
    assert!(logs.text().contains("restarting the unit"));
}
