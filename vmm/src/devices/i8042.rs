//! Enough of the i8042 keyboard controller for a guest to reset the machine and to receive
//! Ctrl-Alt-Del.
//!
//! Port 0x64 is the status (read) and command (write) register; port 0x60 the data register.
//! Command 0xfe pulses the reset line, which ends the VM. Keys arrive as scancode set 2.

use std::collections::VecDeque;
use std::sync::Arc;

use super::bus::BusDevice;
use super::irq::IrqLine;
use crate::control::{ExitReason, VmControl};

/// Data port.
pub const DATA_PORT: u64 = 0x60;
/// Status and command port.
pub const COMMAND_PORT: u64 = 0x64;
/// The keyboard's interrupt (GSI).
pub const KBD_IRQ: u32 = 1;

const STATUS_OUTPUT_FULL: u8 = 1 << 0;
const STATUS_SYSTEM_FLAG: u8 = 1 << 2;
const STATUS_LAST_WAS_COMMAND: u8 = 1 << 3;
const CTR_KBD_INT: u8 = 1 << 0;
const CTR_SYSTEM_FLAG: u8 = 1 << 2;

const CMD_READ_CTR: u8 = 0x20;
const CMD_WRITE_CTR: u8 = 0x60;
const CMD_DISABLE_AUX: u8 = 0xa7;
const CMD_ENABLE_AUX: u8 = 0xa8;
const CMD_SELF_TEST: u8 = 0xaa;
const CMD_KBD_TEST: u8 = 0xab;
const CMD_DISABLE_KBD: u8 = 0xad;
const CMD_ENABLE_KBD: u8 = 0xae;
const CMD_READ_OUTPUT_PORT: u8 = 0xd0;
const CMD_WRITE_OUTPUT_PORT: u8 = 0xd1;
const CMD_RESET_CPU: u8 = 0xfe;

const KBD_RESET: u8 = 0xff;
const KBD_IDENTIFY: u8 = 0xf2;
const KBD_ACK: u8 = 0xfa;
const KBD_SELF_TEST_PASSED: u8 = 0xaa;

/// Ctrl, Alt and Del pressed and released, in scancode set 2.
pub const CTRL_ALT_DEL: [u8; 10] = [0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0];
/// The last byte of the sequence (the Ctrl break code's second byte).
const CTRL_ALT_DEL_TAIL: u8 = 0x14;

/// The controller's registers and output buffer, as a snapshot keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct I8042State {
    /// The status register.
    pub status: u8,
    /// The controller configuration byte.
    pub control: u8,
    /// The output port.
    pub output_port: u8,
    /// Bytes waiting at the data port.
    pub buffer: Vec<u8>,
    /// A command waiting for its data byte.
    pub pending: Option<u8>,
}

/// The controller's state.
pub struct I8042 {
    status: u8,
    control: u8,
    output_port: u8,
    buffer: VecDeque<u8>,
    /// A command waiting for its data byte on port 0x60.
    pending: Option<u8>,
    irq: Box<dyn IrqLine>,
    control_plane: Arc<VmControl>,
}

impl std::fmt::Debug for I8042 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("I8042")
            .field("status", &self.status)
            .field("buffer", &self.buffer)
            .finish_non_exhaustive()
    }
}

impl I8042 {
    /// A controller raising `irq`, ending the VM through `control` on reset.
    pub fn new(irq: Box<dyn IrqLine>, control: Arc<VmControl>) -> Self {
        I8042 {
            status: STATUS_SYSTEM_FLAG,
            control: CTR_KBD_INT | CTR_SYSTEM_FLAG,
            output_port: 0x01,
            buffer: VecDeque::new(),
            pending: None,
            irq,
            control_plane: control,
        }
    }

    /// The registers, for a snapshot.
    pub fn state(&self) -> I8042State {
        I8042State {
            status: self.status,
            control: self.control,
            output_port: self.output_port,
            buffer: self.buffer.iter().copied().collect(),
            pending: self.pending,
        }
    }

    /// Puts back saved registers (no interrupt is raised: the interrupt controllers' state is
    /// restored with them).
    pub fn restore(&mut self, state: &I8042State) {
        self.status = state.status;
        self.control = state.control;
        self.output_port = state.output_port;
        self.buffer = state.buffer.iter().copied().collect();
        self.pending = state.pending;
    }

    /// Queues the Ctrl-Alt-Del key sequence and interrupts the guest.
    pub fn send_ctrl_alt_del(&mut self) {
        self.buffer.extend(CTRL_ALT_DEL);
        self.buffer.push_back(CTRL_ALT_DEL_TAIL);
        self.raise();
    }

    fn push(&mut self, byte: u8) {
        self.buffer.push_back(byte);
        self.raise();
    }

    /// Marks output as waiting, interrupts the guest when it asked for it, and wakes a probe
    /// waiting on the paravirtual port.
    fn raise(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        self.status |= STATUS_OUTPUT_FULL;
        if self.control & CTR_KBD_INT != 0 {
            if let Err(err) = self.irq.trigger() {
                tracing::warn!("i8042 interrupt failed: {err}");
            }
        }
        self.control_plane.notify_event();
    }

    fn command(&mut self, cmd: u8) {
        self.status |= STATUS_LAST_WAS_COMMAND;
        match cmd {
            CMD_READ_CTR => self.push(self.control),
            CMD_WRITE_CTR | CMD_WRITE_OUTPUT_PORT => self.pending = Some(cmd),
            CMD_READ_OUTPUT_PORT => self.push(self.output_port),
            CMD_SELF_TEST => self.push(0x55),
            CMD_KBD_TEST => self.push(0x00),
            CMD_DISABLE_AUX | CMD_ENABLE_AUX | CMD_DISABLE_KBD | CMD_ENABLE_KBD => {}
            CMD_RESET_CPU => {
                self.control_plane.request_exit(ExitReason::Reset);
            }
            _ => {}
        }
    }

    fn data(&mut self, byte: u8) {
        self.status &= !STATUS_LAST_WAS_COMMAND;
        match self.pending.take() {
            Some(CMD_WRITE_CTR) => self.control = byte,
            Some(CMD_WRITE_OUTPUT_PORT) => self.output_port = byte,
            _ => match byte {
                KBD_RESET => {
                    self.push(KBD_ACK);
                    self.push(KBD_SELF_TEST_PASSED);
                }
                KBD_IDENTIFY => {
                    self.push(KBD_ACK);
                    self.push(0xab);
                    self.push(0x83);
                }
                _ => self.push(KBD_ACK),
            },
        }
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, base: u64, _offset: u64, data: &mut [u8]) {
        let value = match base {
            COMMAND_PORT => self.status,
            _ => {
                let byte = self.buffer.pop_front().unwrap_or(0);
                if self.buffer.is_empty() {
                    self.status &= !STATUS_OUTPUT_FULL;
                } else {
                    self.raise();
                }
                byte
            }
        };
        data.fill(0);
        if let Some(first) = data.first_mut() {
            *first = value;
        }
    }

    fn write(&mut self, base: u64, _offset: u64, data: &[u8]) {
        let Some(&byte) = data.first() else { return };
        match base {
            COMMAND_PORT => self.command(byte),
            _ => self.data(byte),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::RunState;
    use crate::devices::irq::CountingIrq;
    use std::sync::atomic::Ordering;

    fn controller() -> (I8042, CountingIrq, Arc<VmControl>) {
        let irq = CountingIrq::default();
        let control = Arc::new(VmControl::new(1));
        (
            I8042::new(Box::new(irq.clone()), control.clone()),
            irq,
            control,
        )
    }

    fn read(dev: &mut I8042, port: u64) -> u8 {
        let mut b = [0u8];
        dev.read(port, 0, &mut b);
        b[0]
    }

    #[test]
    fn reset_command_ends_the_vm() {
        let (mut dev, _, control) = controller();
        dev.write(COMMAND_PORT, 0, &[CMD_RESET_CPU]);
        assert_eq!(control.run_state(), RunState::Stopping);
        assert_eq!(control.wait_for_exit(), ExitReason::Reset);
    }

    #[test]
    fn ctrl_alt_del_is_queued_with_an_interrupt() {
        let (mut dev, irq, _) = controller();
        assert_eq!(read(&mut dev, COMMAND_PORT) & STATUS_OUTPUT_FULL, 0);
        dev.send_ctrl_alt_del();
        assert!(irq.0.load(Ordering::SeqCst) >= 1);
        let mut got = Vec::new();
        while read(&mut dev, COMMAND_PORT) & STATUS_OUTPUT_FULL != 0 {
            got.push(read(&mut dev, DATA_PORT));
        }
        assert_eq!(&got[..4], &[0x14, 0x11, 0xe0, 0x71]);
        assert_eq!(got.len(), CTRL_ALT_DEL.len() + 1);
    }

    #[test]
    fn control_register_round_trips() {
        let (mut dev, _, _) = controller();
        dev.write(COMMAND_PORT, 0, &[CMD_WRITE_CTR]);
        dev.write(DATA_PORT, 0, &[0x47]);
        dev.write(COMMAND_PORT, 0, &[CMD_READ_CTR]);
        assert_eq!(read(&mut dev, DATA_PORT), 0x47);
    }

    #[test]
    fn state_round_trips() {
        let (mut dev, _, _) = controller();
        dev.write(COMMAND_PORT, 0, &[CMD_WRITE_CTR]);
        dev.write(DATA_PORT, 0, &[0x45]);
        dev.send_ctrl_alt_del();
        dev.write(COMMAND_PORT, 0, &[CMD_WRITE_OUTPUT_PORT]);
        let saved = dev.state();
        let (mut copy, _, _) = controller();
        copy.restore(&saved);
        assert_eq!(copy.state(), saved);
        assert_eq!(saved.pending, Some(CMD_WRITE_OUTPUT_PORT));
        assert_eq!(read(&mut copy, DATA_PORT), 0x14, "the queued keys survive");
    }

    #[test]
    fn keyboard_reset_acks_and_passes() {
        let (mut dev, _, _) = controller();
        dev.write(DATA_PORT, 0, &[KBD_RESET]);
        assert_eq!(read(&mut dev, DATA_PORT), KBD_ACK);
        assert_eq!(read(&mut dev, DATA_PORT), KBD_SELF_TEST_PASSED);
    }
}
