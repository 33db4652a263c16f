//! Host capacity: the vCPU and memory budgets launches must fit in.

/// The budgets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capacity {
    /// vCPUs all live instances may hold together.
    pub vcpus: u64,
    /// MiB all live instances may hold together.
    pub memory_mib: u64,
}

impl Capacity {
    /// The host's cores and memory times the overcommit ratios, unless given outright.
    pub fn from_host(
        vcpus: Option<u64>,
        memory_mib: Option<u64>,
        cpu_ratio: f64,
        mem_ratio: f64,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        Self {
            vcpus: vcpus.unwrap_or((cores * cpu_ratio) as u64),
            memory_mib: memory_mib.unwrap_or((host_memory_mib() as f64 * mem_ratio) as u64),
        }
    }

    /// Whether `want` more fits on top of `used`.
    pub fn fits(&self, used: (u64, u64), want: (u64, u64)) -> bool {
        used.0 + want.0 <= self.vcpus && used.1 + want.1 <= self.memory_mib
    }
}

/// The host's RAM in MiB, from `/proc/meminfo`.
pub fn host_memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(1024, |kb| kb / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_counts_both_budgets() {
        let c = Capacity {
            vcpus: 4,
            memory_mib: 4096,
        };
        assert!(c.fits((2, 2048), (2, 2048)));
        assert!(!c.fits((3, 0), (2, 1)));
        assert!(!c.fits((0, 4000), (1, 1024)));
    }
}
