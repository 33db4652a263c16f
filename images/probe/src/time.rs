//! Time from the TSC, at the frequency the vmm passes at entry (`rcx`, in kHz).

use core::arch::asm;

/// TSC frequency assumed when the vmm passes 0 (unknown): 1 GHz.
pub const FALLBACK_TSC_KHZ: u64 = 1_000_000;

/// Reads the time-stamp counter.
#[inline]
pub fn now() -> u64 {
    let (low, high): (u32, u32);
    // SAFETY: `rdtsc` only reads the TSC into edx:eax; the ABI allows it at CPL3.
    unsafe {
        asm!("rdtsc", out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags));
    }
    (u64::from(high) << 32) | u64::from(low)
}

/// Converts between TSC ticks and wall-clock units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    khz: u64,
}

impl Clock {
    /// A clock for a TSC of `khz` kHz; 0 (unknown) falls back to [`FALLBACK_TSC_KHZ`].
    pub const fn new(khz: u64) -> Self {
        Self {
            khz: if khz == 0 { FALLBACK_TSC_KHZ } else { khz },
        }
    }

    /// The TSC frequency in kHz this clock uses.
    pub const fn khz(self) -> u64 {
        self.khz
    }

    /// TSC ticks in `millis` milliseconds.
    pub const fn ticks_from_millis(self, millis: u64) -> u64 {
        self.khz.saturating_mul(millis)
    }

    /// TSC ticks in `micros` microseconds.
    pub const fn ticks_from_micros(self, micros: u64) -> u64 {
        self.khz.saturating_mul(micros) / 1000
    }

    /// TSC ticks in one second.
    pub const fn ticks_per_second(self) -> u64 {
        self.ticks_from_millis(1000)
    }

    /// Whole microseconds in `ticks`, rounded up (a deadline never fires early), saturating.
    pub fn micros_ceil(self, ticks: u64) -> u64 {
        let micros = (u128::from(ticks) * 1000).div_ceil(u128::from(self.khz));
        u64::try_from(micros).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_ticks() {
        let clock = Clock::new(2_500_000); // 2.5 GHz
        assert_eq!(clock.ticks_per_second(), 2_500_000_000);
        assert_eq!(clock.ticks_from_millis(5000), 12_500_000_000);
        assert_eq!(clock.micros_ceil(2_500), 1);
        assert_eq!(clock.micros_ceil(2_501), 2);
        assert_eq!(clock.micros_ceil(0), 0);
        assert_eq!(clock.micros_ceil(u64::MAX), 7_378_697_629_483_821);
    }

    #[test]
    fn unknown_frequency_falls_back() {
        assert_eq!(Clock::new(0).khz(), FALLBACK_TSC_KHZ);
    }

    #[test]
    fn tsc_advances() {
        let a = now();
        let b = now();
        assert!(b >= a);
    }
}
