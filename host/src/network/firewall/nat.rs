//! The nat table: each ENI's metadata requests redirected to its own local port (so the
//! instance is known by the tap a request came in on), public addresses mapped to private
//! ones both ways, hairpin traffic inside a VPC, and optional masquerade for everything else.

use super::{BRIDGE_PATTERN, Cidr, EniFirewall, FirewallPlan, IMDS_IP};

/// Incoming traffic: metadata and public addresses.
pub const PREROUTING_CHAIN: &str = "KEC2-PREROUTING";
/// Traffic from the host itself to public addresses.
pub const OUTPUT_CHAIN: &str = "KEC2-NAT-OUTPUT";
/// Outgoing traffic: public source addresses and masquerade.
pub const POSTROUTING_CHAIN: &str = "KEC2-POSTROUTING";
/// Built-in chain and the agent chain hooked into it.
pub const HOOKS: &[(&str, &str)] = &[
    ("PREROUTING", PREROUTING_CHAIN),
    ("OUTPUT", OUTPUT_CHAIN),
    ("POSTROUTING", POSTROUTING_CHAIN),
];

/// Per ENI with a public address: hairpin traffic from inside a VPC to it.
pub const HAIRPIN_CHAIN: &str = "KEC2-NAT-HAIRPIN";
/// Per ENI with a public address: its traffic out of the VPCs leaves from that address.
pub const SNAT_CHAIN: &str = "KEC2-NAT-SNAT";

/// `eni`'s rules, each in the shared chain it goes in. Each matches only its tap or its
/// addresses, so they are added and removed one by one without touching any other ENI's;
/// `vpcs` are the VPC blocks (hairpin traffic may come from any of them).
pub fn eni_rules(eni: &EniFirewall, vpcs: &[(String, Cidr)]) -> Vec<(&'static str, String)> {
    let mut rules = Vec::new();
    if let Some(port) = eni.imds_port {
        rules.push((
            PREROUTING_CHAIN,
            format!(
                "-d {IMDS_IP}/32 -p tcp --dport 80 -m physdev --physdev-in {} \
                 -j DNAT --to-destination {IMDS_IP}:{port}",
                eni.tap
            ),
        ));
    }
    let Some(public) = eni.public_ip else {
        return rules;
    };
    let private = eni.ip;
    rules.push((
        PREROUTING_CHAIN,
        format!("-d {public}/32 -j DNAT --to-destination {private}"),
    ));
    rules.push((
        OUTPUT_CHAIN,
        format!("-d {public}/32 -j DNAT --to-destination {private}"),
    ));
    // An instance reaching a public address that maps back into a VPC: the reply must
    // return through the host, so the source becomes the router.
    for (_, cidr) in vpcs {
        rules.push((
            HAIRPIN_CHAIN,
            format!(
                "-s {cidr} -d {private}/32 -m conntrack --ctstate DNAT --ctorigdst \
                 {public}/32 -j MASQUERADE"
            ),
        ));
    }
    rules.push((
        SNAT_CHAIN,
        format!("-s {private}/32 ! -o {BRIDGE_PATTERN} -j SNAT --to-source {public}"),
    ));
    rules
}

/// The `iptables-restore` input for the nat table.
pub fn render(plan: &FirewallPlan) -> String {
    let mut out = String::from("*nat\n");
    for chain in [
        PREROUTING_CHAIN,
        OUTPUT_CHAIN,
        POSTROUTING_CHAIN,
        HAIRPIN_CHAIN,
        SNAT_CHAIN,
    ] {
        out.push_str(&format!(":{chain} - [0:0]\n"));
    }
    let mut add = |chain: &str, rule: String| out.push_str(&format!("-A {chain} {rule}\n"));
    // Hairpin before SNAT before masquerade: the first that matches decides.
    add(POSTROUTING_CHAIN, format!("-j {HAIRPIN_CHAIN}"));
    add(POSTROUTING_CHAIN, format!("-j {SNAT_CHAIN}"));
    if let Some(via) = &plan.masquerade_via {
        for (_, cidr) in &plan.vpcs {
            add(
                POSTROUTING_CHAIN,
                format!("-s {cidr} -o {via} -j MASQUERADE"),
            );
        }
    }
    for eni in &plan.enis {
        for (chain, rule) in eni_rules(eni, &plan.vpcs) {
            add(chain, rule);
        }
    }
    out.push_str("COMMIT\n");
    out
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::super::filter::tests::eni;
    use super::*;

    #[test]
    fn metadata_and_public_addresses_are_mapped_per_eni() {
        let mut e = eni(vec![]);
        e.public_ip = Some(Ipv4Addr::new(198, 51, 100, 7));
        let plan = FirewallPlan {
            vpcs: vec![("kec2v1".into(), "172.31.0.0/16".parse().unwrap())],
            enis: vec![e],
            masquerade_via: Some("eth0".into()),
            ..FirewallPlan::default()
        };
        let text = render(&plan);
        assert!(text.contains(
            "-A KEC2-PREROUTING -d 169.254.169.254/32 -p tcp --dport 80 -m physdev \
             --physdev-in kec2t1 -j DNAT --to-destination 169.254.169.254:40000\n"
        ));
        assert!(text.contains(
            "-A KEC2-PREROUTING -d 198.51.100.7/32 -j DNAT --to-destination 172.31.0.5\n"
        ));
        assert!(text.contains(
            "-A KEC2-NAT-OUTPUT -d 198.51.100.7/32 -j DNAT --to-destination 172.31.0.5\n"
        ));
        assert!(text.contains(
            "-A KEC2-NAT-SNAT -s 172.31.0.5/32 ! -o kec2v+ -j SNAT --to-source 198.51.100.7\n"
        ));
        assert!(text.contains("-A KEC2-POSTROUTING -s 172.31.0.0/16 -o eth0 -j MASQUERADE\n"));
        let mut disabled = eni(vec![]);
        disabled.imds_port = None;
        let plan = FirewallPlan {
            enis: vec![disabled],
            ..FirewallPlan::default()
        };
        assert!(
            !render(&plan).contains("169.254.169.254"),
            "endpoint disabled"
        );
    }
}
