//! The network service: keeps bridges, taps, DHCP servers, metadata listeners and the
//! firewall in step with the database. Instances' ENIs are plugged (tap, DHCP, metadata port,
//! public address) before their VMM starts and unplugged when it is gone for good; every
//! change ends in one coalesced [`Network::sync`] that rebuilds all rules from the database,
//! which is also how an agent restart or a host reboot gets its rules back.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;

use super::addressing::{self, AddressError};
use super::cidr::Cidr;
use super::dhcp::packet::Lease;
use super::dhcp::{DhcpServer, TapLease, parse_mac};
use super::firewall::{self, EniFirewall, FirewallPlan, Peer, Protocol, Rule, ipset};
use super::links;
use crate::imds::server::Imds;
use crate::netns::NetNs;
use crate::tasks::{self, Backoff, Unit};
use state::Db;
use state::enis::{self, EniRow};
use state::security_groups::{self, RuleRow};
use state::vpcs;

mod reach;
pub use reach::ReachabilityError;

/// Settings of the network service.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Where public and Elastic IPs come from; its first address is the host's.
    pub public_pool: Cidr,
    /// Masquerade instances' outbound traffic on the host's default route.
    pub outbound_nat: bool,
    /// DNS servers handed out by DHCP.
    pub dns: Vec<Ipv4Addr>,
    /// The namespace instance networking lives in.
    pub netns: NetNs,
}

/// Errors of the network service.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A device could not be made.
    #[error("cannot set up network devices")]
    Link(#[from] links::LinkError),
    /// The firewall refused the rules.
    #[error("cannot apply the firewall rules")]
    Firewall(#[from] firewall::FirewallError),
    /// No address could be given.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// A DHCP server or metadata listener could not start.
    #[error("cannot serve {what} on {tap}")]
    Serve {
        /// `DHCP` or `metadata`.
        what: &'static str,
        /// The tap.
        tap: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

/// What runs for one plugged ENI.
#[derive(Debug)]
struct Plugged {
    instance_id: String,
    tap: String,
    imds_port: u16,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Plugged {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The network service.
#[derive(Debug)]
pub struct Network {
    db: Arc<Db>,
    /// Settings.
    pub config: NetworkConfig,
    imds: Arc<Imds>,
    plugged: tokio::sync::Mutex<HashMap<String, Plugged>>,
    sync_lock: tokio::sync::Mutex<()>,
    requested: AtomicU64,
    applied: AtomicU64,
    /// Each ENI's last ephemeral public address, so a stop/start gives a new one.
    last_public: std::sync::Mutex<HashMap<String, Ipv4Addr>>,
    /// VPC bridges' MACs, once read.
    bridge_macs: std::sync::Mutex<HashMap<String, [u8; 6]>>,
}

/// Runs `server` as instance `id`'s DHCP unit on `tap`: restarted on the same socket after a
/// panic, ended when the tap goes away or the task is aborted.
fn serve_dhcp(server: DhcpServer, id: &str, tap: &str) -> tokio::task::JoinHandle<()> {
    let server = Arc::new(server);
    let unit = Unit::new("dhcp server").instance(id).tap(tap);
    tasks::spawn_restarting(unit, Backoff::SERVER, move || {
        let server = server.clone();
        async move { server.serve().await }
    })
}

/// The bridge of the VPC with sequence number `seq`.
pub fn bridge_name(seq: i64) -> String {
    format!("kec2v{seq}")
}

impl Network {
    /// The service over `db`; nothing is touched until [`Network::start`].
    pub fn new(db: Arc<Db>, config: NetworkConfig, imds: Arc<Imds>) -> Arc<Self> {
        Arc::new(Network {
            db,
            config,
            imds,
            plugged: tokio::sync::Mutex::new(HashMap::new()),
            sync_lock: tokio::sync::Mutex::new(()),
            requested: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            last_public: std::sync::Mutex::new(HashMap::new()),
            bridge_macs: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// At agent start, before any VMM is started: the default VPC, routing, the public side
    /// and every VPC's bridge.
    pub fn prepare(&self) -> Result<(), NetworkError> {
        addressing::ensure_default_vpc(&self.db.lock())?;
        links::enable_routing(&self.config.netns)?;
        self.ensure_bridges()
    }

    /// At agent start, once instances are reconciled: plugs the ENIs of instances whose VMM
    /// outlived the previous agent, removes taps no instance needs, gives back the network of
    /// instances that ended meanwhile, and applies the rules.
    pub async fn resume(self: &Arc<Self>, live_instances: &[String]) -> Result<(), NetworkError> {
        for id in live_instances {
            if let Err(e) = self.plug(id).await {
                // A vmm that ends while the agent starts takes its tap with it; its exit is
                // recorded by its monitor, which gives the network back.
                if self.taps_present(id)? {
                    return Err(e);
                }
                tracing::warn!(%id, error = %e, "the instance's tap went away with its vmm: not plugged");
            }
        }
        let wanted: Vec<String> = enis::seqs_of_live_instances(&self.db.lock())?
            .into_iter()
            .map(|s| format!("kec2t{s}"))
            .collect();
        for link in links::owned(&self.config.netns) {
            if link.starts_with("kec2t") && !wanted.contains(&link) {
                links::remove(&self.config.netns, &link)?;
            }
        }
        // Instances that ended while the agent was down give their network back.
        let ended = enis::instances_to_unplug(&self.db.lock())?;
        for (id, terminated) in ended {
            self.unplug(&id, terminated).await?;
        }
        self.sync().await
    }

    /// Makes every VPC's bridge carry its subnets' router addresses; removes bridges of
    /// VPCs that are gone.
    pub fn ensure_bridges(&self) -> Result<(), NetworkError> {
        let (all_vpcs, subnets, balancers) = {
            let conn = self.db.lock();
            (
                vpcs::vpcs(&conn)?,
                vpcs::subnets(&conn)?,
                state::elbv2::host_addresses(&conn)?,
            )
        };
        links::ensure_public(
            &self.config.netns,
            &self.config.public_pool,
            &parsed(&balancers.public),
        )?;
        let mut wanted = Vec::new();
        for vpc in &all_vpcs {
            let name = bridge_name(vpc.seq);
            let mut addrs: Vec<(Ipv4Addr, u8)> = subnets
                .iter()
                .filter(|s| s.vpc_id == vpc.id)
                .filter_map(|s| s.cidr.parse::<Cidr>().ok())
                .map(|c| (c.router(), c.prefix))
                .collect();
            // Load balancers' interfaces: their addresses live on the host side of the bridge.
            let interfaces: Vec<String> = balancers
                .private
                .iter()
                .filter(|(v, _)| *v == vpc.id)
                .map(|(_, ip)| ip.clone())
                .collect();
            addrs.extend(parsed(&interfaces).into_iter().map(|(ip, _)| (ip, 32)));
            links::ensure_bridge(&self.config.netns, &name, &addrs)?;
            wanted.push(name);
        }
        for link in links::owned(&self.config.netns) {
            if link.starts_with("kec2v") && !wanted.contains(&link) {
                links::remove(&self.config.netns, &link)?;
            }
        }
        // A bridge made again has a new MAC.
        self.bridge_macs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(())
    }

    /// Whether every tap of instance `id` exists.
    fn taps_present(&self, id: &str) -> Result<bool, NetworkError> {
        let rows = enis::of_instance(&self.db.lock(), id)?;
        Ok(rows
            .iter()
            .all(|eni| links::exists(&self.config.netns, &eni.tap())))
    }

    /// Plugs instance `id`'s ENIs: tap on the VPC bridge, DHCP, metadata listener, an
    /// ephemeral public address if wanted; then has the rules rebuilt in the background.
    /// Returns the vmm's `--net` values, in device order. Plugging a plugged instance only
    /// re-applies the rules.
    pub async fn plug(self: &Arc<Self>, id: &str) -> Result<Vec<String>, NetworkError> {
        let (eni_rows, vpcs_by_id, subnets_by_id) = {
            let conn = self.db.lock();
            let rows = enis::of_instance(&conn, id)?;
            let vpcs_by_id: HashMap<String, i64> = vpcs::vpcs(&conn)?
                .into_iter()
                .map(|v| (v.id, v.seq))
                .collect();
            let subnets_by_id: HashMap<String, String> = vpcs::subnets(&conn)?
                .into_iter()
                .map(|s| (s.id, s.cidr))
                .collect();
            (rows, vpcs_by_id, subnets_by_id)
        };
        let mut args = Vec::new();
        let mut plugged = self.plugged.lock().await;
        for eni in &eni_rows {
            let tap = eni.tap();
            args.push(format!("tap={tap},mac={}", eni.mac));
            self.assign_public_ip(eni)?;
            if plugged.contains_key(&eni.id) && links::exists(&self.config.netns, &tap) {
                continue;
            }
            plugged.remove(&eni.id);
            let bridge = bridge_name(vpcs_by_id.get(&eni.vpc_id).copied().unwrap_or_default());
            let bridge_mac = self.bridge_mac(&bridge)?;
            links::ensure_tap(&self.config.netns, &tap, &bridge)?;
            let subnet: Cidr = subnets_by_id
                .get(&eni.subnet_id)
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| Cidr::containing(Ipv4Addr::UNSPECIFIED, 0));
            let ip: Ipv4Addr = eni.private_ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
            let config = TapLease {
                tap: tap.clone(),
                server_ip: subnet.router(),
                server_mac: bridge_mac,
                client_mac: parse_mac(&eni.mac).unwrap_or_default(),
                lease: Lease {
                    ip,
                    prefix: subnet.prefix,
                    router: subnet.router(),
                    dns: self.config.dns.clone(),
                    hostname: format!("ip-{}", eni.private_ip.replace('.', "-")),
                    lease_secs: 3600,
                    mtu: 1500,
                },
            };
            let server =
                DhcpServer::bind(&self.config.netns, config).map_err(|e| NetworkError::Serve {
                    what: "DHCP",
                    tap: tap.clone(),
                    source: std::io::Error::other(crate::error_chain(&e)),
                })?;
            let dhcp = serve_dhcp(server, id, &tap);
            let (imds_port, imds) = self
                .imds
                .listen(&self.config.netns, id.to_owned(), &tap)
                .await
                .map_err(|source| NetworkError::Serve {
                    what: "metadata",
                    tap: tap.clone(),
                    source,
                })?;
            plugged.insert(
                eni.id.clone(),
                Plugged {
                    instance_id: id.to_owned(),
                    tap: tap.clone(),
                    imds_port,
                    tasks: vec![dhcp, imds],
                },
            );
        }
        drop(plugged);
        // The vmm may start before the rules are in: until then ebtables drops everything
        // its tap sends (DHCP is answered from the tap itself), and the metadata redirect
        // follows within one rebuild, which the guest's retries wait for.
        let me = self.clone();
        tasks::spawn(Unit::new("firewall sync").instance(id), async move {
            if let Err(e) = me.sync().await {
                tracing::error!(error = %crate::error_chain(&e), "cannot apply the firewall rules");
            }
        });
        Ok(args)
    }

    /// The MAC of VPC bridge `bridge` (the DHCP server's), making the bridges first if it is
    /// missing; remembered, since a bridge keeps its MAC for its life.
    fn bridge_mac(&self, bridge: &str) -> Result<[u8; 6], NetworkError> {
        let known = self
            .bridge_macs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(bridge)
            .copied();
        if let Some(mac) = known {
            return Ok(mac);
        }
        let ns = &self.config.netns;
        let mac = match links::mac(ns, bridge) {
            Some(mac) => mac,
            None => {
                self.ensure_bridges()?;
                links::mac(ns, bridge).unwrap_or([2, 0, 0, 0, 0, 1])
            }
        };
        self.bridge_macs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(bridge.to_owned(), mac);
        Ok(mac)
    }

    /// Gives `eni` an ephemeral public address if it wants one and has none (an Elastic IP
    /// counts as one).
    fn assign_public_ip(&self, eni: &EniRow) -> Result<(), NetworkError> {
        Ok(self.assign_public_ip_in(&self.db.lock(), &eni.id)?)
    }

    /// Gives every interface of instance `id` that wants a public address and has none an
    /// ephemeral one, in `conn`'s transaction (a start takes them before it commits, so one the
    /// pool cannot serve is refused up front).
    pub fn take_public_ips(&self, conn: &Connection, id: &str) -> Result<(), AddressError> {
        for eni in enis::of_instance(conn, id)? {
            self.assign_public_ip_in(conn, &eni.id)?;
        }
        Ok(())
    }

    fn assign_public_ip_in(&self, conn: &Connection, eni_id: &str) -> Result<(), AddressError> {
        let Some(current) = enis::get(conn, eni_id)? else {
            return Ok(());
        };
        if !current.wants_public_ip
            || current.public_ip.is_some()
            || enis::address_of_eni(conn, eni_id)?.is_some()
        {
            return Ok(());
        }
        let avoid = self
            .last_public
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(eni_id)
            .copied();
        let ip = addressing::free_public_ip(conn, &self.config.public_pool, avoid)?;
        enis::set_public_ip(conn, eni_id, Some(&ip.to_string()))?;
        Ok(())
    }

    /// Unplugs instance `id` once its VMM is gone for good (stopped or terminated): its taps,
    /// DHCP, metadata listener and tokens go, and its ephemeral public addresses return to
    /// the pool. With `terminated`, ENIs marked DeleteOnTermination are deleted and the
    /// others detached, and Elastic IPs on deleted ENIs are disassociated.
    pub async fn unplug(&self, id: &str, terminated: bool) -> Result<(), NetworkError> {
        let mut taps: Vec<String> = enis::of_instance(&self.db.lock(), id)?
            .iter()
            .map(EniRow::tap)
            .collect();
        {
            let mut conn = self.db.lock();
            let tx = conn.transaction()?;
            self.release_in_db(&tx, id, terminated)?;
            tx.commit()?;
        }
        {
            let mut plugged = self.plugged.lock().await;
            taps.extend(
                plugged
                    .values()
                    .filter(|p| p.instance_id == id)
                    .map(|p| p.tap.clone()),
            );
            plugged.retain(|_, p| p.instance_id != id);
        }
        taps.sort();
        taps.dedup();
        for tap in &taps {
            links::remove(&self.config.netns, tap)?;
        }
        self.imds.forget(id);
        self.sync().await
    }

    /// What ending instance `id` changes in the database, done in the transaction that
    /// records its stop or termination so that no answer shows it half-done: its ephemeral
    /// public addresses go back to the pool (remembered, so its next start gets other ones),
    /// and with `terminated` its ENIs marked DeleteOnTermination are deleted (their Elastic
    /// IPs disassociated) and the others detached. Idempotent.
    pub fn release_in_db(
        &self,
        conn: &Connection,
        id: &str,
        terminated: bool,
    ) -> rusqlite::Result<()> {
        for eni in enis::of_instance(conn, id)? {
            if let Some(ip) = eni.public_ip.as_deref().and_then(|ip| ip.parse().ok()) {
                self.last_public
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(eni.id.clone(), ip);
                enis::set_public_ip(conn, &eni.id, None)?;
            }
            if !terminated {
                continue;
            }
            if eni.delete_on_termination {
                if let Some(a) = enis::address_of_eni(conn, &eni.id)? {
                    enis::set_association(conn, &a.allocation_id, None)?;
                }
                enis::delete(conn, &eni.id)?;
            } else {
                enis::set_attachment(conn, &eni.id, None)?;
            }
        }
        Ok(())
    }

    /// Rebuilds every rule from the database. Calls that overlap are coalesced: a call
    /// returns once a rebuild that started after it was made has been applied.
    pub async fn sync(&self) -> Result<(), NetworkError> {
        let mine = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let _g = self.sync_lock.lock().await;
        if self.applied.load(Ordering::SeqCst) >= mine {
            return Ok(());
        }
        let generation = self.requested.load(Ordering::SeqCst);
        let ports: HashMap<String, u16> = self
            .plugged
            .lock()
            .await
            .iter()
            .map(|(eni, p)| (eni.clone(), p.imds_port))
            .collect();
        let plan = self.plan(&ports)?;
        let ns = self.config.netns.clone();
        tokio::task::spawn_blocking(move || firewall::apply(&ns, &plan))
            .await
            .map_err(|e| NetworkError::Serve {
                what: "firewall",
                tap: String::new(),
                source: std::io::Error::other(e),
            })??;
        self.applied.store(generation, Ordering::SeqCst);
        Ok(())
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
            let Some(instance) = &eni.instance_id else {
                continue;
            };
            let groups = groups_by_eni.remove(&eni.id).unwrap_or_default();
            let mut ingress = Vec::new();
            let mut egress = Vec::new();
            for rule in all_rules
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
            let options = enis::metadata_options(&conn, instance)?;
            let public = enis::address_of_eni(&conn, &eni.id)?
                .map(|a| a.public_ip)
                .or_else(|| eni.public_ip.clone());
            plan.enis.push(EniFirewall {
                tap: eni.tap(),
                ip: eni.private_ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
                mac: eni.mac.clone(),
                ingress,
                egress,
                imds_port: (options.http_endpoint == "enabled")
                    .then(|| ports.get(&eni.id).copied())
                    .flatten(),
                public_ip: public.and_then(|p| p.parse().ok()),
            });
        }
        for (set, members) in sets.iter_mut() {
            let group_id = &set[ipset::set_name("").len()..];
            members.extend(group_members(&conn, group_id, &all_enis)?);
        }
        plan.group_sets = sets.into_iter().collect();
        if self.config.outbound_nat {
            plan.masquerade_via =
                links::default_route_device(&self.config.netns).filter(|d| !d.starts_with("kec2"));
        }
        Ok(plan)
    }
}

/// Addresses as host routes (`/32`), skipping any that do not parse.
fn parsed(ips: &[String]) -> Vec<(Ipv4Addr, u8)> {
    ips.iter()
        .filter_map(|ip| ip.parse().ok())
        .map(|ip| (ip, 32))
        .collect()
}

fn group_members(
    conn: &Connection,
    group_id: &str,
    all_enis: &[EniRow],
) -> rusqlite::Result<Vec<Ipv4Addr>> {
    let ids = enis::enis_in_group(conn, group_id)?;
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
