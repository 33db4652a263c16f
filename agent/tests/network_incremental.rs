//! The firewall changed one instance at a time: a launch adds only that instance's chains,
//! jumps and set members, a termination removes them, and what results is what a full
//! rebuild (an agent restart) makes from the database. Through the product: a real agent in a
//! network namespace of its own, probe instances fetching from each other.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine;
use common::{Agent, child_text, eventually, instance_ids};

const BOOT: Duration = Duration::from_secs(30);

fn launch(agent: &Agent, ami: &str, group: &str, user_data: Option<&str>) -> String {
    let data = user_data.map(|d| base64::engine::general_purpose::STANDARD.encode(d));
    let mut params = vec![
        ("ImageId", ami),
        ("MinCount", "1"),
        ("MaxCount", "1"),
        ("InstanceType", "t2.nano"),
        ("SecurityGroupId.1", group),
    ];
    if let Some(d) = &data {
        params.push(("UserData", d));
    }
    instance_ids(&agent.call("RunInstances", &params))[0].clone()
}

fn create_group(agent: &Agent, name: &str) -> String {
    let xml = agent.call(
        "CreateSecurityGroup",
        &[("GroupName", name), ("GroupDescription", name)],
    );
    let doc = roxmltree::Document::parse(&xml).unwrap();
    doc.descendants()
        .find(|n| n.has_tag_name("groupId"))
        .and_then(|n| n.text())
        .unwrap()
        .to_owned()
}

fn private_ip(agent: &Agent, id: &str) -> String {
    let xml = agent.call("DescribeInstances", &[("InstanceId.1", id)]);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let item = doc
        .descendants()
        .find(|n| n.has_tag_name("item") && child_text(*n, "instanceId") == id)
        .unwrap();
    child_text(item, "privateIpAddress")
}

fn ns_out(agent: &Agent, args: &[&str]) -> String {
    let out = agent.ns.exec(args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The members of the ipset of group `group`.
fn members(agent: &Agent, group: &str) -> BTreeSet<String> {
    let listed = ns_out(agent, &["ipset", "list", &format!("KEC2-G-{group}")]);
    listed
        .split("Members:\n")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Every rule of the agent (filter, nat, bridge layer) as a set of lines, metadata ports
/// masked (a restarted agent listens on new ones).
fn all_rules(agent: &Agent) -> BTreeSet<String> {
    let mut lines = BTreeSet::new();
    for table in ["filter", "nat"] {
        for l in ns_out(agent, &["iptables", "-t", table, "-S"]).lines() {
            let masked = match l.split_once("169.254.169.254:") {
                Some((head, _)) => format!("{head}169.254.169.254:PORT"),
                None => l.to_owned(),
            };
            lines.insert(format!("{table} {masked}"));
        }
    }
    let mut chain = String::new();
    for l in ns_out(agent, &["ebtables", "-L"]).lines() {
        if let Some(name) = l.strip_prefix("Bridge chain: ") {
            chain = name.split(',').next().unwrap_or_default().to_owned();
            lines.insert(format!("bridge chain {chain}"));
        } else if l.starts_with('-') {
            lines.insert(format!("bridge {chain} {l}"));
        }
    }
    lines
}

/// Whether rule line `line` names tap `tap` (as a device or in a chain's name).
fn mentions(line: &str, tap: &str) -> bool {
    line.split(|c: char| c.is_whitespace() || c == '-')
        .any(|w| w == tap)
}

/// The tap whose anti-spoofing chain pins address `ip`.
fn tap_of(rules: &BTreeSet<String>, ip: &str) -> String {
    let pin = format!(" ! -s {ip}/32 -j DROP");
    rules
        .iter()
        .find_map(|l| {
            l.strip_prefix("filter -A KEC2-S-")
                .and_then(|r| r.strip_suffix(&pin))
        })
        .unwrap_or_else(|| panic!("no chain pins {ip}:\n{rules:#?}"))
        .to_owned()
}

#[test]
fn launches_and_terminations_change_only_their_own_rules_and_a_restart_rebuilds_the_same() {
    let mut agent = Agent::start(&[]);
    let ami = agent.register_probe();
    let web = create_group(&agent, "web");
    let clients = create_group(&agent, "clients");
    agent.call(
        "AuthorizeSecurityGroupIngress",
        &[
            ("GroupId", &web),
            ("IpPermissions.1.IpProtocol", "tcp"),
            ("IpPermissions.1.FromPort", "80"),
            ("IpPermissions.1.ToPort", "80"),
            ("IpPermissions.1.Groups.1.GroupId", &clients),
        ],
    );
    let server = launch(&agent, &ami, &web, None);
    agent.console_with(&server, "probe: imds done", BOOT);
    let server_ip = private_ip(&agent, &server);
    let fetch = format!("probe.fetch=http://{server_ip}/");

    // A member of `clients` reaches the server; one of `web` (not a client) does not.
    let a = launch(&agent, &ami, &clients, Some(&fetch));
    let stranger = launch(&agent, &ami, &web, Some(&fetch));
    let console = agent.console_with(&a, "probe: fetch ", BOOT);
    assert!(
        console.contains(&format!("probe: fetch 200 {server}")),
        "{console}"
    );
    let console = agent.console_with(&stranger, "probe: fetch ", BOOT);
    assert!(!console.contains("probe: fetch 200"), "{console}");
    let a_ip = private_ip(&agent, &a);
    assert_eq!(members(&agent, &clients), BTreeSet::from([a_ip.clone()]));

    let before = all_rules(&agent);
    let a_tap = tap_of(&before, &a_ip);
    let server_tap = tap_of(&before, &server_ip);
    let server_rules: BTreeSet<String> = before
        .iter()
        .filter(|l| mentions(l, &server_tap))
        .cloned()
        .collect();
    assert!(
        server_rules.contains(&format!(
            "filter -A KEC2-I-{server_tap} -p tcp -m tcp --dport 80 -m set --match-set \
             KEC2-G-{clients} src -j ACCEPT"
        )),
        "{server_rules:#?}"
    );

    // A terminated instance leaves no chain, jump, nat rule or set membership behind; the
    // server's rules are untouched.
    agent.call("TerminateInstances", &[("InstanceId.1", &a)]);
    agent.wait_state(&a, "terminated", Duration::from_secs(30));
    assert!(
        eventually(Duration::from_secs(10), || !all_rules(&agent)
            .iter()
            .any(|l| mentions(l, &a_tap))),
        "{a_tap}'s rules left:\n{:#?}",
        all_rules(&agent)
    );
    let after = all_rules(&agent);
    assert!(
        server_rules.is_subset(&after),
        "the server's rules changed:\n{:#?}",
        server_rules.difference(&after).collect::<Vec<_>>()
    );
    assert!(
        members(&agent, &clients).is_empty(),
        "a terminated client is still a member"
    );
    let gone: Vec<&String> = before.difference(&after).collect();
    assert!(
        gone.iter()
            .all(|l| mentions(l, &a_tap) || l.contains(&a_ip)),
        "rules of others went: {gone:#?}"
    );

    // A new client is let in through the same path.
    let b = launch(&agent, &ami, &clients, Some(&fetch));
    let console = agent.console_with(&b, "probe: fetch ", BOOT);
    assert!(
        console.contains(&format!("probe: fetch 200 {server}")),
        "{console}"
    );
    let b_ip = private_ip(&agent, &b);
    assert_eq!(members(&agent, &clients), BTreeSet::from([b_ip.clone()]));

    // An agent killed and started again rebuilds every rule from the database: the same.
    let incremental = all_rules(&agent);
    agent.restart();
    assert!(
        eventually(Duration::from_secs(10), || all_rules(&agent) == incremental),
        "a full rebuild differs from the per-instance changes:\nonly incremental: {:#?}\nonly rebuilt: {:#?}",
        incremental
            .difference(&all_rules(&agent))
            .collect::<Vec<_>>(),
        all_rules(&agent)
            .difference(&incremental)
            .collect::<Vec<_>>(),
    );
    assert_eq!(members(&agent, &clients), BTreeSet::from([b_ip]));
}
