//! Security groups as iptables rules: each ENI gets an ingress chain (default deny) and an
//! egress chain (source MAC and IP pinned to the ENI), stateful through conntrack. Every chain
//! the agent owns is named `KEC2-...`, so it never touches rules it does not own; the whole set
//! is replaced atomically with `iptables-restore --noflush`.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// The chain the agent hooks into FORWARD (instance traffic through the host).
pub const FORWARD_CHAIN: &str = "KEC2-FORWARD";
/// The chain the agent hooks into OUTPUT (traffic from the host itself to instances).
pub const OUTPUT_CHAIN: &str = "KEC2-OUTPUT";
/// Prefix of every chain the agent owns.
pub const CHAIN_PREFIX: &str = "KEC2-";

/// A rule's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Every protocol (`-1`).
    All,
    /// TCP, with a port range.
    Tcp,
    /// UDP, with a port range.
    Udp,
    /// ICMP (all types).
    Icmp,
}

/// Where traffic a rule allows comes from (ingress) or goes to (egress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// An IPv4 CIDR.
    Cidr(Ipv4Addr, u8),
    /// The members of a group, as an ipset of their addresses.
    GroupSet(String),
}

/// One permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Protocol.
    pub protocol: Protocol,
    /// First and last port (TCP/UDP only).
    pub ports: Option<(u16, u16)>,
    /// The other side.
    pub peer: Peer,
}

/// What the firewall needs to know about one ENI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EniFirewall {
    /// The ENI's tap device.
    pub tap: String,
    /// Its private address.
    pub ip: Ipv4Addr,
    /// Its MAC address.
    pub mac: String,
    /// The union of its groups' ingress rules.
    pub ingress: Vec<Rule>,
    /// The union of its groups' egress rules.
    pub egress: Vec<Rule>,
}

/// Why rules could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// iptables could not be run.
    #[error("cannot run {0}")]
    Spawn(&'static str, #[source] std::io::Error),
    /// iptables refused the rules.
    #[error("{command} failed: {stderr}")]
    Rejected {
        /// The command.
        command: String,
        /// What it said.
        stderr: String,
    },
}

fn ingress_chain(tap: &str) -> String {
    format!("{CHAIN_PREFIX}I-{tap}")
}

fn egress_chain(tap: &str) -> String {
    format!("{CHAIN_PREFIX}E-{tap}")
}

/// The `iptables` match for one rule, `dir` being `-s` (ingress) or `-d` (egress).
fn rule_match(rule: &Rule, dir: &str) -> String {
    let mut m = match rule.protocol {
        Protocol::All => String::new(),
        Protocol::Tcp => "-p tcp".into(),
        Protocol::Udp => "-p udp".into(),
        Protocol::Icmp => "-p icmp".into(),
    };
    if let (Protocol::Tcp | Protocol::Udp, Some((from, to))) = (rule.protocol, rule.ports) {
        if from == to {
            m.push_str(&format!(" --dport {from}"));
        } else {
            m.push_str(&format!(" --dport {from}:{to}"));
        }
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

/// The `iptables-restore` input that replaces every agent chain with the rules for `enis`.
pub fn render(enis: &[EniFirewall]) -> String {
    let mut chains = vec![FORWARD_CHAIN.to_owned(), OUTPUT_CHAIN.to_owned()];
    for eni in enis {
        chains.push(ingress_chain(&eni.tap));
        chains.push(egress_chain(&eni.tap));
    }
    let mut out = String::from("*filter\n");
    for chain in &chains {
        out.push_str(&format!(":{chain} - [0:0]\n"));
    }
    let fwd = FORWARD_CHAIN;
    out.push_str(&format!(
        "-A {fwd} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"
    ));
    out.push_str(&format!(
        "-A {fwd} -m conntrack --ctstate INVALID -j DROP\n"
    ));
    out.push_str(&format!(
        "-A {OUTPUT_CHAIN} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"
    ));
    // Egress first: a packet an instance sends must pass its own egress chain...
    for eni in enis {
        out.push_str(&format!(
            "-A {fwd} -m physdev --physdev-in {} -j {}\n",
            eni.tap,
            egress_chain(&eni.tap)
        ));
    }
    // ...then, if it goes to an instance, that instance's ingress chain.
    for eni in enis {
        let chain = ingress_chain(&eni.tap);
        out.push_str(&format!("-A {fwd} -d {}/32 -j {chain}\n", eni.ip));
        out.push_str(&format!("-A {OUTPUT_CHAIN} -d {}/32 -j {chain}\n", eni.ip));
    }
    // Allowed egress to anywhere else leaves.
    for eni in enis {
        out.push_str(&format!(
            "-A {fwd} -m physdev --physdev-in {} -j ACCEPT\n",
            eni.tap
        ));
    }
    for eni in enis {
        let egress = egress_chain(&eni.tap);
        out.push_str(&format!(
            "-A {egress} -m mac ! --mac-source {} -j DROP\n",
            eni.mac
        ));
        out.push_str(&format!("-A {egress} ! -s {}/32 -j DROP\n", eni.ip));
        for rule in &eni.egress {
            out.push_str(&format!(
                "-A {egress} {} -j RETURN\n",
                rule_match(rule, "-d")
            ));
        }
        out.push_str(&format!("-A {egress} -j DROP\n"));
        let ingress = ingress_chain(&eni.tap);
        for rule in &eni.ingress {
            out.push_str(&format!(
                "-A {ingress} {} -j ACCEPT\n",
                rule_match(rule, "-s")
            ));
        }
        out.push_str(&format!("-A {ingress} -j DROP\n"));
    }
    out.push_str("COMMIT\n");
    out
}

fn run(command: &'static str, args: &[&str], stdin: Option<&str>) -> Result<String, FirewallError> {
    let mut child = Command::new(command)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| FirewallError::Spawn(command, e))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| FirewallError::Spawn(command, e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| FirewallError::Spawn(command, e))?;
    if !out.status.success() {
        return Err(FirewallError::Rejected {
            command: format!("{command} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Replaces the agent's rules with those for `enis`, in the current network namespace: hooks
/// the agent chains into FORWARD and OUTPUT once, swaps every chain's contents atomically, and
/// removes the chains of ENIs that are gone. Rules the agent does not own are left alone.
pub fn apply(enis: &[EniFirewall]) -> Result<(), FirewallError> {
    let before = run("iptables", &["-S"], None)?;
    let rules = render(enis);
    run("iptables-restore", &["--noflush"], Some(&rules))?;
    for (hook, chain) in [("FORWARD", FORWARD_CHAIN), ("OUTPUT", OUTPUT_CHAIN)] {
        if run("iptables", &["-C", hook, "-j", chain], None).is_err() {
            run("iptables", &["-I", hook, "1", "-j", chain], None)?;
        }
    }
    let wanted: Vec<String> = rules
        .lines()
        .filter_map(|l| l.strip_prefix(':'))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    for line in before.lines() {
        if let Some(chain) = line.strip_prefix("-N ") {
            if chain.starts_with(CHAIN_PREFIX) && !wanted.iter().any(|w| w == chain) {
                run("iptables", &["-F", chain], None)?;
                run("iptables", &["-X", chain], None)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eni(ingress: Vec<Rule>) -> EniFirewall {
        EniFirewall {
            tap: "tap-a".into(),
            ip: Ipv4Addr::new(172, 31, 0, 5),
            mac: "02:00:00:00:00:05".into(),
            ingress,
            egress: vec![Rule {
                protocol: Protocol::All,
                ports: None,
                peer: Peer::Cidr(Ipv4Addr::UNSPECIFIED, 0),
            }],
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
        let icmp = Rule {
            protocol: Protocol::Icmp,
            ports: Some((8, 0)),
            peer: Peer::Cidr(Ipv4Addr::UNSPECIFIED, 0),
        };
        assert_eq!(rule_match(&icmp, "-s"), "-p icmp -s 0.0.0.0/0");
    }

    #[test]
    fn every_eni_gets_pinned_egress_and_default_deny_ingress() {
        let text = render(&[eni(vec![])]);
        assert!(text.starts_with("*filter\n:KEC2-FORWARD - [0:0]\n:KEC2-OUTPUT - [0:0]\n"));
        assert!(text.contains("-A KEC2-E-tap-a -m mac ! --mac-source 02:00:00:00:00:05 -j DROP\n"));
        assert!(text.contains("-A KEC2-E-tap-a ! -s 172.31.0.5/32 -j DROP\n"));
        assert!(text.contains("-A KEC2-E-tap-a -d 0.0.0.0/0 -j RETURN\n"));
        assert!(text.contains("-A KEC2-FORWARD -d 172.31.0.5/32 -j KEC2-I-tap-a\n"));
        assert!(text.contains("-A KEC2-OUTPUT -d 172.31.0.5/32 -j KEC2-I-tap-a\n"));
        assert!(text.ends_with("-A KEC2-I-tap-a -j DROP\nCOMMIT\n"));
        let chains: Vec<&str> = text.lines().filter(|l| l.starts_with(':')).collect();
        assert!(
            chains.iter().all(|c| c[1..].starts_with(CHAIN_PREFIX)),
            "only our chains: {chains:?}"
        );
    }
}
