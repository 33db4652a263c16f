//! Start-up rendezvous: every vCPU reports in; vCPU 0 waits (bounded) for the rest.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::keyboard::Keyboard;
use crate::power;
use crate::time::{self, Clock};
use crate::wait;

/// How long vCPU 0 waits for the others, in milliseconds of TSC time.
pub const UP_TIMEOUT_MS: u64 = 5000;
/// The wait-port deadline between checks while waiting, in microseconds.
const POLL_MICROS: u64 = 1000;

/// vCPUs that have reported in.
static UP: AtomicU64 = AtomicU64::new(0);

/// Reports this vCPU as up (after it printed its line).
pub fn report_up() {
    UP.fetch_add(1, Ordering::AcqRel);
}

/// vCPUs up so far.
pub fn up() -> u64 {
    UP.load(Ordering::Acquire)
}

/// Waits until `count` vCPUs are up or [`UP_TIMEOUT_MS`] pass; `Err` carries how many came up.
/// Powers off if the keyboard sends Ctrl-Alt-Del or the power button is pressed meanwhile.
pub fn wait_for_all(count: u64, clock: Clock, keyboard: &mut Keyboard) -> Result<(), u64> {
    let deadline = time::now().saturating_add(clock.ticks_from_millis(UP_TIMEOUT_MS));
    loop {
        if let Some(request) = keyboard.poll() {
            power::shut_down(request);
        }
        let up = up();
        if up >= count {
            return Ok(());
        }
        let now = time::now();
        if now >= deadline {
            return Err(up);
        }
        wait::wait_micros(clock.micros_ceil(deadline - now).min(POLL_MICROS));
    }
}
