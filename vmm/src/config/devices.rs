//! Disk and network-card settings, from the JSON config or the `--disk` and `--net` flags.

use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::devices::rate_limiter::{BucketConfig, RateLimiter};
use crate::devices::virtio::block::Engine;

/// One virtio-blk disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskConfig {
    /// The raw image file.
    pub path: PathBuf,
    /// Refuse writes.
    #[serde(default)]
    pub read_only: bool,
    /// The id the guest reads with GET_ID (default: the file name), at most 20 bytes.
    #[serde(default)]
    pub id: Option<String>,
    /// Operations per second.
    #[serde(default)]
    pub iops: Option<u64>,
    /// Operations allowed in a burst (default: a tenth of a second's worth).
    #[serde(default)]
    pub iops_burst: Option<u64>,
    /// Bytes per second.
    #[serde(default)]
    pub bps: Option<u64>,
    /// Bytes allowed in a burst (default: a tenth of a second's worth).
    #[serde(default)]
    pub bps_burst: Option<u64>,
    /// How requests are carried out (default io_uring, or sync where it is refused).
    #[serde(default)]
    pub engine: Engine,
}

/// One virtio-net card on a tap device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    /// The tap device's name.
    pub tap: String,
    /// The card's MAC address, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// Bytes per second in each direction.
    #[serde(default)]
    pub bps: Option<u64>,
    /// Bytes allowed in a burst.
    #[serde(default)]
    pub bps_burst: Option<u64>,
}

/// Why a `--disk` or `--net` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceSpecError {
    /// A `key=value` item has an unknown key or a bad value.
    #[error("{flag}: `{item}` is not valid; allowed: {allowed}")]
    BadItem {
        /// "--disk" or "--net".
        flag: &'static str,
        /// The item.
        item: String,
        /// What is allowed.
        allowed: &'static str,
    },
    /// A required item is missing.
    #[error("{flag}: `{0}` is required", flag = .1)]
    Missing(&'static str, &'static str),
    /// The MAC address is malformed.
    #[error("mac `{0}` must be six hex bytes like 02:00:00:00:00:01, and not multicast")]
    BadMac(String),
    /// The disk id is too long.
    #[error("disk id `{0}` is longer than 20 bytes")]
    IdTooLong(String),
    /// A rate is zero.
    #[error("{0} must be greater than zero")]
    ZeroRate(&'static str),
}

const DISK_ALLOWED: &str =
    "PATH[,ro][,id=ID][,iops=N][,iops_burst=N][,bps=N][,bps_burst=N][,engine=io_uring|sync]";
const NET_ALLOWED: &str = "tap=NAME,mac=MAC[,bps=N][,bps_burst=N]";

fn number(
    flag: &'static str,
    item: &str,
    value: &str,
    allowed: &'static str,
) -> Result<u64, DeviceSpecError> {
    value.parse().map_err(|_| DeviceSpecError::BadItem {
        flag,
        item: item.to_owned(),
        allowed,
    })
}

fn bucket(rate: Option<u64>, burst: Option<u64>) -> Option<BucketConfig> {
    rate.map(|rate| match burst {
        Some(burst) => BucketConfig { rate, burst },
        None => BucketConfig::with_rate(rate),
    })
}

impl FromStr for DiskConfig {
    type Err = DeviceSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut items = spec.split(',');
        let path = items.next().filter(|p| !p.is_empty() && !p.contains('='));
        let mut disk = DiskConfig {
            path: path
                .ok_or(DeviceSpecError::Missing("PATH", "--disk"))?
                .into(),
            read_only: false,
            id: None,
            iops: None,
            iops_burst: None,
            bps: None,
            bps_burst: None,
            engine: Engine::default(),
        };
        for item in items {
            let (key, value) = item.split_once('=').unwrap_or((item, ""));
            let num = || number("--disk", item, value, DISK_ALLOWED);
            match key {
                "ro" if value.is_empty() => disk.read_only = true,
                "id" => disk.id = Some(value.to_owned()),
                "iops" => disk.iops = Some(num()?),
                "iops_burst" => disk.iops_burst = Some(num()?),
                "bps" => disk.bps = Some(num()?),
                "bps_burst" => disk.bps_burst = Some(num()?),
                "engine" => {
                    disk.engine = value.parse().map_err(|()| DeviceSpecError::BadItem {
                        flag: "--disk",
                        item: item.to_owned(),
                        allowed: DISK_ALLOWED,
                    })?;
                }
                _ => {
                    return Err(DeviceSpecError::BadItem {
                        flag: "--disk",
                        item: item.to_owned(),
                        allowed: DISK_ALLOWED,
                    });
                }
            }
        }
        disk.validate()?;
        Ok(disk)
    }
}

impl DiskConfig {
    /// Checks the id and rates.
    pub fn validate(&self) -> Result<(), DeviceSpecError> {
        if let Some(id) = &self.id {
            if id.len() > 20 {
                return Err(DeviceSpecError::IdTooLong(id.clone()));
            }
        }
        for (name, v) in [
            ("iops", self.iops),
            ("iops_burst", self.iops_burst),
            ("bps", self.bps),
            ("bps_burst", self.bps_burst),
        ] {
            if v == Some(0) {
                return Err(DeviceSpecError::ZeroRate(name));
            }
        }
        Ok(())
    }

    /// The id the guest sees: the one given, or the file name.
    pub fn guest_id(&self) -> String {
        self.id.clone().unwrap_or_else(|| {
            let name = self
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.chars().take(20).collect()
        })
    }

    /// The disk's rate limiter.
    pub fn limiter(&self) -> RateLimiter {
        RateLimiter::new(
            bucket(self.iops, self.iops_burst),
            bucket(self.bps, self.bps_burst),
        )
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` into bytes; multicast addresses are refused.
pub fn parse_mac(mac: &str) -> Result<[u8; 6], DeviceSpecError> {
    let bad = || DeviceSpecError::BadMac(mac.to_owned());
    let parts: Vec<&str> = mac.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut bytes = [0u8; 6];
    for (b, p) in bytes.iter_mut().zip(parts) {
        if p.len() != 2 {
            return Err(bad());
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if bytes[0] & 1 != 0 {
        return Err(bad());
    }
    Ok(bytes)
}

impl FromStr for NetConfig {
    type Err = DeviceSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let (mut tap, mut mac, mut bps, mut bps_burst) = (None, None, None, None);
        for item in spec.split(',') {
            let (key, value) = item.split_once('=').unwrap_or((item, ""));
            let num = || number("--net", item, value, NET_ALLOWED);
            match key {
                "tap" if !value.is_empty() => tap = Some(value.to_owned()),
                "mac" => mac = Some(value.to_owned()),
                "bps" => bps = Some(num()?),
                "bps_burst" => bps_burst = Some(num()?),
                _ => {
                    return Err(DeviceSpecError::BadItem {
                        flag: "--net",
                        item: item.to_owned(),
                        allowed: NET_ALLOWED,
                    });
                }
            }
        }
        let net = NetConfig {
            tap: tap.ok_or(DeviceSpecError::Missing("tap=NAME", "--net"))?,
            mac: mac.ok_or(DeviceSpecError::Missing("mac=MAC", "--net"))?,
            bps,
            bps_burst,
        };
        net.validate()?;
        Ok(net)
    }
}

impl NetConfig {
    /// Checks the MAC and rates.
    pub fn validate(&self) -> Result<(), DeviceSpecError> {
        parse_mac(&self.mac)?;
        if self.bps == Some(0) || self.bps_burst == Some(0) {
            return Err(DeviceSpecError::ZeroRate("bps"));
        }
        Ok(())
    }

    /// The MAC as bytes (valid after `validate`).
    pub fn mac_bytes(&self) -> [u8; 6] {
        parse_mac(&self.mac).unwrap_or_default()
    }

    /// The card's rate limiter, for each direction.
    pub fn limiter(&self) -> RateLimiter {
        RateLimiter::new(None, bucket(self.bps, self.bps_burst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_flags_parse() {
        let d: DiskConfig = "/v/vol-1.img,ro,id=vol-1,iops=1000,bps=1048576"
            .parse()
            .unwrap();
        assert_eq!(d.path, PathBuf::from("/v/vol-1.img"));
        assert!(d.read_only);
        assert_eq!((d.iops, d.bps), (Some(1000), Some(1 << 20)));
        assert_eq!(d.guest_id(), "vol-1");
        let plain: DiskConfig = "/v/data.raw".parse().unwrap();
        assert_eq!(plain.guest_id(), "data.raw");
        assert!(!plain.limiter().is_active());
        assert!(d.limiter().is_active());
    }

    #[test]
    fn disk_flags_refuse_bad_items() {
        let err = "/d,speed=9".parse::<DiskConfig>().unwrap_err();
        assert!(err.to_string().contains("`speed=9` is not valid"), "{err}");
        assert!(err.to_string().contains("iops=N"), "{err}");
        assert!("/d,iops=fast".parse::<DiskConfig>().is_err());
        assert!("/d,iops=0".parse::<DiskConfig>().is_err());
        assert!(",ro".parse::<DiskConfig>().is_err());
        assert!(
            "/d,id=abcdefghijklmnopqrstuvwxyz"
                .parse::<DiskConfig>()
                .is_err()
        );
    }

    #[test]
    fn net_flags_parse() {
        let n: NetConfig = "tap=tap0,mac=02:00:00:00:00:01,bps=1000000"
            .parse()
            .unwrap();
        assert_eq!(n.tap, "tap0");
        assert_eq!(n.mac_bytes(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(n.bps, Some(1_000_000));
    }

    #[test]
    fn net_flags_refuse_bad_macs_and_missing_parts() {
        assert!(matches!(
            "tap=t,mac=01:00:00:00:00:01".parse::<NetConfig>(),
            Err(DeviceSpecError::BadMac(_))
        ));
        assert!("tap=t,mac=02:00:00:00:00".parse::<NetConfig>().is_err());
        assert!("tap=t,mac=zz:00:00:00:00:01".parse::<NetConfig>().is_err());
        let err = "mac=02:00:00:00:00:01".parse::<NetConfig>().unwrap_err();
        assert_eq!(err.to_string(), "--net: `tap=NAME` is required");
    }
}
