//! The host firewall for instances, rendered from one [`FirewallPlan`] and applied as a whole
//! at start and after security-group changes, or one ENI at a time ([`incremental`]) when an
//! instance starts or ends:
//! security groups and anti-spoofing in the filter table, the metadata service's redirects
//! and public addresses in the nat table, group members in ipsets, and MAC/ARP pinning in
//! ebtables. Every chain and set the
//! agent owns is named `KEC2-...`, so it never touches rules it does not own; each table is
//! replaced atomically with `iptables-restore --noflush`.

pub mod bridge;
pub mod filter;
pub mod incremental;
pub mod ipset;
pub mod nat;

use std::collections::HashSet;
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::Stdio;

use super::cidr::Cidr;
use crate::netns::NetNs;

/// Prefix of every chain and ipset the agent owns.
pub const CHAIN_PREFIX: &str = "KEC2-";
/// Interface-name pattern of every VPC bridge (`kec2v<n>`), in iptables syntax.
pub const BRIDGE_PATTERN: &str = "kec2v+";
pub use crate::imds::IMDS_IP;

/// A rule's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Every protocol (`-1`).
    All,
    /// TCP, with a port range.
    Tcp,
    /// UDP, with a port range.
    Udp,
    /// ICMP, all types or one type.
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
    /// First and last port (TCP/UDP), or ICMP type and code (`-1` meaning all).
    pub ports: Option<(u16, u16)>,
    /// The other side.
    pub peer: Peer,
}

/// What the firewall needs to know about one ENI whose tap is up.
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
    /// The local port its metadata requests are redirected to (`None`: endpoint disabled).
    pub imds_port: Option<u16>,
    /// Its public address (ephemeral or Elastic), mapped to `ip` by DNAT/SNAT.
    pub public_ip: Option<Ipv4Addr>,
}

/// Everything the agent's rules are made from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirewallPlan {
    /// Each VPC's bridge and block: traffic stays inside its VPC.
    pub vpcs: Vec<(String, Cidr)>,
    /// The ENIs with a tap.
    pub enis: Vec<EniFirewall>,
    /// Security groups used as peers: set name and member addresses.
    pub group_sets: Vec<(String, Vec<Ipv4Addr>)>,
    /// Masquerade instances' other outbound traffic out of this interface (the default route).
    pub masquerade_via: Option<String>,
}

/// Why rules could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// A tool could not be run.
    #[error("cannot run {0}")]
    Spawn(&'static str, #[source] std::io::Error),
    /// A tool refused the rules.
    #[error("{command} failed: {stderr}")]
    Rejected {
        /// The command.
        command: String,
        /// What it said.
        stderr: String,
    },
}

/// Runs `command args` in `ns`, feeding it `stdin`, and returns its output.
pub(crate) fn run(
    ns: &NetNs,
    command: &'static str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, FirewallError> {
    let mut child = ns
        .command(command)
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

/// The chains of a rendered table (`:NAME - [0:0]` lines).
fn declared_chains(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.strip_prefix(':'))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Replaces the agent's rules and sets with `plan`, in the current network namespace: fills
/// the sets, swaps every chain's contents atomically per table, hooks the agent chains into
/// the built-in ones once, then removes the chains and sets nothing refers to any more.
pub fn apply(ns: &NetNs, plan: &FirewallPlan) -> Result<(), FirewallError> {
    ipset::apply(ns, &plan.group_sets)?;
    let tables = [
        ("filter", filter::render(plan), filter::HOOKS),
        ("nat", nat::render(plan), nat::HOOKS),
    ];
    let mut all = String::new();
    for (_, rules, _) in &tables {
        all.push_str(rules);
    }
    let before: Vec<String> = tables
        .iter()
        .map(|(table, _, _)| run(ns, "iptables", &["-t", table, "-S"], None))
        .collect::<Result<_, _>>()?;
    run(ns, "iptables-restore", &["--noflush"], Some(&all))?;
    let mut stale = String::new();
    for ((table, rules, hooks), before) in tables.iter().zip(&before) {
        for (hook, chain) in hooks.iter() {
            let hooked = format!("-A {hook} -j {chain}");
            if !before.lines().any(|l| l == hooked) {
                run(
                    ns,
                    "iptables",
                    &["-t", table, "-I", hook, "1", "-j", chain],
                    None,
                )?;
            }
        }
        let wanted: HashSet<String> = declared_chains(rules).into_iter().collect();
        let mut gone = String::new();
        for line in before.lines() {
            if let Some(chain) = line.strip_prefix("-N ")
                && chain.starts_with(CHAIN_PREFIX)
                && !wanted.contains(chain)
            {
                gone.push_str(&format!("-F {chain}\n-X {chain}\n"));
            }
        }
        if !gone.is_empty() {
            stale.push_str(&format!("*{table}\n{gone}COMMIT\n"));
        }
    }
    if !stale.is_empty() {
        run(ns, "iptables-restore", &["--noflush"], Some(&stale))?;
    }
    bridge::apply(ns, plan)?;
    ipset::remove_stale(ns, &plan.group_sets)
}
