//! The i8042 keyboard, polled for Ctrl-Alt-Del (scancode set 2), and the ACPI power button
//! (the GED's event-status port), polled with it.

use crate::ports::GED_POWER_BUTTON;
#[cfg(not(test))]
use crate::ports::{self, GED_STATUS, I8042_DATA, I8042_STATUS};

/// What asks the probe to shut down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownRequest {
    /// Ctrl-Alt-Del on the i8042 keyboard.
    CtrlAltDel,
    /// The ACPI power button.
    PowerButton,
}

/// Set-2 prefix of extended keys.
const EXTENDED: u8 = 0xe0;
/// Set-2 prefix of break (release) codes.
const BREAK: u8 = 0xf0;
/// Set-2 code of Ctrl (left; `0xe0`-prefixed: right).
const CTRL: u8 = 0x14;
/// Set-2 code of Alt (left; `0xe0`-prefixed: right).
const ALT: u8 = 0x11;
/// Set-2 code of Delete, after the `0xe0` prefix.
const DELETE: u8 = 0x71;

/// Held-key bits.
const LEFT_CTRL: u8 = 1 << 0;
const RIGHT_CTRL: u8 = 1 << 1;
const LEFT_ALT: u8 = 1 << 2;
const RIGHT_ALT: u8 = 1 << 3;
const DEL: u8 = 1 << 4;

/// The most bytes one [`Keyboard::poll`] drains, so a misbehaving device cannot stall the caller.
const MAX_BYTES_PER_POLL: usize = 64;

/// Recognises Ctrl-Alt-Del in a stream of set-2 scancode bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtrlAltDel {
    held: u8,
    extended: bool,
    release: bool,
}

impl CtrlAltDel {
    /// A detector with no key held.
    pub const fn new() -> Self {
        Self {
            held: 0,
            extended: false,
            release: false,
        }
    }

    /// Feeds one byte; true when it completes a press that leaves Ctrl, Alt and Delete held.
    pub fn feed(&mut self, byte: u8) -> bool {
        match byte {
            EXTENDED => {
                self.extended = true;
                return false;
            }
            BREAK => {
                self.release = true;
                return false;
            }
            _ => {}
        }
        let pressed = !self.release;
        let key = match (self.extended, byte) {
            (false, CTRL) => LEFT_CTRL,
            (true, CTRL) => RIGHT_CTRL,
            (false, ALT) => LEFT_ALT,
            (true, ALT) => RIGHT_ALT,
            (true, DELETE) => DEL,
            _ => 0,
        };
        self.extended = false;
        self.release = false;
        if pressed {
            self.held |= key;
        } else {
            self.held &= !key;
        }
        pressed
            && key != 0
            && self.held & (LEFT_CTRL | RIGHT_CTRL) != 0
            && self.held & (LEFT_ALT | RIGHT_ALT) != 0
            && self.held & DEL != 0
    }
}

/// The i8042 keyboard (and the power button) as the probe sees them: polled, never
/// interrupting.
#[derive(Debug, Default)]
pub struct Keyboard {
    detector: CtrlAltDel,
}

impl Keyboard {
    /// A keyboard with no key held.
    pub const fn new() -> Self {
        Self {
            detector: CtrlAltDel::new(),
        }
    }

    /// Reads the power button's events and drains the scancodes waiting in the i8042; says
    /// whether the power button was pressed or the scancodes completed Ctrl-Alt-Del.
    pub fn poll(&mut self) -> Option<ShutdownRequest> {
        let power_button = read_ged_status() & GED_POWER_BUTTON != 0;
        let mut seen = false;
        for _ in 0..MAX_BYTES_PER_POLL {
            let Some(byte) = read_scancode() else { break };
            seen |= self.detector.feed(byte);
        }
        if power_button {
            Some(ShutdownRequest::PowerButton)
        } else {
            seen.then_some(ShutdownRequest::CtrlAltDel)
        }
    }
}

/// The next byte waiting in the i8042, if any.
#[cfg(not(test))]
fn read_scancode() -> Option<u8> {
    // SAFETY: reading the i8042 status and data ports has no memory effects.
    unsafe { (ports::in8(I8042_STATUS) & 1 != 0).then(|| ports::in8(I8042_DATA)) }
}

/// The GED's pending events (reading clears them).
#[cfg(not(test))]
fn read_ged_status() -> u8 {
    // SAFETY: reading the GED's event-status port has no memory effects.
    unsafe { ports::in8(GED_STATUS) }
}

/// Host unit tests have no i8042.
#[cfg(test)]
fn read_scancode() -> Option<u8> {
    None
}

/// Host unit tests have no GED.
#[cfg(test)]
fn read_ged_status() -> u8 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(detector: &mut CtrlAltDel, bytes: &[u8]) -> Vec<bool> {
        bytes.iter().map(|&b| detector.feed(b)).collect()
    }

    #[test]
    fn detects_the_vmm_sequence_once() {
        // What the vmm's control socket sends: makes, then breaks.
        let mut d = CtrlAltDel::new();
        let seen = feed_all(
            &mut d,
            &[
                0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14,
            ],
        );
        assert_eq!(seen.iter().filter(|&&s| s).count(), 1);
        assert!(seen[3]);
        assert_eq!(d, CtrlAltDel::new());
    }

    #[test]
    fn any_order_and_right_hand_keys() {
        let mut d = CtrlAltDel::new();
        assert_eq!(
            feed_all(&mut d, &[0xe0, 0x71, 0xe0, 0x14, 0xe0, 0x11]),
            [false, false, false, false, false, true]
        );
    }

    #[test]
    fn ignores_other_keys_and_released_modifiers() {
        let mut d = CtrlAltDel::new();
        // Keypad '.' (0x71 without 0xe0) is not Delete.
        assert!(!feed_all(&mut d, &[0x14, 0x11, 0x71]).contains(&true));
        // Ctrl released before Delete.
        let mut d = CtrlAltDel::new();
        assert!(!feed_all(&mut d, &[0x14, 0x11, 0xf0, 0x14, 0xe0, 0x71]).contains(&true));
        // Plain typing.
        let mut d = CtrlAltDel::new();
        assert!(!feed_all(&mut d, &[0x1c, 0xf0, 0x1c, 0x32, 0xf0, 0x32]).contains(&true));
    }
}
