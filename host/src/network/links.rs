//! Network devices the agent owns, through iproute2: a bridge per VPC (`kec2v<n>`) carrying
//! each subnet's router address, a tap per ENI (`kec2t<n>`) on its VPC's bridge, and the
//! public side (`kec2pub`) holding the public pool's gateway and the metadata address.

use std::net::Ipv4Addr;

use super::cidr::Cidr;
use crate::netns::NetNs;

/// The host-side interface of the public address pool and of the metadata service.
pub const PUBLIC_LINK: &str = "kec2pub";

/// Why a device could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// `ip` could not be run.
    #[error("cannot run ip")]
    Spawn(#[source] std::io::Error),
    /// `ip` refused.
    #[error("ip {args} failed: {stderr}")]
    Rejected {
        /// The arguments.
        args: String,
        /// What it said.
        stderr: String,
    },
    /// A sysctl could not be written.
    #[error("cannot set {path}")]
    Sysctl {
        /// The file under /proc/sys.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn ip(ns: &NetNs, args: &[&str]) -> Result<String, LinkError> {
    let mut cmd = std::process::Command::new("ip");
    if let Some(name) = ns.name() {
        cmd.args(["-n", name]);
    }
    let out = cmd.args(args).output().map_err(LinkError::Spawn)?;
    if !out.status.success() {
        return Err(LinkError::Rejected {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether the device exists.
pub fn exists(ns: &NetNs, name: &str) -> bool {
    ip(ns, &["link", "show", "dev", name]).is_ok()
}

/// The device's MAC address.
pub fn mac(ns: &NetNs, name: &str) -> Option<[u8; 6]> {
    let text = ip(ns, &["-o", "link", "show", "dev", name]).ok()?;
    let mut words = text.split_whitespace();
    words.find(|w| *w == "link/ether")?;
    super::dhcp::parse_mac(words.next()?)
}

/// Makes bridge `name` (if missing) hold exactly the addresses `addrs` and be up, with its
/// MAC pinned.
pub fn ensure_bridge(ns: &NetNs, name: &str, addrs: &[(Ipv4Addr, u8)]) -> Result<(), LinkError> {
    if !exists(ns, name) {
        ip(ns, &["link", "add", name, "type", "bridge"])?;
        // VPCs here are IPv4 only: no IPv6 link-local address, so the kernel sends no router
        // solicitations or multicast reports that would wake every idle guest now and then.
        ip(ns, &["link", "set", "dev", name, "addrgenmode", "none"])?;
        // A bridge whose MAC was never set takes its lowest port's MAC whenever a tap joins
        // or leaves, so what the guests, the DHCP replies and the reachability check know as
        // their router's MAC would go stale. Setting it (to the one it was made with) makes
        // the kernel keep it. Only here, on a new bridge: setting a MAC again on a bridge
        // with ports flushes the host's neighbour entries of its guests.
        if let Some(mac) = mac(ns, name) {
            let text = mac
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":");
            ip(ns, &["link", "set", "dev", name, "address", &text])?;
        }
    }
    let listed = ip(ns, &["-4", "-o", "addr", "show", "dev", name])?;
    let current: Vec<String> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1))
        .map(str::to_owned)
        .collect();
    let wanted: Vec<String> = addrs.iter().map(|(a, p)| format!("{a}/{p}")).collect();
    for addr in current.iter().filter(|a| !wanted.contains(a)) {
        ip(ns, &["addr", "del", addr, "dev", name])?;
    }
    for addr in wanted.iter().filter(|a| !current.contains(a)) {
        ip(ns, &["addr", "add", addr, "dev", name])?;
    }
    ip(ns, &["link", "set", name, "up"])?;
    Ok(())
}

/// Makes tap `name` exist on `bridge`, up, with no IPv6 address of its own (see
/// [`ensure_bridge`]).
pub fn ensure_tap(ns: &NetNs, name: &str, bridge: &str) -> Result<(), LinkError> {
    // One command when it is new (the common case); an existing tap is only re-enslaved.
    if let Err(e) = ip(ns, &["tuntap", "add", "dev", name, "mode", "tap"])
        && !exists(ns, name)
    {
        return Err(e);
    }
    let enslave = [
        "link",
        "set",
        name,
        "master",
        bridge,
        "addrgenmode",
        "none",
        "up",
    ];
    ip(ns, &enslave)?;
    Ok(())
}

/// Deletes a device if it exists. A device that another task removed meanwhile (say, an
/// instance's exit during the start-up sweep) counts as removed.
pub fn remove(ns: &NetNs, name: &str) -> Result<(), LinkError> {
    if !exists(ns, name) {
        return Ok(());
    }
    match ip(ns, &["link", "del", name]) {
        Err(_) if !exists(ns, name) => Ok(()),
        other => other.map(drop),
    }
}

/// The agent's devices that exist now (bridges and taps named `kec2v*`/`kec2t*`).
pub fn owned(ns: &NetNs) -> Vec<String> {
    let listed = ip(ns, &["-o", "link", "show"]).unwrap_or_default();
    listed
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or_default().to_owned())
        .filter(|n| n.starts_with("kec2v") || n.starts_with("kec2t"))
        .collect()
}

/// The public side: `kec2pub` with the pool's first address, the metadata address and
/// `extra` (load balancers' addresses).
pub fn ensure_public(ns: &NetNs, pool: &Cidr, extra: &[(Ipv4Addr, u8)]) -> Result<(), LinkError> {
    let mut addrs = vec![(pool.router(), pool.prefix), (super::firewall::IMDS_IP, 32)];
    addrs.extend_from_slice(extra);
    ensure_bridge(ns, PUBLIC_LINK, &addrs)
}

/// Writes a network sysctl (under /proc/sys, which shows the namespace of the writer).
pub fn sysctl(ns: &NetNs, key: &str, value: &str) -> Result<(), LinkError> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let written = ns
        .run(|| std::fs::write(&path, value))
        .map_err(std::io::Error::other)
        .and_then(|r| r);
    written.map_err(|source| LinkError::Sysctl { path, source })
}

/// Routing and bridge filtering the VPCs need: forwarding on, bridged IPv4 through iptables
/// (loading br_netfilter if it is not).
pub fn enable_routing(ns: &NetNs) -> Result<(), LinkError> {
    sysctl(ns, "net.ipv4.ip_forward", "1")?;
    if !std::path::Path::new("/proc/sys/net/bridge").exists() {
        let _ = std::process::Command::new("modprobe")
            .arg("br_netfilter")
            .status();
    }
    sysctl(ns, "net.bridge.bridge-nf-call-iptables", "1")
}

/// The interface of the default IPv4 route, if any.
pub fn default_route_device(ns: &NetNs) -> Option<String> {
    let out = ip(ns, &["-4", "route", "show", "default"]).ok()?;
    let line = out.lines().next()?;
    let mut words = line.split_whitespace();
    words.find(|w| *w == "dev")?;
    words.next().map(str::to_owned)
}
