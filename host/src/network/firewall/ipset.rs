//! Security groups used as rule peers become ipsets of their members' private addresses
//! (`KEC2-G-<group id>`), refilled atomically: a temporary set is filled, then swapped in.

use std::net::Ipv4Addr;

use super::{CHAIN_PREFIX, FirewallError, run};
use crate::netns::NetNs;

/// The set holding the members of `group_id`.
pub fn set_name(group_id: &str) -> String {
    format!("{CHAIN_PREFIX}G-{group_id}")
}

fn temp_name(name: &str) -> String {
    // Set names are at most 31 bytes: `KEC2-G-sg-` + 17 hex digits is 27.
    format!("{CHAIN_PREFIX}T-{}", &name[CHAIN_PREFIX.len() + 2..])
}

/// The `ipset restore` input that makes each set hold exactly its members.
pub fn render(sets: &[(String, Vec<Ipv4Addr>)]) -> String {
    let mut out = String::new();
    for (name, members) in sets {
        let temp = temp_name(name);
        out.push_str(&format!("create {name} hash:ip family inet -exist\n"));
        out.push_str(&format!("create {temp} hash:ip family inet -exist\n"));
        out.push_str(&format!("flush {temp}\n"));
        for ip in members {
            out.push_str(&format!("add {temp} {ip} -exist\n"));
        }
        out.push_str(&format!("swap {temp} {name}\n"));
        out.push_str(&format!("destroy {temp}\n"));
    }
    out
}

/// Creates and fills the sets.
pub fn apply(ns: &NetNs, sets: &[(String, Vec<Ipv4Addr>)]) -> Result<(), FirewallError> {
    if sets.is_empty() {
        return Ok(());
    }
    run(ns, "ipset", &["restore"], Some(&render(sets))).map(drop)
}

/// Destroys the agent's sets that are not in `sets` (call once no rule refers to them).
pub fn remove_stale(ns: &NetNs, sets: &[(String, Vec<Ipv4Addr>)]) -> Result<(), FirewallError> {
    let listed = match run(ns, "ipset", &["list", "-n"], None) {
        Ok(listed) => listed,
        // No ipset tool and no sets wanted: nothing to clean.
        Err(FirewallError::Spawn(..)) if sets.is_empty() => return Ok(()),
        Err(e) => return Err(e),
    };
    for name in listed.lines().map(str::trim) {
        if name.starts_with(CHAIN_PREFIX) && !sets.iter().any(|(n, _)| n == name) {
            run(ns, "ipset", &["destroy", name], None)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_swapped_in_whole() {
        let name = set_name("sg-0123456789abcdef0");
        assert!(name.len() <= 31);
        let text = render(&[(name.clone(), vec![Ipv4Addr::new(172, 31, 0, 4)])]);
        assert_eq!(
            text,
            "create KEC2-G-sg-0123456789abcdef0 hash:ip family inet -exist\n\
             create KEC2-T-sg-0123456789abcdef0 hash:ip family inet -exist\n\
             flush KEC2-T-sg-0123456789abcdef0\n\
             add KEC2-T-sg-0123456789abcdef0 172.31.0.4 -exist\n\
             swap KEC2-T-sg-0123456789abcdef0 KEC2-G-sg-0123456789abcdef0\n\
             destroy KEC2-T-sg-0123456789abcdef0\n"
        );
    }
}
