//! The burn schedule on a fake clock: the duty cycle per window, share changes, and that an
//! idle vCPU waits with no deadline.

use super::*;

/// 1 GHz: a tick is a nanosecond.
const CLOCK: Clock = Clock::new(1_000_000);
const WINDOW: u64 = WINDOW_MS * 1_000_000;

/// A vCPU on a fake TSC: spinning and waiting move time on; it counts busy ticks and records
/// the waits asked for.
struct FakeCpu<'a> {
    burn: &'a Burn,
    now: u64,
    busy: u64,
    /// Extra ticks every timed wait takes (the host waking the thread late).
    overshoot: u64,
    waits: Vec<Option<u64>>,
    /// Share changes to make at given times, earliest first.
    changes: Vec<(u64, u8)>,
    /// Whether a change also wakes a waiting vCPU (as the HTTP answer's transmission does).
    changes_wake: bool,
    /// When vCPU 0 settles the options (no device event comes with it).
    settle_at: Option<u64>,
}

impl<'a> FakeCpu<'a> {
    fn new(burn: &'a Burn, now: u64) -> Self {
        Self {
            burn,
            now,
            busy: 0,
            overshoot: 0,
            waits: Vec::new(),
            changes: Vec::new(),
            changes_wake: false,
            settle_at: None,
        }
    }
}

impl Cpu for FakeCpu<'_> {
    fn now(&mut self) -> u64 {
        if self.settle_at.is_some_and(|at| at <= self.now) {
            self.burn.enter(Phase::Settled);
            self.settle_at = None;
        }
        while let Some(&(at, share)) = self.changes.first() {
            if at > self.now {
                break;
            }
            self.burn.set(share);
            self.changes.remove(0);
        }
        self.now
    }

    fn spin_until(&mut self, until: u64) {
        assert!(until > self.now, "a spin must move time on");
        self.busy += until - self.now;
        self.now = until;
    }

    fn wait(&mut self, micros: Option<u64>) -> Wake {
        self.waits.push(micros);
        match micros {
            Some(micros) => {
                let end = self.now + CLOCK.ticks_from_micros(micros) + self.overshoot;
                match self.changes.first() {
                    Some(&(at, _)) if self.changes_wake && at <= end => {
                        self.now = self.now.max(at);
                        Wake::Device
                    }
                    _ => {
                        self.now = end;
                        Wake::Timeout
                    }
                }
            }
            // Nothing would wake this vCPU but a device: the test plays one at the next change
            // (or stops here).
            None => {
                if let Some(&(at, _)) = self.changes.first() {
                    self.now = self.now.max(at);
                }
                Wake::Device
            }
        }
    }
}

#[test]
fn steps_within_a_window() {
    assert_eq!(step(0, 12_345, 1000), Step::Idle { until: None });
    assert_eq!(step(50, 0, 1000), Step::Spin { until: 500 });
    assert_eq!(step(50, 2499, 1000), Step::Spin { until: 2500 });
    assert_eq!(step(50, 2500, 1000), Step::Idle { until: Some(3000) });
    assert_eq!(step(50, 2999, 1000), Step::Idle { until: Some(3000) });
    assert_eq!(step(1, 3005, 1000), Step::Spin { until: 3010 });
    assert_eq!(step(1, 3010, 1000), Step::Idle { until: Some(4000) });
    assert_eq!(step(100, 3999, 1000), Step::Spin { until: 4000 });
    // No overflow at the end of the TSC's range.
    assert_eq!(
        step(50, u64::MAX - 1, 1000),
        Step::Idle {
            until: Some(u64::MAX)
        }
    );
    assert_eq!(step(50, 5, 0), Step::Idle { until: None });
}

/// Busy ticks over ten windows, from a start in the middle of a window.
fn busy_over_ten_windows(share: u8, overshoot: u64) -> u64 {
    let burn = Burn::new();
    burn.enter(Phase::Settled);
    burn.set(share);
    let start = 7 * WINDOW + 12_345;
    let mut cpu = FakeCpu::new(&burn, start);
    cpu.overshoot = overshoot;
    let deadline = start + 10 * WINDOW;
    assert_eq!(
        wait_until(&burn, &mut cpu, CLOCK, Some(deadline)),
        Wake::Timeout
    );
    assert!(cpu.now >= deadline);
    cpu.busy
}

#[test]
fn keeps_the_share_of_each_window() {
    for share in [1u8, 10, 25, 50, 75, 99, 100] {
        let busy = busy_over_ten_windows(share, 0);
        let expected = 10 * WINDOW * u64::from(share) / 100;
        // The first window started before the vCPU came: at most its busy part is missed.
        let slack = WINDOW * u64::from(share) / 100;
        assert!(
            busy <= expected && busy + slack >= expected,
            "share {share}: busy {busy} of {expected}"
        );
    }
}

#[test]
fn late_wakes_only_shorten_the_busy_part() {
    // Waking 2 ms late each window costs those 2 ms of burn, never more than the share.
    let busy = busy_over_ten_windows(50, 2_000_000);
    let expected = 10 * WINDOW / 2;
    assert!(
        busy <= expected && busy + 11 * 2_000_000 + WINDOW / 2 >= expected,
        "{busy}"
    );
}

#[test]
fn an_idle_vcpu_waits_without_a_deadline() {
    let burn = Burn::new();
    burn.enter(Phase::Settled);
    let mut cpu = FakeCpu::new(&burn, 1000);
    assert_eq!(wait_until(&burn, &mut cpu, CLOCK, None), Wake::Device);
    assert_eq!(cpu.waits, [None]);
    assert_eq!(cpu.busy, 0);
}

#[test]
fn other_vcpus_look_again_until_settled() {
    let burn = Burn::new();
    assert_eq!(burn.phase(), Phase::Booting);
    assert_eq!(burn.idle_limit_micros(), Some(BOOT_POLL_MICROS));
    burn.enter(Phase::Pending);
    assert_eq!(burn.idle_limit_micros(), Some(PENDING_POLL_MICROS));

    // A share set meanwhile (user-data, no device event) is taken up within the limit.
    let mut cpu = FakeCpu::new(&burn, 0);
    cpu.changes.push((300_000_000, 40));
    let deadline = 2_000_000_000;
    wait_until(&burn, &mut cpu, CLOCK, Some(deadline));
    // Idle until 1 s (the limit), then 40% of the ten windows from 1 s to 2 s.
    assert_eq!(cpu.waits[0], Some(PENDING_POLL_MICROS));
    assert_eq!(cpu.busy, 10 * WINDOW * 40 / 100);

    burn.enter(Phase::Settled);
    assert_eq!(burn.idle_limit_micros(), None);
}

#[test]
fn changes_are_taken_up_within_a_window() {
    let burn = Burn::new();
    burn.enter(Phase::Settled);
    burn.set(60);
    let mut cpu = FakeCpu::new(&burn, 0);
    cpu.changes_wake = true;
    // 60% for 1 s, then 0 at 1.05 s (mid-burn), then 20% at 3 s (a device event wakes it).
    cpu.changes.push((1_050_000_000, 0));
    cpu.changes.push((3_000_000_000, 20));
    let deadline = 4_000_000_000;
    loop {
        if wait_until(&burn, &mut cpu, CLOCK, Some(deadline)) == Wake::Timeout {
            break;
        }
    }
    // 10 windows at 60%, the 11th's busy part up to the change (at most the whole part),
    // nothing between 1.1 s and 3 s, then 10 windows at 20%.
    let before = 10 * WINDOW * 60 / 100;
    let after = 10 * WINDOW * 20 / 100;
    assert!(cpu.busy >= before + after && cpu.busy <= before + after + WINDOW * 60 / 100);
    // At share 0 the vCPU waited for the deadline (or a device) in one go, not periodically.
    let idle_waits: Vec<_> = cpu.waits.iter().filter(|w| **w > Some(1_000_000)).collect();
    assert_eq!(idle_waits, [&Some(2_940_000)], "{:?}", cpu.waits);
}

/// Settling (vCPU 0 has read its options, no device event) ends the polling: the next idle
/// part waits for the deadline (or a device) in one go.
#[test]
fn polling_stops_once_settled() {
    let burn = Burn::new();
    let mut cpu = FakeCpu::new(&burn, 0);
    cpu.settle_at = Some(10_000_000);
    assert_eq!(
        wait_until(&burn, &mut cpu, CLOCK, Some(1_000_000_000)),
        Wake::Timeout
    );
    assert_eq!(
        cpu.waits.len(),
        11,
        "{:?}",
        &cpu.waits[..20.min(cpu.waits.len())]
    );
    assert!(cpu.waits[..10].iter().all(|w| *w == Some(BOOT_POLL_MICROS)));
    assert_eq!(cpu.waits[10], Some(990_000));
    assert_eq!(cpu.busy, 0);
}
