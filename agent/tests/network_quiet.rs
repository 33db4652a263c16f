//! An idle instance is left alone by its neighbours: the bridge floods nothing to its tap, so
//! other instances booting (DHCP broadcasts, ARP for their gateway) send it nothing, while a
//! neighbour's ARP request for its address is delivered to it alone and the two reach each
//! other as before. Through the product: a real agent in a network namespace of its own, with
//! the status checks (an ARP written down each tap) out of the way.

mod common;

use std::time::Duration;

use base64::Engine;
use common::{Agent, child_text, instance_ids};

const BOOT: Duration = Duration::from_secs(30);

/// `id`'s (private address, MAC) from DescribeInstances.
fn address_and_mac(agent: &Agent, id: &str) -> (String, String) {
    let xml = agent.call("DescribeInstances", &[("InstanceId.1", id)]);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let item = doc
        .descendants()
        .find(|n| n.has_tag_name("item") && child_text(*n, "instanceId") == id)
        .unwrap();
    let mac = item
        .descendants()
        .find(|n| n.has_tag_name("macAddress"))
        .and_then(|n| n.text())
        .unwrap_or_default()
        .to_owned();
    (child_text(item, "privateIpAddress"), mac)
}

fn ns_out(agent: &Agent, args: &[&str]) -> String {
    String::from_utf8(agent.ns.exec(args).stdout).unwrap()
}

/// The tap whose static forwarding entry holds `mac` (`MAC dev TAP master BRIDGE static`).
fn tap_of(agent: &Agent, mac: &str) -> String {
    let fdb = ns_out(agent, &["bridge", "fdb", "show"]);
    let line = fdb
        .lines()
        .find(|l| l.starts_with(mac) && l.contains(" static"))
        .unwrap_or_else(|| panic!("no static forwarding entry for {mac}:\n{fdb}"));
    line.split_whitespace().nth(2).unwrap().to_owned()
}

/// Frames the host has sent down `tap` to its guest.
fn frames_to_guest(agent: &Agent, tap: &str) -> u64 {
    let path = format!("/sys/class/net/{tap}/statistics/tx_packets");
    ns_out(agent, &["cat", &path]).trim().parse().unwrap()
}

#[test]
fn a_guest_gets_none_of_its_neighbours_broadcasts_and_reaches_them_all_the_same() {
    // Status checks once an hour: none during the test.
    let agent = Agent::start(&["--metrics-interval", "3600"]);
    let ami = agent.register_probe();
    let a = agent.run_one(&ami);
    agent.console_with(&a, "probe: imds done", BOOT);
    let (a_ip, a_mac) = address_and_mac(&agent, &a);
    let tap = tap_of(&agent, &a_mac);
    let quiet = frames_to_guest(&agent, &tap);

    // Five more instances boot (DHCP discover and request, ARP for their gateway, metadata)
    // and one of them pings A.
    let ping = base64::engine::general_purpose::STANDARD.encode(format!("probe.ping={a_ip}"));
    let b = instance_ids(&agent.call(
        "RunInstances",
        &[
            ("ImageId", ami.as_str()),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("InstanceType", "t2.nano"),
            ("UserData", &ping),
        ],
    ))[0]
        .clone();
    let others = instance_ids(&agent.call(
        "RunInstances",
        &[
            ("ImageId", ami.as_str()),
            ("MinCount", "4"),
            ("MaxCount", "4"),
            ("InstanceType", "t2.nano"),
        ],
    ));
    let console = agent.console_with(&b, &format!("probe: ping {a_ip} "), BOOT);
    assert!(
        console.contains(&format!("probe: ping {a_ip} ok")),
        "{console}"
    );
    for other in &others {
        agent.console_with(other, "probe: imds done", BOOT);
    }

    // A got B's ARP request (steered to it) and its echo request: nothing of the five boots.
    let reached = frames_to_guest(&agent, &tap) - quiet;
    assert!(
        (1..=3).contains(&reached),
        "{reached} frames reached {a} while five neighbours booted and one pinged it"
    );

    // What makes it so: the port neither learns nor floods, and the host knows A for good.
    let port = ns_out(&agent, &["bridge", "-d", "link", "show", "dev", &tap]);
    for flag in [
        "learning off",
        "flood off",
        "mcast_flood off",
        "bcast_flood off",
    ] {
        assert!(port.contains(flag), "{tap}: no {flag}:\n{port}");
    }
    let neighbour = ns_out(&agent, &["ip", "neigh", "show", &a_ip]);
    assert!(
        neighbour.contains(&a_mac) && neighbour.contains("PERMANENT"),
        "{neighbour}"
    );
}
