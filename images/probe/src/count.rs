//! `probe.mode=count`: prints `probe: count <n>` every second, forever, blocking on the wait
//! port between ticks (burning meanwhile under `probe.burn=`) and watching the keyboard for
//! Ctrl-Alt-Del.

use crate::burn::{self, ThisCpu};
use crate::keyboard::Keyboard;
use crate::power;
use crate::say;
use crate::time::{self, Clock};

/// The TSC time of the tick after the one due at `due`, given the time `now`: one period
/// later, or one period from `now` if the probe fell a whole period behind (no burst of ticks).
pub const fn next_tick(due: u64, now: u64, period: u64) -> u64 {
    let next = due.saturating_add(period);
    if next <= now {
        now.saturating_add(period)
    } else {
        next
    }
}

/// Counts forever (until Ctrl-Alt-Del or the power button powers the VM off).
pub fn run(clock: Clock, keyboard: &mut Keyboard) -> ! {
    let period = clock.ticks_per_second();
    let mut due = time::now().saturating_add(period);
    let mut count: u64 = 0;
    loop {
        if let Some(request) = keyboard.poll() {
            power::shut_down(request);
        }
        let now = time::now();
        if now >= due {
            count += 1;
            say!("count {count}");
            due = next_tick(due, now, period);
        } else {
            burn::wait_until(&burn::SHARED, &mut ThisCpu, clock, Some(due));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_keep_cadence_and_never_burst() {
        assert_eq!(next_tick(1000, 1001, 1000), 2000);
        assert_eq!(next_tick(1000, 1999, 1000), 2000);
        assert_eq!(next_tick(1000, 2000, 1000), 3000);
        assert_eq!(next_tick(1000, 5500, 1000), 6500);
        assert_eq!(next_tick(u64::MAX - 1, u64::MAX, 1000), u64::MAX);
    }
}
