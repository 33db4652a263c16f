//! `probe.burn=PCT` and `GET /burn/<PCT>`: every vCPU keeps busy for PCT% of each
//! [`WINDOW_MS`] window (spinning on the TSC at CPL3) and blocks on the wait port for the rest,
//! so the host sees each vCPU thread busy at about PCT%.
//!
//! Windows are aligned to multiples of [`WINDOW_MS`] of TSC time, so the vCPUs burn together
//! and a vCPU that wakes late in a window only burns what is left of its busy part.
//!
//! How a change reaches the other vCPUs (they are not polled by anyone): one [`Burn`] is shared
//! by all vCPUs. vCPU 0 alone changes it (command line, user-data, HTTP); the others read it
//! whenever they wake:
//! - while burning, at the end of every busy part and every window (at most 100 ms late);
//! - at share 0, only when a device event ends their wait (the wait port wakes every waiting
//!   vCPU on each event). A change through HTTP is always followed by one: vCPU 0 stores the
//!   share before it queues the answer, and the finished transmission is an event. So an idle
//!   probe still costs nothing: at share 0 the other vCPUs wait with no deadline.
//! - during boot nothing guarantees an event, so until vCPU 0 has read its options
//!   ([`Phase::Booting`]) they look every [`BOOT_POLL_MICROS`], and until the user-data of a
//!   metadata fetch has been applied ([`Phase::Pending`]) every [`PENDING_POLL_MICROS`].

use core::sync::atomic::{AtomicU8, Ordering};

use crate::keyboard::Keyboard;
use crate::power;
use crate::say;
use crate::time::{self, Clock};
use crate::wait::{self, Wake};

/// The length of one burn window.
pub const WINDOW_MS: u64 = 100;
/// The largest share, in percent.
pub const MAX_SHARE: u8 = 100;
/// How often the other vCPUs look at the share while vCPU 0 has not read its options yet.
pub const BOOT_POLL_MICROS: u64 = 1000;
/// How often they look while the user-data of a metadata fetch may still set a share.
pub const PENDING_POLL_MICROS: u64 = 1_000_000;

/// What a vCPU does next under a share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Keep busy until this TSC time.
    Spin {
        /// The end of the busy part.
        until: u64,
    },
    /// Block on the wait port until this TSC time (`None`: until a device has work).
    Idle {
        /// The start of the next window, or `None` at share 0.
        until: Option<u64>,
    },
}

/// The step at TSC time `now` under `share` percent, with windows of `window` ticks aligned
/// to multiples of `window`: busy for the first `share`% of each window, idle for the rest.
pub fn step(share: u8, now: u64, window: u64) -> Step {
    if share == 0 || window == 0 {
        return Step::Idle { until: None };
    }
    let start = now - now % window;
    let busy = u64::try_from(u128::from(window) * u128::from(share.min(MAX_SHARE)) / 100)
        .unwrap_or(window);
    let next = start.saturating_add(window);
    if now < start.saturating_add(busy) {
        Step::Spin {
            until: start.saturating_add(busy),
        }
    } else {
        Step::Idle { until: Some(next) }
    }
}

/// How far vCPU 0 has got with the options that may set the share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// The command line has not been read yet.
    Booting = 0,
    /// The command line is applied; user-data may still set a share.
    Pending = 1,
    /// Only HTTP may change the share from now on.
    Settled = 2,
}

/// The share every vCPU burns at, shared by all of them.
#[derive(Debug)]
pub struct Burn {
    share: AtomicU8,
    phase: AtomicU8,
}

/// The probe's one [`Burn`].
pub static SHARED: Burn = Burn::new();

impl Default for Burn {
    fn default() -> Self {
        Self::new()
    }
}

impl Burn {
    /// Share 0, booting.
    pub const fn new() -> Self {
        Self {
            share: AtomicU8::new(0),
            phase: AtomicU8::new(Phase::Booting as u8),
        }
    }

    /// The share asked for, in percent.
    pub fn share(&self) -> u8 {
        self.share.load(Ordering::Acquire).min(MAX_SHARE)
    }

    /// Asks for `share` percent (at most 100) and prints `probe: burn <share>%` if that changes
    /// it; true if it did.
    pub fn set(&self, share: u8) -> bool {
        let share = share.min(MAX_SHARE);
        let changed = self.share.swap(share, Ordering::AcqRel) != share;
        if changed {
            say!("burn {share}%");
        }
        changed
    }

    /// Where vCPU 0 is with its options.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Booting,
            1 => Phase::Pending,
            _ => Phase::Settled,
        }
    }

    /// Moves to `phase` (vCPU 0, after applying the options that belong before it).
    pub fn enter(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
    }

    /// The longest an idle vCPU other than vCPU 0 may wait before looking at the share again:
    /// `None` (no limit) once settled.
    pub fn idle_limit_micros(&self) -> Option<u64> {
        match self.phase() {
            Phase::Booting => Some(BOOT_POLL_MICROS),
            Phase::Pending => Some(PENDING_POLL_MICROS),
            Phase::Settled => None,
        }
    }
}

/// What the burn loop needs from a vCPU: the TSC, a busy wait, the wait port. Host tests put a
/// fake clock behind it.
pub trait Cpu {
    /// The TSC.
    fn now(&mut self) -> u64;
    /// Keeps busy until the TSC reaches `until`.
    fn spin_until(&mut self, until: u64);
    /// Blocks on the wait port for `micros` (`None`: until a device has work).
    fn wait(&mut self, micros: Option<u64>) -> Wake;
}

/// The vCPU the code runs on.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThisCpu;

impl Cpu for ThisCpu {
    fn now(&mut self) -> u64 {
        time::now()
    }

    fn spin_until(&mut self, until: u64) {
        while time::now() < until {
            core::hint::spin_loop();
        }
    }

    fn wait(&mut self, micros: Option<u64>) -> Wake {
        match micros {
            Some(micros) => wait::wait_micros(micros),
            None => wait::wait_for_device(),
        }
    }
}

/// Waits like the wait port until TSC time `deadline` (`None`: no deadline) or a device wakes
/// the vCPU, burning meanwhile at `burn`'s share; an idle part also ends after
/// [`Burn::idle_limit_micros`] (then the share and the limit are read again). Returns
/// [`Wake::Device`] if a device ended an idle part, [`Wake::Timeout`] at the deadline.
pub fn wait_until(burn: &Burn, cpu: &mut impl Cpu, clock: Clock, deadline: Option<u64>) -> Wake {
    let window = clock.ticks_from_millis(WINDOW_MS);
    loop {
        let now = cpu.now();
        if deadline.is_some_and(|d| now >= d) {
            return Wake::Timeout;
        }
        match step(burn.share(), now, window) {
            Step::Spin { until } => {
                cpu.spin_until(earliest(Some(until), deadline).unwrap_or(until))
            }
            Step::Idle { until } => {
                let end = earliest(until, deadline);
                let micros = end.map(|end| clock.micros_ceil(end - now));
                let micros = earliest(micros, burn.idle_limit_micros());
                if cpu.wait(micros) == Wake::Device {
                    return Wake::Device;
                }
            }
        }
    }
}

/// The earlier of two optional times (`None` is never).
fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The other vCPUs: burn at the shared share for good, looking at it again as the module
/// documentation says.
pub fn serve_other_vcpu(clock: Clock) -> ! {
    loop {
        wait_until(&SHARED, &mut ThisCpu, clock, None);
    }
}

/// vCPU 0 without a network (`probe.burn=` with no network options): burns until
/// Ctrl-Alt-Del or the power button, checking them at least once a window while burning (at
/// share 0 it waits for them with no deadline).
pub fn run(clock: Clock, keyboard: &mut Keyboard) -> ! {
    let window = clock.ticks_from_millis(WINDOW_MS);
    loop {
        if let Some(request) = keyboard.poll() {
            power::shut_down(request);
        }
        let deadline = (SHARED.share() > 0).then(|| time::now().saturating_add(window));
        wait_until(&SHARED, &mut ThisCpu, clock, deadline);
    }
}

#[cfg(test)]
mod tests;
