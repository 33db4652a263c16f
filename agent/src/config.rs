//! The agent's command-line flags; every one has a default that works unconfigured.

use std::net::SocketAddr;
use std::path::PathBuf;

/// `agent` flags.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "agent",
    about = "kec2's host agent: an EC2 API over KVM microVMs"
)]
pub struct AgentConfig {
    /// Where the database, credentials and instance files live.
    #[arg(long, default_value = "/var/lib/kec2")]
    pub state_dir: PathBuf,
    /// Address of the EC2 API (port 0 picks a free one; the URL is written to
    /// `<state-dir>/endpoint`).
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// The `vmm` binary (default: `vmm` next to this executable).
    #[arg(long)]
    pub vmm: Option<PathBuf>,
    /// vCPU budget for all instances (default: host cores x --cpu-overcommit).
    #[arg(long)]
    pub max_vcpus: Option<u64>,
    /// Memory budget in MiB for all instances (default: host RAM x --mem-overcommit).
    #[arg(long)]
    pub max_memory_mib: Option<u64>,
    /// vCPUs per host core.
    #[arg(long, default_value_t = 16.0)]
    pub cpu_overcommit: f64,
    /// Guest memory per byte of host RAM (guest memory is mapped lazily).
    #[arg(long, default_value_t = 1.5)]
    pub mem_overcommit: f64,
    /// Seconds a graceful stop waits for the guest before killing its VMM.
    #[arg(long, default_value_t = 10)]
    pub stop_timeout: u64,
    /// Seconds terminated instances stay visible.
    #[arg(long, default_value_t = 3600)]
    pub terminated_retention: u64,
    /// The public address pool (public and Elastic IPs); the agent puts its first address on
    /// a host interface, `kec2pub`.
    #[arg(long, default_value = "198.51.100.0/24")]
    pub public_pool: host::network::cidr::Cidr,
    /// Masquerade instances' outbound traffic on the host's default route.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub outbound_nat: bool,
    /// Run instance networking (VPC bridges, taps, rules, DHCP, metadata, VMMs) in this
    /// network namespace (`ip netns add NAME`) instead of the agent's own.
    #[arg(long)]
    pub netns: Option<String>,
    /// Debugging only: start VMMs without their seccomp system-call allowlist (they are still
    /// jailed: own uid, mount namespace and cgroup).
    #[arg(long)]
    pub no_seccomp: bool,
    /// Debugging and benchmarking only: start VMMs unconfined, as root, with no jail, cgroup
    /// or seccomp allowlist (to measure what the confinement costs, or to rule it out).
    #[arg(long)]
    pub no_jail: bool,
    /// Seconds between samples of running instances' CloudWatch metrics and status checks
    /// (at least 1): detailed monitoring publishes every interval, basic every five.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub metrics_interval: u64,
    /// The period in seconds of the alarms Auto Scaling's target tracking policies create
    /// (60 on AWS; 10 or 30 make tests fast).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(i32).range(10..=3600))]
    pub scaling_alarm_period: i32,
    /// The SMTP relay SNS's e-mail subscriptions are delivered through (`HOST:PORT`, plain
    /// SMTP without TLS or authentication: a relay on this host or the loopback). Without
    /// it, e-mail deliveries fail and are retried, then given up, each attempt logged.
    #[arg(long, value_parser = parse_smtp)]
    pub smtp: Option<(String, u16)>,
    /// The sender of SNS's mails.
    #[arg(long, default_value = "kec2 Notifications <sns@localhost>")]
    pub smtp_from: String,
    /// DNS servers DHCP hands out (default: the host's non-loopback nameservers).
    #[arg(long, value_delimiter = ',')]
    pub dns: Option<Vec<std::net::Ipv4Addr>>,
}

impl AgentConfig {
    /// The DNS servers for instances: the flag, or the host's usable nameservers.
    pub fn dns_servers(&self) -> Vec<std::net::Ipv4Addr> {
        if let Some(dns) = &self.dns {
            return dns.clone();
        }
        std::fs::read_to_string("/etc/resolv.conf")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("nameserver"))
            .filter_map(|ip| ip.trim().parse::<std::net::Ipv4Addr>().ok())
            .filter(|ip| !ip.is_loopback())
            .take(3)
            .collect()
    }

    /// The vmm binary: the flag, or `vmm` beside the running executable.
    pub fn vmm_path(&self) -> PathBuf {
        self.vmm.clone().unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(|d| d.join("vmm")))
                .unwrap_or_else(|| PathBuf::from("vmm"))
        })
    }
}

/// `HOST:PORT` (a name or an address; `[v6]:PORT` for IPv6).
fn parse_smtp(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?} is not HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(format!("{s:?} is not HOST:PORT"));
    }
    Ok((host.to_string(), port))
}
