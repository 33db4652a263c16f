//! The vmm's wait port: blocks the vCPU (costing no host CPU) until a device has work or an
//! armed deadline passes. The probe's replacement for `hlt`, which CPL3 may not use.

#[cfg(not(test))]
use crate::ports::{self, WAIT};

/// Armed as the deadline, means "no deadline": wait for a device only.
pub const NO_DEADLINE: u32 = 0xffff_ffff;

/// Why [`wait_micros`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// A device has work for the guest (for example an i8042 scancode).
    Device,
    /// The deadline passed.
    Timeout,
}

/// Blocks until a device has work or `micros` microseconds pass (at least 1, and at most just
/// under [`NO_DEADLINE`]).
pub fn wait_micros(micros: u64) -> Wake {
    let deadline = u32::try_from(micros)
        .unwrap_or(NO_DEADLINE - 1)
        .clamp(1, NO_DEADLINE - 1);
    wait_raw(deadline)
}

/// Blocks until a device has work, with no deadline.
pub fn wait_for_device() -> Wake {
    wait_raw(NO_DEADLINE)
}

/// Idles this vCPU for good.
pub fn idle_forever() -> ! {
    loop {
        wait_for_device();
    }
}

/// Host unit tests have no wait port: they sleep briefly and report a timeout.
#[cfg(test)]
fn wait_raw(deadline: u32) -> Wake {
    std::thread::sleep(std::time::Duration::from_micros(u64::from(
        deadline.min(100),
    )));
    Wake::Timeout
}

#[cfg(not(test))]
fn wait_raw(deadline: u32) -> Wake {
    // SAFETY: the wait port only blocks this vCPU in the vmm; it has no memory effects.
    let woken = unsafe {
        ports::out32(WAIT, deadline);
        ports::in32(WAIT)
    };
    if woken == 1 {
        Wake::Device
    } else {
        Wake::Timeout
    }
}
