//! The paravirtual ports of the probe ABI (`docs/probe-abi.md`): power off, and a wait that
//! blocks a vCPU in the VMM, at no host CPU cost, until a device has work or a deadline passes.
//!
//! Each vCPU has its own deadline, so this state lives with the vCPU, not on the shared bus.

use std::time::{Duration, Instant};

use crate::control::{ExitReason, VmControl, WaitOutcome};

/// First port of the block.
pub const BASE: u16 = 0x700;
/// Number of ports in the block.
pub const LEN: u16 = 0x10;
/// out32: power off with the given status.
pub const POWER_OFF: u16 = 0x700;
/// out32: arm the deadline (microseconds from now); in32: wait.
pub const WAIT: u16 = 0x704;
/// Deadline value meaning "no deadline".
pub const NO_DEADLINE: u32 = u32::MAX;

/// One vCPU's paravirtual-port state.
#[derive(Debug, Default)]
pub struct PvPort {
    deadline: Option<Instant>,
    seen_events: u64,
}

fn le_u32(data: &[u8]) -> u32 {
    let mut bytes = [0u8; 4];
    let n = data.len().min(4);
    bytes[..n].copy_from_slice(&data[..n]);
    u32::from_le_bytes(bytes)
}

impl PvPort {
    /// A port whose deadline is `remaining_us` from now, as a snapshot left it.
    pub fn restored(remaining_us: Option<u64>) -> Self {
        PvPort {
            deadline: remaining_us.map(|us| Instant::now() + Duration::from_micros(us)),
            seen_events: 0,
        }
    }

    /// The armed deadline as microseconds from now (0 if it has passed), for a snapshot.
    pub fn remaining_us(&self) -> Option<u64> {
        self.deadline.map(|d| {
            d.saturating_duration_since(Instant::now())
                .as_micros()
                .min(u128::from(u64::MAX)) as u64
        })
    }

    /// Whether `port` belongs to this block.
    pub fn claims(port: u16) -> bool {
        (BASE..BASE + LEN).contains(&port)
    }

    /// Handles a write.
    pub fn write(&mut self, port: u16, data: &[u8], control: &VmControl) {
        let value = le_u32(data);
        match port {
            POWER_OFF => {
                control.request_exit(ExitReason::PowerOff(value));
            }
            WAIT => {
                self.deadline = (value != NO_DEADLINE)
                    .then(|| Instant::now() + Duration::from_micros(u64::from(value)));
            }
            _ => {}
        }
    }

    /// Handles a read; a read of the wait port blocks.
    pub fn read(&mut self, port: u16, data: &mut [u8], control: &VmControl) {
        let value: u32 = match port {
            WAIT => {
                control
                    .counters
                    .waits
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match control.guest_wait(&mut self.seen_events, self.deadline) {
                    // A snapshot ends the wait early, like a device event.
                    WaitOutcome::Event | WaitOutcome::Interrupted => 1,
                    WaitOutcome::Timeout | WaitOutcome::Stopping => 0,
                }
            }
            _ => 0,
        };
        let bytes = value.to_le_bytes();
        for (dst, src) in data
            .iter_mut()
            .zip(bytes.iter().chain(std::iter::repeat(&0)))
        {
            *dst = *src;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_off_carries_the_status() {
        let control = VmControl::new(1);
        PvPort::default().write(POWER_OFF, &7u32.to_le_bytes(), &control);
        assert_eq!(control.wait_for_exit(), ExitReason::PowerOff(7));
    }

    #[test]
    fn wait_times_out_at_the_armed_deadline() {
        let control = VmControl::new(1);
        let mut port = PvPort::default();
        port.write(WAIT, &20_000u32.to_le_bytes(), &control);
        let start = Instant::now();
        let mut out = [0xffu8; 4];
        port.read(WAIT, &mut out, &control);
        assert_eq!(u32::from_le_bytes(out), 0);
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn wait_returns_one_for_a_device_event() {
        let control = VmControl::new(1);
        let mut port = PvPort::default();
        port.write(WAIT, &NO_DEADLINE.to_le_bytes(), &control);
        control.notify_event();
        let mut out = [0u8; 4];
        port.read(WAIT, &mut out, &control);
        assert_eq!(u32::from_le_bytes(out), 1);
        assert!(PvPort::claims(0x704) && !PvPort::claims(0x710));
    }
}
