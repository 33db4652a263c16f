//! Keeping the firewall in step with the database: a full rebuild ([`Network::sync`]) at
//! start and after changes that may touch many ENIs (security-group rules, Elastic IPs,
//! metadata options), and per-ENI changes ([`Network::sync_enis`]) when an instance's ENIs are
//! plugged or unplugged, whose work does not grow with the number of instances. Both run under
//! one lock, which also holds what the firewall was last given; overlapping calls are
//! coalesced. A change that fails, or one that needs a set that is not there yet, falls back
//! to a full rebuild, as does an agent start after a crash half-way through a change.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;

use rusqlite::Connection;

use super::{Network, NetworkError, bridge_name};
use crate::netns::NetNs;
use crate::network::cidr::Cidr;
use crate::network::firewall::incremental::{self, Changes};
use crate::network::firewall::{self, EniFirewall, FirewallPlan, Peer, Protocol, Rule, ipset};
use crate::network::links;
use state::enis::{self, EniRow};
use state::security_groups::{self, GroupRow, RuleRow};
use state::vpcs;

/// What the firewall was last given (kept under the lock that serializes changes).
#[derive(Debug, Default)]
pub(super) struct Applied {
    /// A full rebuild has been applied since this agent started: the shared chains exist.
    base: bool,
    /// The VPC blocks the rules were rendered with.
    vpcs: Vec<(String, Cidr)>,
    /// Each plugged ENI's rules, by tap.
    enis: HashMap<String, EniFirewall>,
    /// The group sets that exist.
    sets: HashSet<String>,
}

/// Per-ENI changes waiting for the lock.
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// ENIs to bring in step with the database and the plugged ENIs: ENI id to tap.
    enis: HashMap<String, String>,
    /// Addresses whose membership of every group set is to be checked against the database.
    members: HashSet<Ipv4Addr>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.enis.is_empty() && self.members.is_empty()
    }

    /// Has the sets' membership of `ip` checked at the next change.
    pub(super) fn recheck(&mut self, ip: Ipv4Addr) {
        self.members.insert(ip);
    }
}

/// Runs `f` on the blocking pool (the firewall tools are processes waited for).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, firewall::FirewallError> + Send + 'static,
) -> Result<T, NetworkError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| NetworkError::Serve {
            what: "firewall",
            tap: String::new(),
            source: std::io::Error::other(e),
        })?
        .map_err(NetworkError::from)
}

impl Network {
    /// Rebuilds every rule from the database. Calls that overlap are coalesced: a call
    /// returns once a rebuild that started after it was made has been applied.
    pub async fn sync(&self) -> Result<(), NetworkError> {
        let mine = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut applied = self.sync_lock.lock().await;
        if self.applied.load(Ordering::SeqCst) >= mine {
            return Ok(());
        }
        self.rebuild(&mut applied).await
    }

    /// The full rebuild, under the lock.
    async fn rebuild(&self, applied: &mut Applied) -> Result<(), NetworkError> {
        let generation = self.requested.load(Ordering::SeqCst);
        // Taken before the state is read: every change queued so far is already in the
        // database and the plugged ENIs, so the rebuild covers it.
        drop(std::mem::take(&mut *lock(&self.pending)));
        let ports = self.ports(None).await;
        let plan = self.plan(&ports)?;
        applied.base = false;
        let ns = self.config.netns.clone();
        let given = plan.clone();
        blocking(move || firewall::apply(&ns, &given)).await?;
        *applied = Applied {
            base: true,
            vpcs: plan.vpcs,
            enis: plan.enis.into_iter().map(|e| (e.tap.clone(), e)).collect(),
            sets: plan.group_sets.into_iter().map(|(name, _)| name).collect(),
        };
        self.applied.store(generation, Ordering::SeqCst);
        Ok(())
    }

    /// Brings the rules of ENIs `enis` (id and tap) in step with the database and the
    /// plugged ENIs, and the group sets' membership of their addresses and of `addresses`,
    /// touching nothing else. Returns once the change (or a rebuild covering it) is applied.
    pub(super) async fn sync_enis(
        &self,
        enis: Vec<(String, String)>,
        addresses: Vec<Ipv4Addr>,
    ) -> Result<(), NetworkError> {
        {
            let mut pending = lock(&self.pending);
            pending.enis.extend(enis);
            pending.members.extend(addresses);
        }
        let mut applied = self.sync_lock.lock().await;
        let pending = std::mem::take(&mut *lock(&self.pending));
        if pending.is_empty() {
            return Ok(()); // applied by an earlier holder of the lock
        }
        if !applied.base {
            return self.rebuild(&mut applied).await;
        }
        let ids: Vec<&String> = pending.enis.keys().collect();
        let ports = self.ports(Some(&ids)).await;
        let Some(changes) = self.changes(&applied, &pending, &ports)? else {
            return self.rebuild(&mut applied).await;
        };
        if changes.is_empty() {
            return Ok(());
        }
        let (ns, vpcs, given) = (
            self.config.netns.clone(),
            applied.vpcs.clone(),
            changes.clone(),
        );
        if let Err(e) = blocking(move || incremental::apply(&ns, &given, &vpcs)).await {
            tracing::warn!(
                error = %crate::error_chain(&e),
                "a per-interface firewall change failed: rebuilding every rule"
            );
            return self.rebuild(&mut applied).await;
        }
        for eni in changes.removed {
            applied.enis.remove(&eni.tap);
        }
        for eni in changes.added {
            applied.enis.insert(eni.tap.clone(), eni);
        }
        Ok(())
    }

    /// The metadata port of each plugged ENI (of those in `only`, if given), by ENI id.
    async fn ports(&self, only: Option<&[&String]>) -> HashMap<String, u16> {
        let plugged = self.plugged.lock().await;
        match only {
            Some(ids) => ids
                .iter()
                .filter_map(|id| plugged.get(*id).map(|p| ((*id).clone(), p.imds_port)))
                .collect(),
            None => plugged
                .iter()
                .map(|(eni, p)| (eni.clone(), p.imds_port))
                .collect(),
        }
    }

    /// What `pending` changes against `applied`; `None` if it needs a set that does not
    /// exist yet (a full rebuild makes it with its members).
    fn changes(
        &self,
        applied: &Applied,
        pending: &Pending,
        ports: &HashMap<String, u16>,
    ) -> Result<Option<Changes>, NetworkError> {
        let conn = self.db.lock();
        let mut changes = Changes::default();
        let mut addresses = pending.members.clone();
        for (eni_id, tap) in &pending.enis {
            let wanted = match ports.get(eni_id) {
                Some(port) => match enis::get(&conn, eni_id)? {
                    Some(row) if row.instance_id.is_some() => {
                        let groups = security_groups::groups_of_eni(&conn, eni_id)?;
                        let rules = security_groups::rules_of_eni(&conn, eni_id)?;
                        let mut sets = BTreeMap::new();
                        let fw = eni_firewall(&conn, &row, *port, &groups, &rules, &mut sets)?;
                        if sets.keys().any(|s| !applied.sets.contains(s)) {
                            return Ok(None);
                        }
                        Some(fw)
                    }
                    _ => None,
                },
                None => None,
            };
            let current = applied.enis.get(tap);
            addresses.extend(
                current
                    .map(|e| e.ip)
                    .into_iter()
                    .chain(wanted.as_ref().map(|e| e.ip)),
            );
            if current == wanted.as_ref() {
                continue;
            }
            changes.removed.extend(current.cloned());
            changes.added.extend(wanted);
        }
        // Each address is in each set exactly when the database says so (`-exist` makes
        // adding a member or deleting a non-member a no-op).
        for ip in addresses {
            for set in &applied.sets {
                let group = &set[ipset::set_name("").len()..];
                let list = if enis::group_has_member(&conn, group, &ip.to_string())? {
                    &mut changes.set_adds
                } else {
                    &mut changes.set_dels
                };
                list.push((set.clone(), ip));
            }
        }
        Ok(Some(changes))
    }

    /// The firewall plan for the plugged ENIs `ports` (ENI id to metadata port).
    fn plan(&self, ports: &HashMap<String, u16>) -> Result<FirewallPlan, NetworkError> {
        let conn = self.db.lock();
        let mut plan = FirewallPlan::default();
        for vpc in vpcs::vpcs(&conn)? {
            if let Ok(cidr) = vpc.cidr.parse() {
                plan.vpcs.push((bridge_name(vpc.seq), cidr));
            }
        }
        let all_rules = security_groups::rules(&conn)?;
        let all_enis = enis::all(&conn)?;
        let mut groups_by_eni = security_groups::groups_by_eni(&conn)?;
        let mut sets: BTreeMap<String, Vec<Ipv4Addr>> = BTreeMap::new();
        for eni in all_enis.iter().filter(|e| ports.contains_key(&e.id)) {
            if eni.instance_id.is_none() {
                continue;
            }
            let groups = groups_by_eni.remove(&eni.id).unwrap_or_default();
            let rules: Vec<RuleRow> = all_rules
                .iter()
                .filter(|r| groups.iter().any(|g| g.id == r.group_id))
                .cloned()
                .collect();
            let port = ports.get(&eni.id).copied().unwrap_or_default();
            plan.enis
                .push(eni_firewall(&conn, eni, port, &groups, &rules, &mut sets)?);
        }
        for (set, members) in sets.iter_mut() {
            let group_id = &set[ipset::set_name("").len()..];
            members.extend(group_members(&conn, group_id, &all_enis)?);
        }
        plan.group_sets = sets.into_iter().collect();
        if self.config.outbound_nat {
            plan.masquerade_via = default_route(&self.config.netns);
        }
        Ok(plan)
    }
}

fn default_route(ns: &NetNs) -> Option<String> {
    links::default_route_device(ns).filter(|d| !d.starts_with("kec2"))
}

pub(super) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Plugged ENI `eni`'s rules (its groups' `rules`, in `groups`' order), with metadata port
/// `port`; the group sets its rules name are added to `sets`.
fn eni_firewall(
    conn: &Connection,
    eni: &EniRow,
    port: u16,
    groups: &[GroupRow],
    rules: &[RuleRow],
    sets: &mut BTreeMap<String, Vec<Ipv4Addr>>,
) -> rusqlite::Result<EniFirewall> {
    let mut ingress = Vec::new();
    let mut egress = Vec::new();
    // In the order the rules are stored (as one read of every rule gives them).
    for rule in rules
        .iter()
        .filter(|r| groups.iter().any(|g| g.id == r.group_id))
    {
        let Some(converted) = convert(rule) else {
            continue;
        };
        if let Some(peer) = &rule.peer_group_id {
            sets.entry(ipset::set_name(peer)).or_default();
        }
        if rule.egress {
            egress.push(converted);
        } else {
            ingress.push(converted);
        }
    }
    let instance = eni.instance_id.as_deref().unwrap_or_default();
    let options = enis::metadata_options(conn, instance)?;
    let public = enis::address_of_eni(conn, &eni.id)?
        .map(|a| a.public_ip)
        .or_else(|| eni.public_ip.clone());
    Ok(EniFirewall {
        tap: eni.tap(),
        ip: eni.private_ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
        mac: eni.mac.clone(),
        ingress,
        egress,
        imds_port: (options.http_endpoint == "enabled").then_some(port),
        public_ip: public.and_then(|p| p.parse().ok()),
    })
}

/// The members of `group_id`'s set: the private addresses of its ENIs attached to an
/// instance or serving a load balancer.
fn group_members(
    conn: &Connection,
    group_id: &str,
    all_enis: &[EniRow],
) -> rusqlite::Result<Vec<Ipv4Addr>> {
    let ids: HashSet<String> = enis::enis_in_group(conn, group_id)?.into_iter().collect();
    let balancers = state::elbv2::interface_enis(conn)?;
    Ok(all_enis
        .iter()
        .filter(|e| ids.contains(&e.id) && (e.instance_id.is_some() || balancers.contains(&e.id)))
        .filter_map(|e| e.private_ip.parse().ok())
        .collect())
}

/// A stored rule as a firewall rule (`None` for one that cannot be expressed).
pub fn convert(rule: &RuleRow) -> Option<Rule> {
    let peer = match (&rule.cidr, &rule.peer_group_id) {
        (Some(cidr), _) => {
            let c: Cidr = cidr.parse().ok()?;
            Peer::Cidr(c.network, c.prefix)
        }
        (None, Some(group)) => Peer::GroupSet(ipset::set_name(group)),
        (None, None) => return None,
    };
    let port = |p: Option<i32>| p.filter(|p| *p >= 0).map(|p| p as u16);
    let (protocol, ports) = match rule.protocol.as_str() {
        "-1" => (Protocol::All, None),
        "tcp" | "udp" => {
            let protocol = if rule.protocol == "tcp" {
                Protocol::Tcp
            } else {
                Protocol::Udp
            };
            match (port(rule.from_port), port(rule.to_port)) {
                (Some(from), Some(to)) => (protocol, Some((from, to))),
                _ => (protocol, None),
            }
        }
        "icmp" => (
            Protocol::Icmp,
            Some((
                port(rule.from_port).unwrap_or(u16::MAX),
                port(rule.to_port).unwrap_or(u16::MAX),
            )),
        ),
        _ => return None,
    };
    Some(Rule {
        protocol,
        ports,
        peer,
    })
}
