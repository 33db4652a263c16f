//! The instance-type catalog, with EC2's real vCPU and memory sizes.

/// One instance type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceType {
    /// For example `t2.micro`.
    pub name: &'static str,
    /// vCPUs.
    pub vcpus: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Burstable (t2/t3).
    pub burstable: bool,
}

const fn t(name: &'static str, vcpus: u32, memory_mib: u64, burstable: bool) -> InstanceType {
    InstanceType {
        name,
        vcpus,
        memory_mib,
        burstable,
    }
}

/// Every type this host offers.
pub const INSTANCE_TYPES: &[InstanceType] = &[
    t("t2.nano", 1, 512, true),
    t("t2.micro", 1, 1024, true),
    t("t2.small", 1, 2048, true),
    t("t2.medium", 2, 4096, true),
    t("t2.large", 2, 8192, true),
    t("t3.micro", 2, 1024, true),
    t("t3.small", 2, 2048, true),
    t("t3.medium", 2, 4096, true),
    t("m5.large", 2, 8192, false),
    t("m5.xlarge", 4, 16384, false),
    t("c5.large", 2, 4096, false),
    t("c5.xlarge", 4, 8192, false),
    t("r5.large", 2, 16384, false),
    // EBS: types with local NVMe instance store.
    t("c5d.large", 2, 4096, false),
    t("m5d.large", 2, 8192, false),
    t("r5d.large", 2, 16384, false),
    t("m5d.xlarge", 4, 16384, false),
];

/// Instance-store size in GB (10^9 bytes) of the types that have one, as on EC2
/// (one NVMe SSD each).
pub fn instance_store_gb(name: &str) -> Option<u64> {
    match name {
        "c5d.large" => Some(50),
        "m5d.large" | "r5d.large" => Some(75),
        "m5d.xlarge" => Some(150),
        _ => None,
    }
}

/// How a burstable (T-family) type earns and spends CPU credits, as EC2 documents them: one
/// credit is one vCPU at 100 % for one minute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuCredits {
    /// Credits earned per hour (the baseline: `per_hour / 60` vCPUs busy all the time).
    pub per_hour: f64,
    /// The most that can be banked: 24 hours of earnings.
    pub max_balance: f64,
    /// Credits given at launch (T2 only; T3 gets none).
    pub launch: f64,
}

/// The CPU credits of burstable type `name` (`None` for other types).
pub fn cpu_credits(name: &str) -> Option<CpuCredits> {
    let (per_hour, launch) = match name {
        "t2.nano" => (3.0, 30.0),
        "t2.micro" => (6.0, 30.0),
        "t2.small" => (12.0, 30.0),
        "t2.medium" => (24.0, 60.0),
        "t2.large" => (36.0, 60.0),
        "t3.micro" => (12.0, 0.0),
        "t3.small" | "t3.medium" => (24.0, 0.0),
        _ => return None,
    };
    Some(CpuCredits {
        per_hour,
        max_balance: per_hour * 24.0,
        launch,
    })
}

/// Looks a type up by name.
pub fn lookup(name: &str) -> Option<&'static InstanceType> {
    INSTANCE_TYPES.iter().find(|t| t.name == name)
}

/// The names, for error messages.
pub fn names() -> String {
    INSTANCE_TYPES
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_burstable_type_earns_credits_and_no_other_does() {
        for t in INSTANCE_TYPES {
            assert_eq!(cpu_credits(t.name).is_some(), t.burstable, "{}", t.name);
        }
        let micro = cpu_credits("t2.micro").unwrap();
        assert_eq!(
            (micro.per_hour, micro.max_balance, micro.launch),
            (6.0, 144.0, 30.0)
        );
    }

    #[test]
    fn real_sizes() {
        assert_eq!(
            lookup("t2.micro").map(|t| (t.vcpus, t.memory_mib)),
            Some((1, 1024))
        );
        assert_eq!(
            lookup("r5.large").map(|t| (t.vcpus, t.memory_mib)),
            Some((2, 16384))
        );
        assert!(lookup("t2.huge").is_none());
    }
}
