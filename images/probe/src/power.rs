//! Powering the VM off through the vmm's power-off port.

use crate::keyboard::ShutdownRequest;
use crate::ports::{self, POWER_OFF};
use crate::say;
use crate::wait;

/// Exit status of a successful run.
pub const SUCCESS: u32 = 0;
/// Exit status of a failed run (self-test failure, bad command line).
pub const FAILURE: u32 = 1;

/// Prints `probe: power off <status>` and powers off with `status` as the VM's exit status.
pub fn power_off(status: u32) -> ! {
    say!("power off {status}");
    power_off_quietly(status)
}

/// Powers off without printing anything (for the panic handler, which prints its own line).
pub fn power_off_quietly(status: u32) -> ! {
    // SAFETY: the power-off port ends the VM; it has no memory effects inside the guest.
    unsafe { ports::out32(POWER_OFF, status) };
    // The vmm should not come back; if it does, stay idle rather than run on.
    wait::idle_forever()
}

/// Reports a Ctrl-Alt-Del from the keyboard or a press of the power button, and powers off
/// cleanly.
pub fn shut_down(request: ShutdownRequest) -> ! {
    match request {
        ShutdownRequest::CtrlAltDel => say!("ctrl-alt-del received"),
        ShutdownRequest::PowerButton => say!("power button pressed"),
    }
    power_off(SUCCESS)
}
