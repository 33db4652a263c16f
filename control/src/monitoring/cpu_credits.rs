//! A burstable instance's CPU credits (`CPUCreditUsage`, `CPUCreditBalance`), kept as EC2's
//! standard mode does: credits earned at the type's rate while running, spent at one per
//! vCPU-minute of CPU time, banked up to 24 hours of earnings, never below zero. (The agent
//! does not throttle an instance whose balance is spent: the metrics show it, as on an
//! instance in unlimited mode.)

use host::compute::catalog::CpuCredits;

/// One instance's balance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ledger {
    /// Its type's rates.
    pub rates: CpuCredits,
    /// Credits banked.
    pub balance: f64,
}

/// What a window did to a ledger.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spent {
    /// Credits used in the window (`CPUCreditUsage`).
    pub usage: f64,
    /// The balance at its end (`CPUCreditBalance`).
    pub balance: f64,
}

impl Ledger {
    /// A ledger starting at `balance` (the launch credits of a new instance, or the last
    /// balance recorded), held within the type's bounds.
    pub fn new(rates: CpuCredits, balance: f64) -> Self {
        Self {
            rates,
            balance: balance.clamp(0.0, rates.max_balance),
        }
    }

    /// Books a window of `seconds` in which the vCPUs used `cpu_seconds` in all.
    pub fn book(&mut self, seconds: f64, cpu_seconds: f64) -> Spent {
        let earned = self.rates.per_hour * seconds.max(0.0) / 3600.0;
        let usage = cpu_seconds.max(0.0) / 60.0;
        self.balance = (self.balance + earned - usage).clamp(0.0, self.rates.max_balance);
        Spent {
            usage,
            balance: self.balance,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use host::compute::catalog::cpu_credits;

    #[test]
    fn at_the_baseline_the_balance_holds() {
        // t2.micro: 6 credits an hour is 10 % of one vCPU.
        let mut l = Ledger::new(cpu_credits("t2.micro").unwrap(), 30.0);
        let s = l.book(3600.0, 360.0);
        assert!((s.usage - 6.0).abs() < 1e-9);
        assert!((s.balance - 30.0).abs() < 1e-9);
    }

    #[test]
    fn bursting_spends_and_idling_earns_within_bounds() {
        let rates = cpu_credits("t2.nano").unwrap();
        let mut l = Ledger::new(rates, 30.0);
        // One vCPU flat out for an hour: 60 spent, 3 earned; the balance stops at zero.
        let s = l.book(3600.0, 3600.0);
        assert_eq!((s.usage, s.balance), (60.0, 0.0));
        // Idle for two days: earns 3 an hour up to 72.
        let s = l.book(48.0 * 3600.0, 0.0);
        assert_eq!((s.usage, s.balance), (0.0, 72.0));
        assert_eq!(Ledger::new(rates, 1e9).balance, 72.0);
        assert_eq!(Ledger::new(rates, -5.0).balance, 0.0);
    }
}
