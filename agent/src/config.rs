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
