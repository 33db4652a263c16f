//! IPv4 CIDR blocks: parsing as EC2 does (the host bits must be zero), containment, overlap,
//! and the addresses EC2 reserves in a subnet.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 block such as `172.31.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The network address (host bits zero).
    pub network: Ipv4Addr,
    /// The prefix length, 0 to 32.
    pub prefix: u8,
}

/// Why a CIDR block is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Not `a.b.c.d/n`.
    #[error("{0} is not a CIDR block (expected a.b.c.d/n)")]
    Syntax(String),
    /// Bits are set below the prefix.
    #[error("{0} is not a valid CIDR block: the host bits must be zero (did you mean {1}?)")]
    HostBits(String, Cidr),
}

impl Cidr {
    /// The block of `prefix` bits containing `ip`.
    pub fn containing(ip: Ipv4Addr, prefix: u8) -> Cidr {
        Cidr {
            network: Ipv4Addr::from(u32::from(ip) & mask(prefix)),
            prefix,
        }
    }

    /// The netmask as an integer.
    pub fn mask(&self) -> u32 {
        mask(self.prefix)
    }

    /// Number of addresses in the block.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// The `n`-th address of the block (0 is the network address).
    pub fn nth(&self, n: u64) -> Option<Ipv4Addr> {
        (n < self.size()).then(|| Ipv4Addr::from(u32::from(self.network) + n as u32))
    }

    /// The last address (the broadcast address).
    pub fn last(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask())
    }

    /// Whether `ip` is in the block.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
    }

    /// Whether `other` lies entirely inside this block.
    pub fn contains_block(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.network)
    }

    /// Whether the two blocks share an address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.contains_block(other) || other.contains_block(self)
    }

    /// The subnet's router: its first usable address (network + 1), as on EC2.
    pub fn router(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Whether EC2 reserves `ip` in this subnet: the first four addresses and the last.
    pub fn is_reserved(&self, ip: Ipv4Addr) -> bool {
        let offset = u32::from(ip).wrapping_sub(u32::from(self.network));
        offset < 4 || ip == self.last()
    }

    /// The addresses instances may get, in order.
    pub fn assignable(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        (4..self.size().saturating_sub(1)).filter_map(|n| self.nth(n))
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || CidrError::Syntax(text.to_owned());
        let (ip, prefix) = text.split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        let block = Cidr::containing(ip, prefix);
        if block.network != ip {
            return Err(CidrError::HostBits(text.to_owned(), block));
        }
        Ok(block)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(c("172.31.0.0/16").to_string(), "172.31.0.0/16");
        assert_eq!(c("0.0.0.0/0").size(), 1 << 32);
        assert_eq!(c("10.0.0.7/32").last(), Ipv4Addr::new(10, 0, 0, 7));
        for bad in [
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0/8",
            "x/8",
            "10.0.0.0/+8",
        ] {
            assert!(
                matches!(bad.parse::<Cidr>(), Err(CidrError::Syntax(_))),
                "{bad}"
            );
        }
        assert_eq!(
            "10.0.0.1/16".parse::<Cidr>(),
            Err(CidrError::HostBits("10.0.0.1/16".into(), c("10.0.0.0/16")))
        );
    }

    #[test]
    fn containment_and_overlap() {
        let vpc = c("172.31.0.0/16");
        assert!(vpc.contains_block(&c("172.31.16.0/20")));
        assert!(!vpc.contains_block(&c("172.30.0.0/20")));
        assert!(!vpc.contains_block(&c("172.0.0.0/8")));
        assert!(c("172.31.0.0/20").overlaps(&c("172.31.8.0/24")));
        assert!(c("172.31.8.0/24").overlaps(&c("172.31.0.0/20")));
        assert!(!c("172.31.0.0/20").overlaps(&c("172.31.16.0/20")));
    }

    #[test]
    fn ec2_reserves_four_and_the_last() {
        let s = c("10.0.0.0/28");
        assert_eq!(s.router(), Ipv4Addr::new(10, 0, 0, 1));
        let free: Vec<_> = s.assignable().collect();
        assert_eq!(free.first(), Some(&Ipv4Addr::new(10, 0, 0, 4)));
        assert_eq!(free.last(), Some(&Ipv4Addr::new(10, 0, 0, 14)));
        assert_eq!(free.len(), 11);
        assert!(s.is_reserved(Ipv4Addr::new(10, 0, 0, 3)));
        assert!(s.is_reserved(Ipv4Addr::new(10, 0, 0, 15)));
        assert!(!s.is_reserved(Ipv4Addr::new(10, 0, 0, 4)));
    }
}
