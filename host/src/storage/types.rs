//! EBS volume types, their limits, and the rate limits the vmm enforces for each.
//!
//! The numbers are the ones botocore's EC2 model documents for `CreateVolume` and
//! `ModifyVolume` (`botocore/data/ec2/2016-11-15/service-2.json`, members `Size`, `Iops` and
//! `Throughput`) and the Amazon EBS User Guide's "Amazon EBS volume types" page:
//!
//! | type | size (GiB) | IOPS | throughput (MiB/s) |
//! | --- | --- | --- | --- |
//! | gp2 | 1-16,384 | 3 per GiB, at least 100, at most 16,000 (not settable) | 250 |
//! | gp3 | 1-65,536 | 3,000 (default)-80,000, at most 500 per GiB | 125 (default)-2,000, at most IOPS/4 |
//! | io1 | 4-16,384 | 100-64,000 (required), at most 50 per GiB | 1,000 |
//! | io2 | 4-65,536 | 100-256,000 (required), at most 1,000 per GiB (Block Express) | 4,000 |
//! | st1 | 125-16,384 | 500 (1 MiB I/Os) | 40 per TiB, at most 500 |
//! | sc1 | 125-16,384 | 250 (1 MiB I/Os) | 12 per TiB, at most 250 |
//! | standard | 1-1,024 | about 100 on average | 40-90 |
//!
//! gp3's ratios (500 IOPS per GiB, 0.25 MiB/s per IOPS) are the User Guide's.

use std::fmt;

/// One GiB in bytes.
pub const GIB: u64 = 1 << 30;
/// One MiB in bytes.
pub const MIB: u64 = 1 << 20;

/// An EBS volume type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeType {
    /// General Purpose SSD, IOPS from size.
    Gp2,
    /// General Purpose SSD, provisioned IOPS and throughput.
    Gp3,
    /// Provisioned IOPS SSD.
    Io1,
    /// Provisioned IOPS SSD (Block Express).
    Io2,
    /// Throughput Optimized HDD.
    St1,
    /// Cold HDD.
    Sc1,
    /// Magnetic (previous generation).
    Standard,
}

impl VolumeType {
    /// Every type.
    pub const ALL: [VolumeType; 7] = [
        Self::Gp2,
        Self::Gp3,
        Self::Io1,
        Self::Io2,
        Self::St1,
        Self::Sc1,
        Self::Standard,
    ];

    /// EC2's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gp2 => "gp2",
            Self::Gp3 => "gp3",
            Self::Io1 => "io1",
            Self::Io2 => "io2",
            Self::St1 => "st1",
            Self::Sc1 => "sc1",
            Self::Standard => "standard",
        }
    }

    /// Parses EC2's name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == s)
    }

    /// The sizes allowed, in GiB.
    pub fn size_range(self) -> (u64, u64) {
        match self {
            Self::Gp2 => (1, 16_384),
            Self::Gp3 => (1, 65_536),
            Self::Io1 => (4, 16_384),
            Self::Io2 => (4, 65_536),
            Self::St1 | Self::Sc1 => (125, 16_384),
            Self::Standard => (1, 1024),
        }
    }

    /// The provisioned IOPS range and the most IOPS per GiB, for types that take `Iops`.
    fn iops_limits(self) -> Option<(u64, u64, u64)> {
        match self {
            Self::Gp3 => Some((3000, 80_000, 500)),
            Self::Io1 => Some((100, 64_000, 50)),
            Self::Io2 => Some((100, 256_000, 1000)),
            _ => None,
        }
    }
}

impl fmt::Display for VolumeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A volume's type, size and performance, validated against its type's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeSpec {
    /// The type.
    pub kind: VolumeType,
    /// Size in GiB.
    pub size_gib: u64,
    /// Provisioned (gp3, io1, io2) or baseline (gp2, st1, sc1, standard) IOPS.
    pub iops: u64,
    /// Throughput in MiB/s (provisioned for gp3, the type's ceiling otherwise).
    pub throughput: u64,
}

/// Why a volume specification is refused; each maps to one EC2 error code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// The size is outside the type's range (`InvalidParameterValue`).
    #[error("Volume of {size} GiB is not valid for type {kind}: the size must be {min}-{max} GiB")]
    Size {
        /// The type.
        kind: VolumeType,
        /// The size asked for.
        size: u64,
        /// Smallest size.
        min: u64,
        /// Largest size.
        max: u64,
    },
    /// `Iops` given for a type that does not take it (`InvalidParameterCombination`).
    #[error("The parameter iops is not supported for {0} volumes")]
    IopsNotAllowed(VolumeType),
    /// `Iops` missing for io1/io2 (`MissingParameter`).
    #[error("The parameter iops must be specified for {0} volumes")]
    IopsRequired(VolumeType),
    /// IOPS outside the type's range (`InvalidParameterValue`).
    #[error("Value ({iops}) for parameter iops is invalid: {kind} volumes take {min}-{max} IOPS")]
    IopsRange {
        /// The type.
        kind: VolumeType,
        /// IOPS asked for.
        iops: u64,
        /// Fewest.
        min: u64,
        /// Most.
        max: u64,
    },
    /// IOPS above the per-GiB ratio (`InvalidParameterValue`).
    #[error(
        "Iops to volume size ratio of {ratio:.1} is too high; maximum is {max_ratio} for {kind} \
         ({iops} IOPS on {size} GiB)"
    )]
    IopsRatio {
        /// The type.
        kind: VolumeType,
        /// IOPS asked for.
        iops: u64,
        /// Size.
        size: u64,
        /// IOPS per GiB asked for.
        ratio: f64,
        /// Allowed IOPS per GiB.
        max_ratio: u64,
    },
    /// `Throughput` given for a type other than gp3 (`InvalidParameterCombination`).
    #[error("The parameter throughput is not supported for {0} volumes; only gp3 takes it")]
    ThroughputNotAllowed(VolumeType),
    /// Throughput outside 125-2000 or above IOPS/4 (`InvalidParameterValue`).
    #[error(
        "Value ({throughput}) for parameter throughput is invalid: gp3 takes 125-2000 MiB/s and \
         at most 0.25 MiB/s per provisioned IOPS ({iops} IOPS allow {max})"
    )]
    Throughput {
        /// Throughput asked for.
        throughput: u64,
        /// The volume's IOPS.
        iops: u64,
        /// The most allowed.
        max: u64,
    },
}

impl SpecError {
    /// EC2's error code for this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Self::IopsNotAllowed(_) | Self::ThroughputNotAllowed(_) => {
                "InvalidParameterCombination"
            }
            Self::IopsRequired(_) => "MissingParameter",
            _ => "InvalidParameterValue",
        }
    }
}

impl VolumeSpec {
    /// The IOPS and throughput a request must give to make this spec again: the provisioned
    /// ones of the types that take them, none for the others.
    pub fn provisioned(&self) -> (Option<u64>, Option<u64>) {
        let iops = self.kind.iops_limits().map(|_| self.iops);
        let throughput = (self.kind == VolumeType::Gp3).then_some(self.throughput);
        (iops, throughput)
    }

    /// Validates a request: `iops` and `throughput` are what the caller gave (`None` = not
    /// given), so that giving one to a type that does not take it is refused.
    pub fn new(
        kind: VolumeType,
        size_gib: u64,
        iops: Option<u64>,
        throughput: Option<u64>,
    ) -> Result<Self, SpecError> {
        let (min, max) = kind.size_range();
        if !(min..=max).contains(&size_gib) {
            return Err(SpecError::Size {
                kind,
                size: size_gib,
                min,
                max,
            });
        }
        let iops = match (kind.iops_limits(), iops) {
            (None, Some(_)) => return Err(SpecError::IopsNotAllowed(kind)),
            (None, None) => baseline_iops(kind, size_gib),
            (Some(_), None) if kind != VolumeType::Gp3 => {
                return Err(SpecError::IopsRequired(kind));
            }
            (Some((lo, _, _)), None) => lo,
            (Some((lo, hi, per_gib)), Some(n)) => {
                if !(lo..=hi).contains(&n) {
                    return Err(SpecError::IopsRange {
                        kind,
                        iops: n,
                        min: lo,
                        max: hi,
                    });
                }
                // gp3's baseline 3,000 is allowed on any size; above it the ratio applies.
                let floor = if kind == VolumeType::Gp3 { lo } else { 0 };
                if n > floor && n > per_gib * size_gib {
                    return Err(SpecError::IopsRatio {
                        kind,
                        iops: n,
                        size: size_gib,
                        ratio: n as f64 / size_gib as f64,
                        max_ratio: per_gib,
                    });
                }
                n
            }
        };
        let throughput = match (kind, throughput) {
            (VolumeType::Gp3, t) => {
                let t = t.unwrap_or(125);
                let max = (iops / 4).min(2000);
                if !(125..=2000).contains(&t) || (t > 125 && t > max) {
                    return Err(SpecError::Throughput {
                        throughput: t,
                        iops,
                        max: max.max(125),
                    });
                }
                t
            }
            (_, Some(_)) => return Err(SpecError::ThroughputNotAllowed(kind)),
            (_, None) => ceiling_throughput(kind, size_gib),
        };
        Ok(Self {
            kind,
            size_gib,
            iops,
            throughput,
        })
    }

    /// The vmm `--disk` rate-limit items: `iops=N,iops_burst=N,bps=N,bps_burst=N`.
    ///
    /// Bursts are a tenth of a second's worth, so a measured rate over seconds is the
    /// provisioned one; gp2 and standard volumes get their documented burst ceilings as the
    /// bucket size (gp2 under 1 TiB bursts to 3,000 IOPS).
    pub fn rate_args(&self) -> String {
        let iops_burst = match self.kind {
            VolumeType::Gp2 if self.iops < 3000 => 3000,
            VolumeType::Standard => 300,
            _ => (self.iops / 10).max(1),
        };
        let bps = self.throughput * MIB;
        format!(
            "iops={},iops_burst={iops_burst},bps={bps},bps_burst={}",
            self.iops,
            (bps / 10).max(MIB)
        )
    }

    /// The size in bytes.
    pub fn bytes(&self) -> u64 {
        self.size_gib * GIB
    }
}

/// IOPS of the types whose IOPS follow from size (gp2) or are fixed.
fn baseline_iops(kind: VolumeType, size_gib: u64) -> u64 {
    match kind {
        VolumeType::Gp2 => (3 * size_gib).clamp(100, 16_000),
        VolumeType::St1 => 500,
        VolumeType::Sc1 => 250,
        _ => 100,
    }
}

/// Throughput of the types that do not take `Throughput`: the documented ceiling.
fn ceiling_throughput(kind: VolumeType, size_gib: u64) -> u64 {
    let tib = size_gib.div_ceil(1024);
    match kind {
        VolumeType::Gp2 => 250,
        VolumeType::Io1 => 1000,
        VolumeType::Io2 => 4000,
        VolumeType::St1 => (40 * tib).clamp(40, 500),
        VolumeType::Sc1 => (12 * tib).clamp(12, 250),
        _ => 90,
    }
}

#[cfg(test)]
mod tests {
    use super::VolumeType::*;
    use super::*;

    #[test]
    fn sizes_follow_the_documented_ranges() {
        for (kind, min, max) in [
            (Gp2, 1, 16_384),
            (Gp3, 1, 65_536),
            (Io1, 4, 16_384),
            (Io2, 4, 65_536),
            (St1, 125, 16_384),
            (Sc1, 125, 16_384),
            (Standard, 1, 1024),
        ] {
            let iops = matches!(kind, Io1 | Io2).then_some(100);
            assert!(
                VolumeSpec::new(kind, min, iops, None).is_ok(),
                "{kind} {min}"
            );
            assert!(
                VolumeSpec::new(kind, max, iops, None).is_ok(),
                "{kind} {max}"
            );
            let low = VolumeSpec::new(kind, min - 1, iops, None).unwrap_err();
            assert_eq!(low.code(), "InvalidParameterValue");
            assert!(matches!(low, SpecError::Size { .. }));
            assert!(VolumeSpec::new(kind, max + 1, iops, None).is_err());
        }
    }

    #[test]
    fn gp2_iops_follow_size() {
        assert_eq!(VolumeSpec::new(Gp2, 8, None, None).unwrap().iops, 100);
        assert_eq!(VolumeSpec::new(Gp2, 100, None, None).unwrap().iops, 300);
        assert_eq!(
            VolumeSpec::new(Gp2, 16_000, None, None).unwrap().iops,
            16_000
        );
        let e = VolumeSpec::new(Gp2, 100, Some(300), None).unwrap_err();
        assert_eq!(e.code(), "InvalidParameterCombination");
    }

    #[test]
    fn gp3_defaults_ratios_and_throughput() {
        let v = VolumeSpec::new(Gp3, 1, None, None).unwrap();
        assert_eq!((v.iops, v.throughput), (3000, 125));
        assert!(VolumeSpec::new(Gp3, 1, Some(2999), None).is_err());
        // 500 IOPS per GiB above the baseline.
        assert!(VolumeSpec::new(Gp3, 10, Some(5000), None).is_ok());
        let e = VolumeSpec::new(Gp3, 10, Some(5001), None).unwrap_err();
        assert!(matches!(e, SpecError::IopsRatio { .. }), "{e}");
        assert!(VolumeSpec::new(Gp3, 200, Some(80_001), None).is_err());
        // Throughput at most IOPS/4.
        assert!(VolumeSpec::new(Gp3, 100, Some(4000), Some(1000)).is_ok());
        assert!(VolumeSpec::new(Gp3, 100, Some(4000), Some(1001)).is_err());
        assert!(VolumeSpec::new(Gp3, 100, None, Some(124)).is_err());
        assert!(VolumeSpec::new(Gp3, 100, None, Some(2001)).is_err());
    }

    #[test]
    fn provisioned_iops_types() {
        assert_eq!(
            VolumeSpec::new(Io1, 10, None, None).unwrap_err().code(),
            "MissingParameter"
        );
        assert!(VolumeSpec::new(Io1, 10, Some(500), None).is_ok());
        assert!(VolumeSpec::new(Io1, 10, Some(501), None).is_err());
        assert!(VolumeSpec::new(Io1, 10, Some(99), None).is_err());
        assert!(VolumeSpec::new(Io2, 10, Some(10_000), None).is_ok());
        assert!(VolumeSpec::new(Io2, 10, Some(10_001), None).is_err());
        assert!(VolumeSpec::new(Io2, 300, Some(256_001), None).is_err());
        assert_eq!(
            VolumeSpec::new(Io2, 10, Some(1000), Some(200))
                .unwrap_err()
                .code(),
            "InvalidParameterCombination"
        );
        assert!(VolumeSpec::new(St1, 500, Some(100), None).is_err());
    }

    #[test]
    fn rate_args_carry_iops_and_bytes() {
        let v = VolumeSpec::new(Gp3, 8, None, None).unwrap();
        assert_eq!(
            v.rate_args(),
            "iops=3000,iops_burst=300,bps=131072000,bps_burst=13107200"
        );
        let v = VolumeSpec::new(Io2, 20, Some(10_000), None).unwrap();
        assert!(v.rate_args().starts_with("iops=10000,iops_burst=1000,"));
        assert!(
            VolumeSpec::new(Gp2, 8, None, None)
                .unwrap()
                .rate_args()
                .starts_with("iops=100,iops_burst=3000,")
        );
        for kind in VolumeType::ALL {
            assert_eq!(VolumeType::parse(kind.name()), Some(kind));
        }
    }
}
