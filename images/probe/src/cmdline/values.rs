//! The typed values of single parameters: `probe.mode=`, `probe.disk=`, `probe.imds=` and
//! `probe.net=` (with its address).

use super::parse::{parse_ipv4, parse_u64};
use super::{MODE_KEY, param};

/// What vCPU 0 does after the start-up lines (`probe.mode=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode<'a> {
    /// Write, read back and check all free memory, then power off (the default).
    Selftest,
    /// Print a counter every second, forever.
    Count,
    /// Power off at once.
    Poweroff,
    /// Any other value, kept to report it.
    Unknown(&'a [u8]),
}

impl<'a> Mode<'a> {
    /// The mode named by `value`.
    pub fn from_value(value: &'a [u8]) -> Self {
        match value {
            b"selftest" => Self::Selftest,
            b"count" => Self::Count,
            b"poweroff" => Self::Poweroff,
            other => Self::Unknown(other),
        }
    }

    /// The mode the command line asks for: [`Mode::Selftest`] when `probe.mode=` is absent.
    pub fn from_cmdline(cmdline: &'a [u8]) -> Self {
        param(cmdline, MODE_KEY).map_or(Self::Selftest, Self::from_value)
    }
}

/// What `probe.disk=` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskMode<'a> {
    /// Write the pattern, flush, read back and check.
    Write,
    /// Read back and check a pattern written by an earlier `write`.
    Verify,
    /// Sequential and random throughput.
    Bench,
    /// Random 4 KiB reads only, for about 3 s: `probe: disk iops <N>`.
    Iops,
    /// One write attempt, whatever the device says: `probe: disk write status <n>`.
    WriteRoCheck,
    /// Sequence-numbered blocks written in order with commit records (`disk/seq.rs`).
    Seq,
    /// Random blocks rewritten without end, each write different (`disk/churn.rs`).
    Churn,
    /// Any other value, kept to report it.
    Unknown(&'a [u8]),
}

impl<'a> DiskMode<'a> {
    /// The disk mode named by `value`.
    pub fn from_value(value: &'a [u8]) -> Self {
        match value {
            b"write" => Self::Write,
            b"verify" => Self::Verify,
            b"bench" => Self::Bench,
            b"iops" => Self::Iops,
            b"write-ro-check" => Self::WriteRoCheck,
            b"seq" => Self::Seq,
            b"churn" => Self::Churn,
            other => Self::Unknown(other),
        }
    }
}

/// Which instance metadata protocol `probe.imds=` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImdsVersion {
    /// Plain GETs.
    V1,
    /// A session token from `PUT /latest/api/token`, sent with every GET.
    V2,
}

impl ImdsVersion {
    /// `v1` or `v2`; anything else is `None`.
    pub fn from_value(value: &[u8]) -> Option<Self> {
        match value {
            b"v1" => Some(Self::V1),
            b"v2" => Some(Self::V2),
            _ => None,
        }
    }
}

/// An IPv4 address with its prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Cidr {
    /// The address, most significant byte first.
    pub addr: [u8; 4],
    /// The prefix length, 0 to 32.
    pub prefix: u8,
}

/// How `probe.net=` asks for an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetConfig {
    /// Lease one over DHCP (and keep asking while no server answers).
    Dhcp,
    /// A fixed address and an optional default gateway.
    Static {
        /// The interface address.
        cidr: Ipv4Cidr,
        /// The default gateway.
        gateway: Option<[u8; 4]>,
    },
}

impl NetConfig {
    /// Parses `dhcp`, `static:IP/PREFIX,GATEWAY` or `static:IP/PREFIX`.
    pub fn parse(value: &[u8]) -> Option<Self> {
        if value == b"dhcp" {
            return Some(Self::Dhcp);
        }
        let rest = value.strip_prefix(b"static:")?;
        let (cidr, gateway) = match rest.iter().position(|&b| b == b',') {
            Some(comma) => (&rest[..comma], Some(parse_ipv4(&rest[comma + 1..])?)),
            None => (rest, None),
        };
        let slash = cidr.iter().position(|&b| b == b'/')?;
        let addr = parse_ipv4(&cidr[..slash])?;
        let prefix = parse_u64(&cidr[slash + 1..]).filter(|&p| p <= 32)?;
        Some(Self::Static {
            cidr: Ipv4Cidr {
                addr,
                prefix: prefix as u8,
            },
            gateway,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_net_config() {
        assert_eq!(NetConfig::parse(b"dhcp"), Some(NetConfig::Dhcp));
        assert_eq!(
            NetConfig::parse(b"static:10.0.0.2/24,10.0.0.1"),
            Some(NetConfig::Static {
                cidr: Ipv4Cidr {
                    addr: [10, 0, 0, 2],
                    prefix: 24
                },
                gateway: Some([10, 0, 0, 1]),
            })
        );
        assert_eq!(
            NetConfig::parse(b"static:192.168.1.200/32"),
            Some(NetConfig::Static {
                cidr: Ipv4Cidr {
                    addr: [192, 168, 1, 200],
                    prefix: 32
                },
                gateway: None,
            })
        );
        for bad in [
            &b"static:10.0.0.2"[..],
            b"static:10.0.0.2/33,10.0.0.1",
            b"static:10.0.0.256/24",
            b"static:10.0.0/24",
            b"static:10.0.0.2.1/24",
            b"static:10.0.0.2/24,",
            b"static:/24",
            b"DHCP",
            b"",
        ] {
            assert_eq!(NetConfig::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parses_disk_modes() {
        for (value, mode) in [
            (&b"write"[..], DiskMode::Write),
            (b"verify", DiskMode::Verify),
            (b"bench", DiskMode::Bench),
            (b"iops", DiskMode::Iops),
            (b"write-ro-check", DiskMode::WriteRoCheck),
            (b"seq", DiskMode::Seq),
            (b"churn", DiskMode::Churn),
            (b"Write", DiskMode::Unknown(b"Write")),
        ] {
            assert_eq!(DiskMode::from_value(value), mode);
        }
    }

    #[test]
    fn parses_modes() {
        assert_eq!(Mode::from_cmdline(b"console=ttyS0"), Mode::Selftest);
        assert_eq!(Mode::from_cmdline(b""), Mode::Selftest);
        assert_eq!(Mode::from_cmdline(b"probe.mode=selftest"), Mode::Selftest);
        assert_eq!(Mode::from_cmdline(b"probe.mode=count"), Mode::Count);
        assert_eq!(
            Mode::from_cmdline(b"x probe.mode=poweroff y"),
            Mode::Poweroff
        );
        assert_eq!(
            Mode::from_cmdline(b"probe.mode=Count"),
            Mode::Unknown(b"Count")
        );
        assert_eq!(Mode::from_cmdline(b"probe.mode="), Mode::Unknown(b""));
    }
}
