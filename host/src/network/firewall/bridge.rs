//! The bridge layer (ebtables): what iptables cannot see. A tap may only send frames from its
//! ENI's MAC, ARP only for its own MAC and address (or the all-zero address of an ARP probe),
//! and nothing but IPv4 and ARP, so no guest can poison a neighbour's ARP cache or reach
//! others over IPv6 around the security groups. A tap the rules do not know yet sends nothing.

use super::{EniFirewall, FirewallError, FirewallPlan, run};
use crate::netns::NetNs;

/// The agent's bridge-layer chain.
pub const CHAIN: &str = "KEC2-L2";
/// Built-in chains it is hooked into.
pub const HOOKS: &[&str] = &["FORWARD", "INPUT"];

/// The chain of tap `tap`'s pinning rules.
pub fn tap_chain(tap: &str) -> String {
    format!("{CHAIN}-{tap}")
}

/// `eni`'s own chain and its rules: frames only from its MAC, ARP only for its MAC and
/// address (or an ARP probe's all-zero one), and nothing but ARP and IPv4. What is allowed
/// returns; the rest is dropped.
pub fn eni_chain(eni: &EniFirewall) -> (String, Vec<String>) {
    let (mac, ip) = (&eni.mac, eni.ip);
    let rules = vec![
        format!("-s ! {mac} -j DROP"),
        format!("-p ARP --arp-mac-src ! {mac} -j DROP"),
        format!("-p ARP --arp-ip-src 0.0.0.0 -j RETURN"),
        format!("-p ARP --arp-ip-src ! {ip} -j DROP"),
        "-p ARP -j RETURN".to_owned(),
        "-p IPv4 -j RETURN".to_owned(),
        "-j DROP".to_owned(),
    ];
    (tap_chain(&eni.tap), rules)
}

/// The two rules of [`CHAIN`] for `eni`'s tap, in order: to its chain, then (for what its
/// chain let through) out of [`CHAIN`], past the rule that drops unknown taps' frames.
pub fn eni_jumps(eni: &EniFirewall) -> [String; 2] {
    let tap = &eni.tap;
    [
        format!("-i {tap} -j {}", tap_chain(tap)),
        format!("-i {tap} -j RETURN"),
    ]
}

/// The bridge layer's ARP steering (nat table, hooked into PREROUTING): since a tap's port
/// never floods (`links::pin_port`), a guest's ARP request for a neighbour is delivered to
/// that neighbour alone, its broadcast destination rewritten to the neighbour's MAC. The
/// neighbour answers as usual and learns the asker (a stale cache entry of an address that
/// moved to a new instance is corrected by the new one's first request), and no other guest
/// is woken. VPC blocks never overlap here, so an address names one ENI.
pub const ARP_CHAIN: &str = "KEC2-ARP";

/// The rule of [`ARP_CHAIN`] delivering ARP requests for `eni`'s address to its MAC alone,
/// except those of its own tap (a guest's duplicate-address probe reaches no one).
pub fn arp_steer(eni: &EniFirewall) -> String {
    format!(
        "-i ! {} -p ARP --arp-op Request --arp-ip-dst {} -j dnat --to-destination {} \
         --dnat-target ACCEPT",
        eni.tap, eni.ip, eni.mac
    )
}

/// The `ebtables-restore` input.
pub fn render(plan: &FirewallPlan) -> String {
    let mut out = format!("*filter\n:{CHAIN} RETURN\n");
    let own: Vec<(String, Vec<String>)> = plan.enis.iter().map(eni_chain).collect();
    for (chain, _) in &own {
        out.push_str(&format!(":{chain} RETURN\n"));
    }
    for rule in plan.enis.iter().flat_map(eni_jumps) {
        out.push_str(&format!("-A {CHAIN} {rule}\n"));
    }
    // A tap whose rules are not in yet (its VMM may already run) sends nothing.
    out.push_str(&format!("-A {CHAIN} -i kec2t+ -j DROP\n"));
    for (chain, rules) in &own {
        for rule in rules {
            out.push_str(&format!("-A {chain} {rule}\n"));
        }
    }
    out.push_str(&format!("COMMIT\n*nat\n:{ARP_CHAIN} RETURN\n"));
    for eni in &plan.enis {
        out.push_str(&format!("-A {ARP_CHAIN} {}\n", arp_steer(eni)));
    }
    out.push_str("COMMIT\n");
    out
}

/// The agent's per-tap chains in the `ebtables -L` listing `listed`.
pub fn listed_tap_chains(listed: &str) -> Vec<String> {
    let prefix = format!("{CHAIN}-");
    listed
        .lines()
        .filter_map(|l| l.strip_prefix("Bridge chain: "))
        .filter_map(|l| l.split(',').next())
        .filter(|c| c.starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}

/// Replaces the chain's rules, hooks it once, and removes the chains of taps no longer in
/// `plan`.
pub fn apply(ns: &NetNs, plan: &FirewallPlan) -> Result<(), FirewallError> {
    run(ns, "ebtables-restore", &["--noflush"], Some(&render(plan)))?;
    let listed = run(ns, "ebtables", &["-L"], None)?;
    for hook in HOOKS {
        let hooked = listed
            .split("Bridge chain: ")
            .find(|section| section.starts_with(&format!("{hook},")))
            .is_some_and(|section| section.lines().any(|l| l.trim() == format!("-j {CHAIN}")));
        if !hooked {
            run(ns, "ebtables", &["-A", hook, "-j", CHAIN], None)?;
        }
    }
    let prerouting = run(ns, "ebtables", &["-t", "nat", "-L", "PREROUTING"], None)?;
    if !prerouting
        .lines()
        .any(|l| l.trim() == format!("-j {ARP_CHAIN}"))
    {
        let hook = ["-t", "nat", "-A", "PREROUTING", "-j", ARP_CHAIN];
        run(ns, "ebtables", &hook, None)?;
    }
    let wanted: std::collections::HashSet<String> =
        plan.enis.iter().map(|e| tap_chain(&e.tap)).collect();
    let mut stale = String::new();
    for chain in listed_tap_chains(&listed) {
        if !wanted.contains(&chain) {
            stale.push_str(&format!("-F {chain}\n-X {chain}\n"));
        }
    }
    if !stale.is_empty() {
        let input = format!("*filter\n{stale}COMMIT\n");
        run(ns, "ebtables-restore", &["--noflush"], Some(&input))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::filter::tests::eni;
    use super::*;

    #[test]
    fn taps_send_only_their_own_mac_arp_and_ipv4() {
        let plan = FirewallPlan {
            enis: vec![eni(vec![])],
            ..FirewallPlan::default()
        };
        let text = render(&plan);
        assert!(text.starts_with("*filter\n:KEC2-L2 RETURN\n:KEC2-L2-kec2t1 RETURN\n"));
        assert!(text.contains(
            "-A KEC2-L2 -i kec2t1 -j KEC2-L2-kec2t1\n-A KEC2-L2 -i kec2t1 -j RETURN\n\
             -A KEC2-L2 -i kec2t+ -j DROP\n"
        ));
        assert!(text.contains("-A KEC2-L2-kec2t1 -s ! 02:00:00:00:00:05 -j DROP\n"));
        assert!(text.contains("-A KEC2-L2-kec2t1 -p ARP --arp-ip-src ! 172.31.0.5 -j DROP\n"));
        assert!(
            text.contains(
                "-A KEC2-L2-kec2t1 -p IPv4 -j RETURN\n-A KEC2-L2-kec2t1 -j DROP\nCOMMIT\n"
            ),
            "own chain: {text}"
        );
        assert!(
            text.ends_with(
                "*nat\n:KEC2-ARP RETURN\n-A KEC2-ARP -i ! kec2t1 -p ARP --arp-op Request \
                 --arp-ip-dst 172.31.0.5 -j dnat --to-destination 02:00:00:00:00:05 \
                 --dnat-target ACCEPT\nCOMMIT\n"
            ),
            "ARP for the ENI's address goes to it alone, but not from its own tap: {text}"
        );
    }
}
