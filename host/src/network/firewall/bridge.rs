//! The bridge layer (ebtables): what iptables cannot see. A tap may only send frames from its
//! ENI's MAC, ARP only for its own MAC and address (or the all-zero address of an ARP probe),
//! and nothing but IPv4 and ARP, so no guest can poison a neighbour's ARP cache or reach
//! others over IPv6 around the security groups. A tap the rules do not know yet sends nothing.

use super::{FirewallError, FirewallPlan, run};
use crate::netns::NetNs;

/// The agent's bridge-layer chain.
pub const CHAIN: &str = "KEC2-L2";
/// Built-in chains it is hooked into.
pub const HOOKS: &[&str] = &["FORWARD", "INPUT"];

/// The `ebtables-restore` input.
pub fn render(plan: &FirewallPlan) -> String {
    let mut out = format!("*filter\n:{CHAIN} RETURN\n");
    for eni in &plan.enis {
        let (tap, mac, ip) = (&eni.tap, &eni.mac, eni.ip);
        for rule in [
            format!("-i {tap} -s ! {mac} -j DROP"),
            format!("-i {tap} -p ARP --arp-mac-src ! {mac} -j DROP"),
            format!("-i {tap} -p ARP --arp-ip-src 0.0.0.0 -j RETURN"),
            format!("-i {tap} -p ARP --arp-ip-src ! {ip} -j DROP"),
            format!("-i {tap} -p ARP -j RETURN"),
            format!("-i {tap} -p IPv4 -j RETURN"),
            format!("-i {tap} -j DROP"),
        ] {
            out.push_str(&format!("-A {CHAIN} {rule}\n"));
        }
    }
    // A tap whose rules are not in yet (its VMM may already run) sends nothing.
    out.push_str(&format!("-A {CHAIN} -i kec2t+ -j DROP\n"));
    out.push_str("COMMIT\n");
    out
}

/// Replaces the chain's rules and hooks it once.
pub fn apply(ns: &NetNs, plan: &FirewallPlan) -> Result<(), FirewallError> {
    run(ns, "ebtables-restore", &["--noflush"], Some(&render(plan)))?;
    for hook in HOOKS {
        let listed = run(ns, "ebtables", &["-L", hook], None)?;
        if !listed.lines().any(|l| l.trim() == format!("-j {CHAIN}")) {
            run(ns, "ebtables", &["-A", hook, "-j", CHAIN], None)?;
        }
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
        assert!(text.starts_with("*filter\n:KEC2-L2 RETURN\n"));
        assert!(text.contains("-A KEC2-L2 -i kec2t1 -s ! 02:00:00:00:00:05 -j DROP\n"));
        assert!(text.contains("-A KEC2-L2 -i kec2t1 -p ARP --arp-ip-src ! 172.31.0.5 -j DROP\n"));
        assert!(text.contains("-A KEC2-L2 -i kec2t1 -j DROP\n"));
        assert!(
            text.ends_with("-A KEC2-L2 -i kec2t+ -j DROP\nCOMMIT\n"),
            "unknown taps: {text}"
        );
    }
}
