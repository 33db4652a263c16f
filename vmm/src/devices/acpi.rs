//! The hardware-reduced ACPI devices the tables in `arch/x86_64/acpi.rs` describe: the sleep
//! control and status registers (how a guest powers off), and a Generic Event Device (GED)
//! whose event-status register carries the power button.
//!
//! Ports: sleep control 0x600 (write), sleep status 0x601, GED event status 0x602 (read and
//! clear). The GED interrupts on `GED_IRQ`, edge-triggered, active high, as the DSDT says.

use std::sync::Arc;

use super::bus::BusDevice;
use super::irq::IrqLine;
use crate::control::{ExitReason, VmControl};

/// The sleep control register (FADT `SLEEP_CONTROL_REG`).
pub const SLEEP_CONTROL_PORT: u16 = 0x600;
/// The sleep status register (FADT `SLEEP_STATUS_REG`).
pub const SLEEP_STATUS_PORT: u16 = 0x601;
/// The GED's event-status register: reading returns the pending events and clears them.
pub const GED_STATUS_PORT: u16 = 0x602;
/// The GED's interrupt (an ISA line no other device uses: COM2's).
pub const GED_IRQ: u32 = 3;
/// The sleep type of S5 (soft off), as `_S5_` in the DSDT declares it.
pub const S5_SLEEP_TYPE: u8 = 5;
/// The power-button bit of the GED's event-status register.
pub const GED_POWER_BUTTON: u8 = 1 << 0;

/// `SLP_EN`: the write asks for the sleep state in `SLP_TYP`.
const SLEEP_ENABLE: u8 = 1 << 5;
/// `SLP_TYP`, bits 2 to 4.
const SLEEP_TYPE_SHIFT: u8 = 2;
const SLEEP_TYPE_MASK: u8 = 0b111;

/// The sleep control and status registers, at `SLEEP_CONTROL_PORT` and the port after it.
pub struct SleepControl {
    control: Arc<VmControl>,
    warned: bool,
}

impl std::fmt::Debug for SleepControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SleepControl")
            .field("warned", &self.warned)
            .finish_non_exhaustive()
    }
}

impl SleepControl {
    /// Registers ending the VM through `control` when the guest enters S5.
    pub fn new(control: Arc<VmControl>) -> Self {
        SleepControl {
            control,
            warned: false,
        }
    }

    fn write_control(&mut self, value: u8) {
        if value & SLEEP_ENABLE == 0 {
            return;
        }
        let sleep_type = (value >> SLEEP_TYPE_SHIFT) & SLEEP_TYPE_MASK;
        if sleep_type == S5_SLEEP_TYPE {
            self.control.request_exit(ExitReason::PowerOff(0));
        } else if !self.warned {
            self.warned = true;
            tracing::warn!(
                "guest asked for sleep type {sleep_type}; only S5 (power off) is supported"
            );
        }
    }
}

impl BusDevice for SleepControl {
    fn read(&mut self, _base: u64, _offset: u64, data: &mut [u8]) {
        // The status register never reports a wake event; the control register reads as 0.
        data.fill(0);
    }

    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) {
        if offset == 0 {
            if let Some(&value) = data.first() {
                self.write_control(value);
            }
        }
        // Writes to the status register (clearing WAK_STS) change nothing.
    }
}

/// The Generic Event Device: pending events and the interrupt announcing them.
pub struct Ged {
    pending: u8,
    irq: Box<dyn IrqLine>,
    control: Arc<VmControl>,
}

impl std::fmt::Debug for Ged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ged")
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl Ged {
    /// A GED raising `irq`, and waking a probe waiting through `control`.
    pub fn new(irq: Box<dyn IrqLine>, control: Arc<VmControl>) -> Self {
        Ged {
            pending: 0,
            irq,
            control,
        }
    }

    /// Presses the power button: sets its bit and interrupts the guest.
    pub fn press_power_button(&mut self) {
        self.pending |= GED_POWER_BUTTON;
        if let Err(err) = self.irq.trigger() {
            tracing::warn!("GED interrupt failed: {err}");
        }
        self.control.notify_event();
    }

    /// The events not yet read by the guest.
    pub fn pending(&self) -> u8 {
        self.pending
    }
}

impl BusDevice for Ged {
    fn read(&mut self, _base: u64, _offset: u64, data: &mut [u8]) {
        data.fill(0);
        if let Some(first) = data.first_mut() {
            *first = std::mem::take(&mut self.pending);
        }
    }

    fn write(&mut self, _base: u64, _offset: u64, _data: &[u8]) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::RunState;
    use crate::devices::irq::CountingIrq;
    use std::sync::atomic::Ordering;

    #[test]
    fn s5_write_powers_off() {
        let control = Arc::new(VmControl::new(0));
        let mut dev = SleepControl::new(control.clone());
        // What Linux writes: SLP_TYP << 2 | SLP_EN.
        dev.write(0x600, 0, &[(S5_SLEEP_TYPE << 2) | 0x20]);
        assert_eq!(control.run_state(), RunState::Stopping);
        assert_eq!(control.wait_for_exit(), ExitReason::PowerOff(0));
    }

    #[test]
    fn other_writes_are_ignored() {
        let control = Arc::new(VmControl::new(0));
        let mut dev = SleepControl::new(control.clone());
        dev.write(0x600, 0, &[S5_SLEEP_TYPE << 2]); // no SLP_EN
        dev.write(0x600, 0, &[(3 << 2) | 0x20]); // S3
        dev.write(0x600, 0, &[(3 << 2) | 0x20]); // logged once only
        dev.write(0x600, 1, &[0x80]); // clearing WAK_STS
        dev.write(0x600, 1, &[(S5_SLEEP_TYPE << 2) | 0x20]); // the status register
        assert_eq!(control.run_state(), RunState::Running);
        assert!(dev.warned);
        let mut status = [0xffu8];
        dev.read(0x600, 1, &mut status);
        assert_eq!(status, [0]);
    }

    #[test]
    fn power_button_interrupts_and_reading_clears() {
        let control = Arc::new(VmControl::new(0));
        let irq = CountingIrq::default();
        let mut ged = Ged::new(Box::new(irq.clone()), control);
        let mut byte = [0xffu8];
        ged.read(0x602, 0, &mut byte);
        assert_eq!(byte, [0], "nothing pending at first");
        ged.press_power_button();
        assert_eq!(irq.0.load(Ordering::SeqCst), 1);
        assert_eq!(ged.pending(), GED_POWER_BUTTON);
        let mut wide = [0xffu8; 4];
        ged.read(0x602, 0, &mut wide);
        assert_eq!(wide, [GED_POWER_BUTTON, 0, 0, 0]);
        ged.read(0x602, 0, &mut byte);
        assert_eq!(byte, [0], "a read clears the pending bits");
        ged.write(0x602, 0, &[0xff]);
        assert_eq!(ged.pending(), 0, "writes set nothing");
    }
}
