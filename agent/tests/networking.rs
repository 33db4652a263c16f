//! Instance networking end to end: a real agent whose VPC bridge, taps, rules, DHCP and
//! metadata service live in a network namespace the test harness creates and removes, with
//! probe instances as guests. Clients reach instances from inside that namespace (the
//! "host side" of the VPC), never from the machine's own network.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use base64::Engine;
use common::{Agent, child_text, eventually, instance_ids};

const BOOT: Duration = Duration::from_secs(30);
const PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHvQ8ykR6n9xKb6m0Qw3bXv0q9aY3wM1N5o2rT4sVxJk test@kec2";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Launches one t2.nano of `ami` with extra parameters; returns its id.
fn launch(agent: &Agent, ami: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("ImageId", ami),
        ("MinCount", "1"),
        ("MaxCount", "1"),
        ("InstanceType", "t2.nano"),
    ];
    params.extend_from_slice(extra);
    instance_ids(&agent.call("RunInstances", &params))[0].clone()
}

/// An instance's field from DescribeInstances (`privateIpAddress`, `ipAddress`, ...).
fn field(agent: &Agent, id: &str, name: &str) -> String {
    let xml = agent.call("DescribeInstances", &[("InstanceId.1", id)]);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let item = doc
        .descendants()
        .find(|n| n.has_tag_name("item") && child_text(*n, "instanceId") == id)
        .unwrap();
    child_text(item, name)
}

/// What a fresh TCP connection from the agent's namespace to `ip:port` gives: the HTTP reply,
/// or how it failed (refused: reached but closed; timed out: filtered).
fn http_get(agent: &Agent, ip: &str, port: u16) -> Result<String, ErrorKind> {
    let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
    agent.ns.run(move || {
        let mut s =
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.kind())?;
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n")
            .map_err(|e| e.kind())?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).map_err(|e| e.kind())?;
        Ok(reply)
    })
}

fn group(agent: &Agent, name: &str) -> String {
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

fn authorize(agent: &Agent, action: &str, group: &str, port: &str, peer: (&str, &str)) {
    agent.call(
        action,
        &[
            ("GroupId", group),
            ("IpPermissions.1.IpProtocol", "tcp"),
            ("IpPermissions.1.FromPort", port),
            ("IpPermissions.1.ToPort", port),
            peer,
        ],
    );
}

#[test]
fn instances_get_leases_reach_each_other_and_read_only_their_own_metadata() {
    let agent = Agent::start(&[]);
    let ami = agent.register_probe();
    agent.call(
        "ImportKeyPair",
        &[("KeyName", "k1"), ("PublicKeyMaterial", &b64(PUBLIC_KEY))],
    );
    let a = launch(
        &agent,
        &ami,
        &[
            ("PrivateIpAddress", "172.31.0.10"),
            ("KeyName", "k1"),
            ("UserData", &b64("probe.ping=172.31.0.11")),
        ],
    );
    let b = launch(
        &agent,
        &ami,
        &[
            ("PrivateIpAddress", "172.31.0.11"),
            ("UserData", &b64("probe.ping=172.31.0.10")),
        ],
    );
    let console_a = agent.console_with(&a, "probe: ping 172.31.0.11 ", BOOT);
    assert!(
        console_a.contains("probe: net dhcp 172.31.0.10/20 gw 172.31.0.1"),
        "{console_a}"
    );
    assert!(
        console_a.contains(&format!("probe: imds instance-id={a}\n")),
        "{console_a}"
    );
    assert!(
        console_a.contains("probe: imds local-ipv4=172.31.0.10\n"),
        "{console_a}"
    );
    assert!(
        console_a.contains(&format!(
            "probe: imds public-keys/0/openssh-key={PUBLIC_KEY}"
        )),
        "{console_a}"
    );
    assert!(
        console_a.contains("probe: imds user-data=probe.ping=172.31.0.11\n"),
        "{console_a}"
    );
    assert!(
        console_a.contains("probe: ping 172.31.0.11 ok"),
        "same group: {console_a}"
    );
    let console_b = agent.console_with(&b, "probe: ping 172.31.0.10 ", BOOT);
    assert!(
        console_b.contains(&format!("probe: imds instance-id={b}\n")),
        "{console_b}"
    );
    assert!(
        console_b.contains("probe: imds public-keys/0/openssh-key=HTTP 404"),
        "{console_b}"
    );
    assert!(
        console_b.contains("probe: ping 172.31.0.10 ok"),
        "{console_b}"
    );
    assert_eq!(field(&agent, &a, "privateIpAddress"), "172.31.0.10");

    // With HttpTokens=required, an IMDSv1 GET is refused.
    let v1 = agent.register_probe_with("probe-v1", "probe.net=dhcp probe.imds=v1");
    let strict = launch(&agent, &v1, &[("MetadataOptions.HttpTokens", "required")]);
    let console = agent.console_with(&strict, "probe: imds done", BOOT);
    assert!(
        console.contains("probe: imds instance-id=HTTP 401"),
        "{console}"
    );
    // ...and with the endpoint disabled nothing answers at all.
    let off = launch(&agent, &v1, &[("MetadataOptions.HttpEndpoint", "disabled")]);
    let console = agent.console_with(&off, "probe: imds done", BOOT);
    assert!(
        console.contains("probe: imds instance-id=error"),
        "{console}"
    );
}

#[test]
fn a_guest_forging_another_instances_address_gets_none_of_its_metadata() {
    let agent = Agent::start(&[]);
    let ami = agent.register_probe();
    let victim = launch(&agent, &ami, &[("PrivateIpAddress", "172.31.0.20")]);
    agent.console_with(&victim, "probe: imds done", BOOT);
    // The forger configures the victim's address on its own interface.
    let forger_ami = agent.register_probe_with(
        "forger",
        "probe.net=static:172.31.0.20/20,172.31.0.1 probe.imds=v2",
    );
    let forger = launch(&agent, &forger_ami, &[]);
    let console = agent.console_with(&forger, "probe: imds done", BOOT);
    assert!(
        !console.contains(&victim),
        "the victim's id leaked:\n{console}"
    );
    assert!(
        console.contains("probe: imds instance-id=error"),
        "{console}"
    );
    assert!(console.contains("probe: imds token=error"), "{console}");
    // The victim is unharmed and still reads its own.
    assert!(
        agent
            .console(&victim)
            .contains(&format!("probe: imds instance-id={victim}"))
    );
}

#[test]
fn security_groups_gate_the_public_address() {
    let agent = Agent::start(&[]);
    let ami = agent.register_probe();
    let web = group(&agent, "web");
    let id = launch(&agent, &ami, &[("SecurityGroupId.1", &web)]);
    agent.console_with(&id, "probe: imds done", BOOT);
    let public = field(&agent, &id, "ipAddress");
    assert!(
        public.starts_with("198.51.100."),
        "public address {public:?}"
    );

    assert_eq!(
        http_get(&agent, &public, 80).map(|_| ()),
        Err(ErrorKind::TimedOut),
        "default deny"
    );

    authorize(
        &agent,
        "AuthorizeSecurityGroupIngress",
        &web,
        "80",
        ("IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0"),
    );
    let page = http_get(&agent, &public, 80).expect("port 80 authorized");
    assert!(page.contains(&id), "the page names the instance: {page}");

    // A rule for port 22 from a CIDR without the client: still filtered. The same port
    // from everywhere: the probe's refusal comes through.
    authorize(
        &agent,
        "AuthorizeSecurityGroupIngress",
        &web,
        "22",
        ("IpPermissions.1.IpRanges.1.CidrIp", "10.99.0.0/16"),
    );
    assert_eq!(
        http_get(&agent, &public, 22).map(|_| ()),
        Err(ErrorKind::TimedOut)
    );
    authorize(
        &agent,
        "AuthorizeSecurityGroupIngress",
        &web,
        "22",
        ("IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0"),
    );
    assert_eq!(
        http_get(&agent, &public, 22).map(|_| ()),
        Err(ErrorKind::ConnectionRefused)
    );

    authorize(
        &agent,
        "RevokeSecurityGroupIngress",
        &web,
        "80",
        ("IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0"),
    );
    assert_eq!(
        http_get(&agent, &public, 80).map(|_| ()),
        Err(ErrorKind::TimedOut),
        "revoked"
    );

    // Group to group: members of `clients` may fetch from `web`; others may not.
    let clients = group(&agent, "clients");
    authorize(
        &agent,
        "AuthorizeSecurityGroupIngress",
        &web,
        "80",
        ("IpPermissions.1.Groups.1.GroupId", &clients),
    );
    let private = field(&agent, &id, "privateIpAddress");
    let fetch = b64(&format!("probe.fetch=http://{private}/"));
    let member = launch(
        &agent,
        &ami,
        &[("SecurityGroupId.1", &clients), ("UserData", &fetch)],
    );
    let stranger = launch(&agent, &ami, &[("UserData", &fetch)]);
    let console = agent.console_with(&member, "probe: fetch ", BOOT);
    assert!(
        console.contains(&format!("probe: fetch 200 {id}")),
        "{console}"
    );
    let console = agent.console_with(&stranger, "probe: fetch ", BOOT);
    assert!(!console.contains("probe: fetch 200"), "{console}");
}

#[test]
fn public_addresses_follow_ec2_across_stop_start_reboot_and_agent_restarts() {
    let mut agent = Agent::start(&["--stop-timeout", "3"]);
    let ami = agent.register_probe();
    let id = launch(&agent, &ami, &[]);
    agent.console_with(&id, "probe: imds done", BOOT);
    let private = field(&agent, &id, "privateIpAddress");
    let public = field(&agent, &id, "ipAddress");
    assert!(!public.is_empty());

    agent.call("RebootInstances", &[("InstanceId.1", &id)]);
    assert!(eventually(BOOT, || agent
        .console(&id)
        .matches("probe: imds done")
        .count()
        == 2));
    assert_eq!(
        field(&agent, &id, "ipAddress"),
        public,
        "reboot keeps the public address"
    );
    assert_eq!(field(&agent, &id, "privateIpAddress"), private);

    agent.call("StopInstances", &[("InstanceId.1", &id)]);
    agent.wait_state(&id, "stopped", BOOT);
    assert_eq!(
        field(&agent, &id, "ipAddress"),
        "",
        "a stopped instance has no public address"
    );
    agent.call("StartInstances", &[("InstanceId.1", &id)]);
    agent.wait_state(&id, "running", BOOT);
    let after = field(&agent, &id, "ipAddress");
    assert!(
        !after.is_empty() && after != public,
        "stop/start gives a new public address"
    );
    assert_eq!(
        field(&agent, &id, "privateIpAddress"),
        private,
        "and keeps the private one"
    );

    // An Elastic IP stays across stop/start.
    let xml = agent.call("AllocateAddress", &[("Domain", "vpc")]);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let eip = child_text(doc.root_element(), "publicIp");
    let alloc = child_text(doc.root_element(), "allocationId");
    agent.call(
        "AssociateAddress",
        &[("AllocationId", &alloc), ("InstanceId", &id)],
    );
    assert_eq!(field(&agent, &id, "ipAddress"), eip);
    agent.call("StopInstances", &[("InstanceId.1", &id)]);
    agent.wait_state(&id, "stopped", BOOT);
    agent.call("StartInstances", &[("InstanceId.1", &id)]);
    agent.wait_state(&id, "running", BOOT);
    assert_eq!(field(&agent, &id, "ipAddress"), eip, "the Elastic IP stays");

    // Open port 80 in the default group, then restart the agent with its rules wiped (as
    // after a host reboot): it rebuilds them and the page is served again.
    let default = {
        let xml = agent.call("DescribeSecurityGroups", &[("GroupName.1", "default")]);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        doc.descendants()
            .find(|n| n.has_tag_name("groupId"))
            .and_then(|n| n.text())
            .unwrap()
            .to_owned()
    };
    authorize(
        &agent,
        "AuthorizeSecurityGroupIngress",
        &default,
        "80",
        ("IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0"),
    );
    assert!(eventually(BOOT, || http_get(&agent, &eip, 80)
        .is_ok_and(|p| p.contains(&id))));
    agent.kill9();
    for table in ["filter", "nat"] {
        agent.ns.exec(&["iptables", "-t", table, "-F"]);
    }
    assert!(
        http_get(&agent, &eip, 80).is_err(),
        "no rules, no public address"
    );
    agent.restart();
    let page = http_get(&agent, &eip, 80).expect("rules rebuilt at start");
    assert!(page.contains(&id), "{page}");
    // The lease is served again: a reboot gets the same private address through DHCP.
    agent.call("RebootInstances", &[("InstanceId.1", &id)]);
    assert!(eventually(BOOT, || agent
        .console(&id)
        .matches(&format!("probe: net dhcp {private}/20"))
        .count()
        == 5));
}
