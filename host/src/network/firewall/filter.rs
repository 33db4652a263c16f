//! The filter table: per ENI an anti-spoofing chain (source MAC and IP pinned to the ENI), an
//! egress chain and an ingress chain (default deny) built from its security groups, stateful
//! through conntrack; VPCs isolated from each other; and instances kept off the host except
//! for the router's ping, DHCP and the metadata service.

use super::{
    BRIDGE_PATTERN, CHAIN_PREFIX, EniFirewall, FirewallPlan, IMDS_IP, Peer, Protocol, Rule,
};

/// Instance traffic through the host.
pub const FORWARD_CHAIN: &str = "KEC2-FORWARD";
/// Traffic from the host itself to instances.
pub const OUTPUT_CHAIN: &str = "KEC2-OUTPUT";
/// Traffic from instances to the host.
pub const INPUT_CHAIN: &str = "KEC2-INPUT";
/// Bridge-to-bridge traffic: allowed only inside one VPC.
pub const VPC_CHAIN: &str = "KEC2-VPC";
/// Built-in chain and the agent chain hooked into it.
pub const HOOKS: &[(&str, &str)] = &[
    ("FORWARD", FORWARD_CHAIN),
    ("OUTPUT", OUTPUT_CHAIN),
    ("INPUT", INPUT_CHAIN),
];

fn spoof_chain(tap: &str) -> String {
    format!("{CHAIN_PREFIX}S-{tap}")
}

fn ingress_chain(tap: &str) -> String {
    format!("{CHAIN_PREFIX}I-{tap}")
}

fn egress_chain(tap: &str) -> String {
    format!("{CHAIN_PREFIX}E-{tap}")
}

/// The `iptables` match for one rule, `dir` being `-s` (ingress) or `-d` (egress).
pub fn rule_match(rule: &Rule, dir: &str) -> String {
    let mut m = match rule.protocol {
        Protocol::All => String::new(),
        Protocol::Tcp => "-p tcp".into(),
        Protocol::Udp => "-p udp".into(),
        Protocol::Icmp => "-p icmp".into(),
    };
    match (rule.protocol, rule.ports) {
        (Protocol::Tcp | Protocol::Udp, Some((from, to))) if from == to => {
            m.push_str(&format!(" --dport {from}"));
        }
        (Protocol::Tcp | Protocol::Udp, Some((from, to))) => {
            m.push_str(&format!(" --dport {from}:{to}"));
        }
        (Protocol::Icmp, Some((kind, code))) if kind != u16::MAX => {
            if code == u16::MAX {
                m.push_str(&format!(" --icmp-type {kind}"));
            } else {
                m.push_str(&format!(" --icmp-type {kind}/{code}"));
            }
        }
        _ => {}
    }
    let peer = match &rule.peer {
        Peer::Cidr(ip, prefix) => format!(" {dir} {ip}/{prefix}"),
        Peer::GroupSet(set) => {
            let flag = if dir == "-s" { "src" } else { "dst" };
            format!(" -m set --match-set {set} {flag}")
        }
    };
    m.push_str(&peer);
    m.trim().to_owned()
}

/// Per tap: its anti-spoofing and egress chains (an instance's packets, first).
pub const FWD_EGRESS_CHAIN: &str = "KEC2-FWD-EGRESS";
/// Per ENI, by destination address: its ingress chain (then, the receiver's rules).
pub const FWD_INGRESS_CHAIN: &str = "KEC2-FWD-INGRESS";
/// Per tap: what passed its egress rules and goes anywhere else leaves.
pub const FWD_ACCEPT_CHAIN: &str = "KEC2-FWD-ACCEPT";
/// Per tap: its anti-spoofing chain for traffic to the host.
pub const IN_SPOOF_CHAIN: &str = "KEC2-IN-SPOOF";
/// Per ENI, by destination address: its ingress chain for traffic from the host.
pub const OUT_INGRESS_CHAIN: &str = "KEC2-OUT-INGRESS";

/// The shared chains, hooked or dispatched to (their rules do not depend on any one ENI).
const SHARED_CHAINS: [&str; 9] = [
    FORWARD_CHAIN,
    OUTPUT_CHAIN,
    INPUT_CHAIN,
    VPC_CHAIN,
    FWD_EGRESS_CHAIN,
    FWD_INGRESS_CHAIN,
    FWD_ACCEPT_CHAIN,
    IN_SPOOF_CHAIN,
    OUT_INGRESS_CHAIN,
];

/// The chains only `eni` uses, each with its rules: anti-spoofing (source MAC and address
/// pinned), egress (allowed traffic returns, the rest is dropped) and ingress (allowed traffic
/// is accepted, the rest is dropped).
pub fn eni_chains(eni: &EniFirewall) -> Vec<(String, Vec<String>)> {
    let spoof = vec![
        format!("-m mac ! --mac-source {} -j DROP", eni.mac),
        format!("! -s {}/32 -j DROP", eni.ip),
    ];
    let mut egress: Vec<String> = eni
        .egress
        .iter()
        .map(|rule| format!("{} -j RETURN", rule_match(rule, "-d")))
        .collect();
    egress.push("-j DROP".into());
    let mut ingress: Vec<String> = eni
        .ingress
        .iter()
        .map(|rule| format!("{} -j ACCEPT", rule_match(rule, "-s")))
        .collect();
    ingress.push("-j DROP".into());
    vec![
        (spoof_chain(&eni.tap), spoof),
        (egress_chain(&eni.tap), egress),
        (ingress_chain(&eni.tap), ingress),
    ]
}

/// The rules that send `eni`'s traffic from the shared dispatch chains to its own chains:
/// each matches only its tap or its address, so they are added and removed one by one, in
/// any order, without touching any other ENI's.
pub fn eni_jumps(eni: &EniFirewall) -> Vec<(&'static str, String)> {
    let tap = &eni.tap;
    let (spoof, egress, ingress) = (spoof_chain(tap), egress_chain(tap), ingress_chain(tap));
    vec![
        (
            FWD_EGRESS_CHAIN,
            format!("-m physdev --physdev-in {tap} -j {spoof}"),
        ),
        (
            FWD_EGRESS_CHAIN,
            format!("-m physdev --physdev-in {tap} -j {egress}"),
        ),
        (FWD_INGRESS_CHAIN, format!("-d {}/32 -j {ingress}", eni.ip)),
        (
            FWD_ACCEPT_CHAIN,
            format!("-m physdev --physdev-in {tap} -j ACCEPT"),
        ),
        (
            IN_SPOOF_CHAIN,
            format!("-m physdev --physdev-in {tap} -j {spoof}"),
        ),
        (OUT_INGRESS_CHAIN, format!("-d {}/32 -j {ingress}", eni.ip)),
    ]
}

/// The shared chains' own rules (the dispatch chains start empty).
fn shared_rules(plan: &FirewallPlan) -> Vec<(&'static str, String)> {
    let (fwd, input, br) = (FORWARD_CHAIN, INPUT_CHAIN, BRIDGE_PATTERN);
    let established = "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT";
    let mut rules = vec![
        (fwd, established.to_owned()),
        (fwd, "-m conntrack --ctstate INVALID -j DROP".to_owned()),
        (OUTPUT_CHAIN, established.to_owned()),
        (OUTPUT_CHAIN, format!("-j {OUT_INGRESS_CHAIN}")),
        // No traffic between VPCs, except to a public address (DNAT).
        (
            fwd,
            format!("-i {br} -o {br} -m conntrack ! --ctstate DNAT -j {VPC_CHAIN}"),
        ),
    ];
    for (bridge, _) in &plan.vpcs {
        rules.push((VPC_CHAIN, format!("-i {bridge} -o {bridge} -j RETURN")));
    }
    rules.push((VPC_CHAIN, "-j DROP".into()));
    // A packet an instance sends must come from its own MAC and IP and pass its egress
    // rules; then, if it goes to an instance, that instance's ingress rules; allowed egress
    // to anywhere else leaves; nothing else enters or leaves a VPC bridge.
    for chain in [FWD_EGRESS_CHAIN, FWD_INGRESS_CHAIN, FWD_ACCEPT_CHAIN] {
        rules.push((fwd, format!("-j {chain}")));
    }
    rules.push((fwd, format!("-i {br} -j DROP")));
    rules.push((fwd, format!("-o {br} -j DROP")));
    // Instances reach the host only for ping to the router, DHCP (answered from a packet
    // socket on the tap, before this table) and the metadata service (redirected by DNAT).
    rules.push((input, format!("! -i {br} -j RETURN")));
    rules.push((input, established.to_owned()));
    rules.push((input, format!("-j {IN_SPOOF_CHAIN}")));
    rules.push((
        input,
        format!(
            "-d {IMDS_IP}/32 -p tcp -m conntrack --ctstate DNAT --ctorigdst {IMDS_IP}/32 --ctorigdstport 80 -j ACCEPT"
        ),
    ));
    rules.push((input, "-p icmp --icmp-type echo-request -j ACCEPT".into()));
    rules.push((input, "-j DROP".into()));
    rules
}

/// The `iptables-restore` input for the filter table.
pub fn render(plan: &FirewallPlan) -> String {
    let own: Vec<Vec<(String, Vec<String>)>> = plan.enis.iter().map(eni_chains).collect();
    let mut out = String::from("*filter\n");
    for chain in SHARED_CHAINS {
        out.push_str(&format!(":{chain} - [0:0]\n"));
    }
    for (chain, _) in own.iter().flatten() {
        out.push_str(&format!(":{chain} - [0:0]\n"));
    }
    for (chain, rule) in shared_rules(plan) {
        out.push_str(&format!("-A {chain} {rule}\n"));
    }
    for (chain, rule) in plan.enis.iter().flat_map(eni_jumps) {
        out.push_str(&format!("-A {chain} {rule}\n"));
    }
    for (chain, rules) in own.iter().flatten() {
        for rule in rules {
            out.push_str(&format!("-A {chain} {rule}\n"));
        }
    }
    out.push_str("COMMIT\n");
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    pub(crate) fn eni(ingress: Vec<Rule>) -> EniFirewall {
        EniFirewall {
            tap: "kec2t1".into(),
            ip: Ipv4Addr::new(172, 31, 0, 5),
            mac: "02:00:00:00:00:05".into(),
            ingress,
            egress: vec![Rule {
                protocol: Protocol::All,
                ports: None,
                peer: Peer::Cidr(Ipv4Addr::UNSPECIFIED, 0),
            }],
            imds_port: Some(40000),
            public_ip: None,
        }
    }

    #[test]
    fn rules_render_in_iptables_syntax() {
        let web = Rule {
            protocol: Protocol::Tcp,
            ports: Some((80, 80)),
            peer: Peer::Cidr(Ipv4Addr::new(10, 9, 0, 0), 24),
        };
        let group = Rule {
            protocol: Protocol::Udp,
            ports: Some((1000, 2000)),
            peer: Peer::GroupSet("KEC2-G-sg1".into()),
        };
        assert_eq!(rule_match(&web, "-s"), "-p tcp --dport 80 -s 10.9.0.0/24");
        assert_eq!(
            rule_match(&group, "-s"),
            "-p udp --dport 1000:2000 -m set --match-set KEC2-G-sg1 src"
        );
        let any_icmp = Rule {
            protocol: Protocol::Icmp,
            ports: Some((u16::MAX, u16::MAX)),
            peer: Peer::Cidr(Ipv4Addr::UNSPECIFIED, 0),
        };
        assert_eq!(rule_match(&any_icmp, "-s"), "-p icmp -s 0.0.0.0/0");
        let echo = Rule {
            ports: Some((8, u16::MAX)),
            ..any_icmp
        };
        assert_eq!(
            rule_match(&echo, "-d"),
            "-p icmp --icmp-type 8 -d 0.0.0.0/0"
        );
    }

    #[test]
    fn every_eni_gets_pinned_source_and_default_deny_ingress() {
        let plan = FirewallPlan {
            vpcs: vec![("kec2v1".into(), "172.31.0.0/16".parse().unwrap())],
            enis: vec![eni(vec![])],
            ..FirewallPlan::default()
        };
        let text = render(&plan);
        assert!(text.starts_with("*filter\n:KEC2-FORWARD - [0:0]\n"));
        assert!(
            text.contains("-A KEC2-S-kec2t1 -m mac ! --mac-source 02:00:00:00:00:05 -j DROP\n")
        );
        assert!(text.contains("-A KEC2-S-kec2t1 ! -s 172.31.0.5/32 -j DROP\n"));
        assert!(text.contains("-A KEC2-E-kec2t1 -d 0.0.0.0/0 -j RETURN\n"));
        assert!(text.contains("-A KEC2-FWD-INGRESS -d 172.31.0.5/32 -j KEC2-I-kec2t1\n"));
        assert!(text.contains("-A KEC2-OUT-INGRESS -d 172.31.0.5/32 -j KEC2-I-kec2t1\n"));
        assert!(
            text.contains("-A KEC2-IN-SPOOF -m physdev --physdev-in kec2t1 -j KEC2-S-kec2t1\n")
        );
        assert!(text.contains("-A KEC2-VPC -i kec2v1 -o kec2v1 -j RETURN\n-A KEC2-VPC -j DROP\n"));
        assert!(text.ends_with("-A KEC2-I-kec2t1 -j DROP\nCOMMIT\n"));
        let chains: Vec<&str> = text.lines().filter(|l| l.starts_with(':')).collect();
        assert!(
            chains.iter().all(|c| c[1..].starts_with(CHAIN_PREFIX)),
            "only our chains: {chains:?}"
        );
    }
}
