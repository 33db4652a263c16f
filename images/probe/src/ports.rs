//! Port I/O wrappers and the port numbers of docs/probe-abi.md.
//!
//! The probe runs at CPL3 with IOPL 3, so `in`/`out` are allowed and exit to the vmm.

use core::arch::asm;

/// COM1 transmit register (8250), out8.
pub const COM1: u16 = 0x3f8;
/// i8042 data register, in8.
pub const I8042_DATA: u16 = 0x60;
/// i8042 status register, in8; bit 0 set means a byte is waiting at [`I8042_DATA`].
pub const I8042_STATUS: u16 = 0x64;
/// ACPI GED event status, in8: the pending events, cleared by the read; bit 0 is the power
/// button.
pub const GED_STATUS: u16 = 0x602;
/// The power-button bit of [`GED_STATUS`].
pub const GED_POWER_BUTTON: u8 = 1 << 0;
/// Power off, out32; the value is the guest's exit status.
pub const POWER_OFF: u16 = 0x700;
/// Wait port: out32 arms the deadline (microseconds), in32 blocks until a device or the deadline.
pub const WAIT: u16 = 0x704;

/// Reads a byte from `port`.
///
/// # Safety
/// Reading `port` must not have side effects that break memory safety (the ABI ports do not).
#[inline]
pub unsafe fn in8(port: u16) -> u8 {
    let value: u8;
    // SAFETY: `in` touches no memory; the caller vouches for the device side effects.
    unsafe {
        asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags));
    }
    value
}

/// Writes a byte to `port`.
///
/// # Safety
/// Writing `port` must not have side effects that break memory safety (the ABI ports do not).
#[inline]
pub unsafe fn out8(port: u16, value: u8) {
    // SAFETY: `out` touches no memory; the caller vouches for the device side effects.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags));
    }
}

/// Reads a 32-bit value from `port`.
///
/// # Safety
/// Reading `port` must not have side effects that break memory safety (the ABI ports do not).
#[inline]
pub unsafe fn in32(port: u16) -> u32 {
    let value: u32;
    // SAFETY: `in` touches no memory; the caller vouches for the device side effects.
    unsafe {
        asm!("in eax, dx", in("dx") port, out("eax") value, options(nomem, nostack, preserves_flags));
    }
    value
}

/// Writes a 32-bit value to `port`.
///
/// # Safety
/// Writing `port` must not have side effects that break memory safety (the ABI ports do not).
#[inline]
pub unsafe fn out32(port: u16, value: u32) {
    // SAFETY: `out` touches no memory; the caller vouches for the device side effects.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags));
    }
}
