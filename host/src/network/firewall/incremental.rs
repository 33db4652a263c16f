//! One ENI's rules added or removed in place, without rebuilding anyone else's: its own
//! chains (filter: anti-spoofing, egress, ingress; ebtables: MAC/ARP pinning) made or removed,
//! its jump rules added to or deleted from the shared dispatch chains, its nat rules (metadata
//! redirect, public address) added or deleted, and group members added to or deleted from
//! their ipsets. The work is proportional to the ENIs changed, not to the ENIs there are.
//! Each table's change is one atomic `*-restore --noflush`; a change that fails (the rules
//! are not what this agent thinks) is repaired by a full [`super::apply`].

use std::collections::HashSet;
use std::net::Ipv4Addr;

use super::Cidr;
use super::{EniFirewall, FirewallError, bridge, filter, nat, run};
use crate::netns::NetNs;

/// What changes, one ENI at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// ENIs whose rules go, exactly as they were applied.
    pub removed: Vec<EniFirewall>,
    /// ENIs whose rules come (a changed ENI is in both lists, with the same tap).
    pub added: Vec<EniFirewall>,
    /// Addresses to add to sets (set name, address).
    pub set_adds: Vec<(String, Ipv4Addr)>,
    /// Addresses to delete from sets.
    pub set_dels: Vec<(String, Ipv4Addr)>,
}

impl Changes {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty()
            && self.added.is_empty()
            && self.set_adds.is_empty()
            && self.set_dels.is_empty()
    }

    /// Taps removed and not added back: their own chains go.
    fn gone_taps(&self) -> Vec<&str> {
        let added: HashSet<&str> = self.added.iter().map(|e| e.tap.as_str()).collect();
        self.removed
            .iter()
            .map(|e| e.tap.as_str())
            .filter(|t| !added.contains(t))
            .collect()
    }
}

/// The `iptables-restore --noflush` input for the filter and nat tables; `vpcs` are the VPC
/// blocks the applied rules were rendered with.
pub fn render_iptables(changes: &Changes, vpcs: &[(String, Cidr)]) -> String {
    let gone = changes.gone_taps();
    let mut out = String::from("*filter\n");
    let added_chains: Vec<(String, Vec<String>)> =
        changes.added.iter().flat_map(filter::eni_chains).collect();
    // Declaring a chain makes it, or empties it if it exists.
    for (chain, _) in &added_chains {
        out.push_str(&format!(":{chain} - [0:0]\n"));
    }
    for (chain, rule) in changes.removed.iter().flat_map(filter::eni_jumps) {
        out.push_str(&format!("-D {chain} {rule}\n"));
    }
    for eni in changes
        .removed
        .iter()
        .filter(|e| gone.contains(&e.tap.as_str()))
    {
        for (chain, _) in filter::eni_chains(eni) {
            out.push_str(&format!("-F {chain}\n-X {chain}\n"));
        }
    }
    for (chain, rules) in &added_chains {
        for rule in rules {
            out.push_str(&format!("-A {chain} {rule}\n"));
        }
    }
    for (chain, rule) in changes.added.iter().flat_map(filter::eni_jumps) {
        out.push_str(&format!("-A {chain} {rule}\n"));
    }
    out.push_str("COMMIT\n*nat\n");
    for eni in &changes.removed {
        for (chain, rule) in nat::eni_rules(eni, vpcs) {
            out.push_str(&format!("-D {chain} {rule}\n"));
        }
    }
    for eni in &changes.added {
        for (chain, rule) in nat::eni_rules(eni, vpcs) {
            out.push_str(&format!("-A {chain} {rule}\n"));
        }
    }
    out.push_str("COMMIT\n");
    out
}

/// The `ebtables-restore --noflush` input.
pub fn render_ebtables(changes: &Changes) -> String {
    let gone = changes.gone_taps();
    let chain = bridge::CHAIN;
    let mut out = String::from("*filter\n");
    let added: Vec<(String, Vec<String>)> = changes.added.iter().map(bridge::eni_chain).collect();
    for (own, _) in &added {
        out.push_str(&format!(":{own} RETURN\n"));
    }
    for rule in changes.removed.iter().flat_map(bridge::eni_jumps) {
        out.push_str(&format!("-D {chain} {rule}\n"));
    }
    for tap in &gone {
        let own = bridge::tap_chain(tap);
        out.push_str(&format!("-F {own}\n-X {own}\n"));
    }
    for (own, rules) in &added {
        for rule in rules {
            out.push_str(&format!("-A {own} {rule}\n"));
        }
    }
    // Inserted at the top, before the rule that drops frames of taps without rules; the
    // jump first, then the way out of the chain for what the tap's chain let through.
    for eni in &changes.added {
        let [jump, out_of_chain] = bridge::eni_jumps(eni);
        out.push_str(&format!("-I {chain} 1 {out_of_chain}\n"));
        out.push_str(&format!("-I {chain} 1 {jump}\n"));
    }
    // The bridge's ARP steering for the addresses that went and came.
    out.push_str("COMMIT\n*nat\n");
    let arp = bridge::ARP_CHAIN;
    for eni in &changes.removed {
        out.push_str(&format!("-D {arp} {}\n", bridge::arp_steer(eni)));
    }
    for eni in &changes.added {
        out.push_str(&format!("-A {arp} {}\n", bridge::arp_steer(eni)));
    }
    out.push_str("COMMIT\n");
    out
}

/// The `ipset restore` input adding (`add`) or deleting (`del`) `members`.
pub fn render_members(verb: &str, members: &[(String, Ipv4Addr)]) -> String {
    members
        .iter()
        .map(|(set, ip)| format!("{verb} {set} {ip} -exist\n"))
        .collect()
}

/// Applies `changes` in namespace `ns`: new set members first (rules may match on them),
/// then the filter and nat tables, the bridge layer, and last the members that went.
pub fn apply(ns: &NetNs, changes: &Changes, vpcs: &[(String, Cidr)]) -> Result<(), FirewallError> {
    if !changes.set_adds.is_empty() {
        let input = render_members("add", &changes.set_adds);
        run(ns, "ipset", &["restore"], Some(&input))?;
    }
    if !changes.added.is_empty() || !changes.removed.is_empty() {
        let input = render_iptables(changes, vpcs);
        run(ns, "iptables-restore", &["--noflush"], Some(&input))?;
        run(
            ns,
            "ebtables-restore",
            &["--noflush"],
            Some(&render_ebtables(changes)),
        )?;
    }
    if !changes.set_dels.is_empty() {
        let input = render_members("del", &changes.set_dels);
        run(ns, "ipset", &["restore"], Some(&input))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::filter::tests::eni;
    use super::super::{FirewallPlan, Peer, Protocol, Rule};
    use super::*;

    fn vpcs() -> Vec<(String, Cidr)> {
        vec![("kec2v1".into(), "172.31.0.0/16".parse().unwrap())]
    }

    fn public_eni() -> EniFirewall {
        let mut e = eni(vec![Rule {
            protocol: Protocol::Tcp,
            ports: Some((22, 22)),
            peer: Peer::GroupSet("KEC2-G-sg-1".into()),
        }]);
        e.public_ip = Some(Ipv4Addr::new(198, 51, 100, 7));
        e
    }

    /// The rule lines (`-A` or `-D`) of `text` that belong to one table, without the verb.
    fn lines_with(text: &str, verb: &str) -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(verb))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn an_added_eni_gets_the_rules_a_full_rebuild_gives_it() {
        let e = public_eni();
        let changes = Changes {
            added: vec![e.clone()],
            ..Changes::default()
        };
        let text = render_iptables(&changes, &vpcs());
        let full = |enis: Vec<EniFirewall>| {
            let plan = FirewallPlan {
                vpcs: vpcs(),
                enis,
                ..FirewallPlan::default()
            };
            let mut rules = lines_with(&filter::render(&plan), "-A ");
            rules.extend(lines_with(&nat::render(&plan), "-A "));
            rules
        };
        let shared: HashSet<String> = full(vec![]).into_iter().collect();
        // Every per-ENI rule of the full rebuild, and nothing else, is added.
        let mut expected: Vec<String> = full(vec![e])
            .into_iter()
            .filter(|l| !shared.contains(l))
            .collect();
        let mut added = lines_with(&text, "-A ");
        added.sort();
        expected.sort();
        assert_eq!(added, expected);
        assert!(text.starts_with(
            "*filter\n:KEC2-S-kec2t1 - [0:0]\n:KEC2-E-kec2t1 - [0:0]\n:KEC2-I-kec2t1 - [0:0]\n"
        ));
        assert!(text.contains(
            "-A KEC2-I-kec2t1 -p tcp --dport 22 -m set --match-set KEC2-G-sg-1 src -j ACCEPT\n"
        ));
        assert!(text.contains("-A KEC2-FWD-INGRESS -d 172.31.0.5/32 -j KEC2-I-kec2t1\n"));
        assert!(text.contains(
            "-A KEC2-NAT-SNAT -s 172.31.0.5/32 ! -o kec2v+ -j SNAT --to-source 198.51.100.7\n"
        ));
        assert!(!text.contains("-D "), "nothing removed: {text}");
    }

    #[test]
    fn a_removed_eni_loses_its_jumps_chains_and_nat_rules() {
        let e = public_eni();
        let changes = Changes {
            removed: vec![e.clone()],
            ..Changes::default()
        };
        let text = render_iptables(&changes, &vpcs());
        let deleted = lines_with(&text, "-D ");
        assert_eq!(deleted.len(), 6 + 5, "6 filter jumps, 5 nat rules: {text}");
        assert!(
            deleted.contains(&"KEC2-FWD-ACCEPT -m physdev --physdev-in kec2t1 -j ACCEPT".into())
        );
        assert!(deleted.contains(
            &"KEC2-PREROUTING -d 198.51.100.7/32 -j DNAT --to-destination 172.31.0.5".into()
        ));
        for chain in ["KEC2-S-kec2t1", "KEC2-E-kec2t1", "KEC2-I-kec2t1"] {
            assert!(
                text.contains(&format!("-F {chain}\n-X {chain}\n")),
                "{text}"
            );
        }
        assert!(!text.contains("-A "), "nothing added: {text}");
        let eb = render_ebtables(&changes);
        assert_eq!(
            eb,
            "*filter\n-D KEC2-L2 -i kec2t1 -j KEC2-L2-kec2t1\n-D KEC2-L2 -i kec2t1 -j RETURN\n\
             -F KEC2-L2-kec2t1\n-X KEC2-L2-kec2t1\nCOMMIT\n*nat\n-D KEC2-ARP -i ! kec2t1 \
             -p ARP --arp-op Request --arp-ip-dst 172.31.0.5 -j dnat \
             --to-destination 02:00:00:00:00:05 --dnat-target ACCEPT\nCOMMIT\n"
        );
    }

    #[test]
    fn a_changed_eni_keeps_its_chains_and_swaps_its_rules() {
        let old = eni(vec![]);
        let new = public_eni();
        let changes = Changes {
            removed: vec![old],
            added: vec![new],
            ..Changes::default()
        };
        let text = render_iptables(&changes, &vpcs());
        assert!(!text.contains("-X "), "same tap, chains kept: {text}");
        assert!(
            text.contains("-D KEC2-FWD-EGRESS -m physdev --physdev-in kec2t1 -j KEC2-S-kec2t1\n")
        );
        assert!(
            text.contains("-A KEC2-FWD-EGRESS -m physdev --physdev-in kec2t1 -j KEC2-S-kec2t1\n")
        );
        let eb = render_ebtables(&changes);
        assert!(eb.starts_with("*filter\n:KEC2-L2-kec2t1 RETURN\n"), "{eb}");
        assert!(!eb.contains("-X "), "{eb}");
        assert!(eb.contains(
            "-I KEC2-L2 1 -i kec2t1 -j RETURN\n-I KEC2-L2 1 -i kec2t1 -j KEC2-L2-kec2t1\nCOMMIT\n"
        ));
        let arp = eb.split("*nat\n").nth(1).unwrap_or_default();
        assert!(
            arp.starts_with("-D KEC2-ARP -i ! kec2t1 ")
                && arp.contains("\n-A KEC2-ARP -i ! kec2t1 "),
            "the old answer deleted, the new one added: {eb}"
        );
    }

    #[test]
    fn members_are_added_and_deleted_one_by_one() {
        let members = [("KEC2-G-sg-1".to_owned(), Ipv4Addr::new(172, 31, 0, 9))];
        assert_eq!(
            render_members("add", &members),
            "add KEC2-G-sg-1 172.31.0.9 -exist\n"
        );
        assert_eq!(
            render_members("del", &members),
            "del KEC2-G-sg-1 172.31.0.9 -exist\n"
        );
    }
}
