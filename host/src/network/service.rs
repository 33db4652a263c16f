//! The network service: keeps bridges, taps, DHCP servers, metadata listeners and the
//! firewall in step with the database. Instances' ENIs are plugged (tap, DHCP, metadata port,
//! public address) before their VMM starts and unplugged when it is gone for good; each of
//! these changes only that instance's rules ([`Network::sync_enis`], in `sync.rs`), while
//! changes that may touch many instances, an agent restart and a host reboot rebuild all
//! rules from the database ([`Network::sync`]).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use rusqlite::Connection;

use super::addressing::{self, AddressError};
use super::cidr::Cidr;
use super::dhcp::packet::Lease;
use super::dhcp::{DhcpServer, TapLease, parse_mac};
use super::firewall;
use super::links;
use crate::imds::server::Imds;
use crate::netns::NetNs;
use crate::tasks::{self, Backoff, Unit};
use state::Db;
use state::enis::{self, EniRow};
use state::vpcs;

mod reach;
mod sync;
pub use reach::ReachabilityError;
pub use sync::convert;

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
    /// Serializes firewall changes; holds what the firewall was last given.
    sync_lock: tokio::sync::Mutex<sync::Applied>,
    /// Per-ENI changes waiting for `sync_lock`.
    pending: std::sync::Mutex<sync::Pending>,
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
            sync_lock: tokio::sync::Mutex::new(sync::Applied::default()),
            pending: std::sync::Mutex::new(sync::Pending::default()),
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
    /// ephemeral public address if wanted; then has its rules added in the background (and
    /// its addresses to its groups' sets). Returns the vmm's `--net` values, in device order.
    /// Plugging a plugged instance only brings its rules in step.
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
            let ip: Ipv4Addr = eni.private_ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
            links::ensure_tap(&self.config.netns, &tap, &bridge)?;
            links::pin_port(&self.config.netns, &tap, &bridge, &eni.mac, ip)?;
            let subnet: Cidr = subnets_by_id
                .get(&eni.subnet_id)
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| Cidr::containing(Ipv4Addr::UNSPECIFIED, 0));
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
        let changed: Vec<(String, String)> =
            eni_rows.iter().map(|e| (e.id.clone(), e.tap())).collect();
        let addresses: Vec<Ipv4Addr> = eni_rows
            .iter()
            .filter_map(|e| e.private_ip.parse().ok())
            .collect();
        // The vmm may start before the rules are in: until then ebtables drops everything
        // its tap sends (DHCP is answered from the tap itself), and the metadata redirect
        // follows within one change, which the guest's retries wait for.
        let me = self.clone();
        tasks::spawn(Unit::new("firewall sync").instance(id), async move {
            if let Err(e) = me.sync_enis(changed, addresses).await {
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
        let rows = enis::of_instance(&self.db.lock(), id)?;
        let mut changed: Vec<(String, String)> =
            rows.iter().map(|e| (e.id.clone(), e.tap())).collect();
        {
            let mut conn = self.db.lock();
            let tx = conn.transaction()?;
            self.release_in_db(&tx, id, terminated)?;
            tx.commit()?;
        }
        {
            let mut plugged = self.plugged.lock().await;
            changed.extend(
                plugged
                    .iter()
                    .filter(|(_, p)| p.instance_id == id)
                    .map(|(eni, p)| (eni.clone(), p.tap.clone())),
            );
            plugged.retain(|_, p| p.instance_id != id);
        }
        changed.sort();
        changed.dedup();
        for (_, tap) in &changed {
            links::remove(&self.config.netns, tap)?;
        }
        self.unpin_addresses(&rows)?;
        self.imds.forget(id);
        // A terminated instance's interfaces, deleted or detached, leave their groups' sets;
        // a stopped one's stay attached, and in them (checked against the database).
        let addresses: Vec<Ipv4Addr> = rows
            .iter()
            .filter_map(|e| e.private_ip.parse().ok())
            .collect();
        self.sync_enis(changed, addresses).await
    }

    /// Removes the host's permanent neighbour entries of `enis` (see `links::pin_port`).
    fn unpin_addresses(&self, enis: &[EniRow]) -> Result<(), NetworkError> {
        let seqs: HashMap<String, i64> = vpcs::vpcs(&self.db.lock())?
            .into_iter()
            .map(|v| (v.id, v.seq))
            .collect();
        for eni in enis {
            let (Some(seq), Ok(ip)) = (seqs.get(&eni.vpc_id), eni.private_ip.parse()) else {
                continue;
            };
            links::unpin_address(&self.config.netns, &bridge_name(*seq), ip)?;
        }
        Ok(())
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
            if let Ok(ip) = eni.private_ip.parse() {
                // Its groups' sets are checked at the unplug that follows.
                sync::lock(&self.pending).recheck(ip);
            }
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
}

/// Addresses as host routes (`/32`), skipping any that do not parse.
fn parsed(ips: &[String]) -> Vec<(Ipv4Addr, u8)> {
    ips.iter()
        .filter_map(|ip| ip.parse().ok())
        .map(|ip| (ip, 32))
        .collect()
}
