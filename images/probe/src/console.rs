//! Serial console: whole `probe: ...` lines on COM1, serialised across vCPUs.

use core::fmt::{self, Write};

#[cfg(not(test))]
use crate::ports::{self, COM1};
use crate::spin::SpinLock;

/// Every line the probe prints starts with this.
pub const PREFIX: &str = "probe: ";

/// Held while a line is written, so lines of different vCPUs never interleave.
static LINE_LOCK: SpinLock<()> = SpinLock::new(());

/// Prints a console line: `probe: `, then the formatted arguments, then `\n`.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::console::print_line(format_args!($($arg)*))
    };
}

/// Writes bytes to COM1 (the ABI's 8250 is always ready to transmit, so no LSR polling).
struct Serial;

impl Write for Serial {
    /// Host unit tests have no COM1: lines go to the test's captured stdout.
    #[cfg(test)]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        std::print!("{s}");
        Ok(())
    }

    #[cfg(not(test))]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            // SAFETY: COM1 transmit is a plain output port of the vmm; it has no memory effects.
            unsafe { ports::out8(COM1, byte) };
        }
        Ok(())
    }
}

/// Prints one line under the line lock; use [`say!`](crate::say) rather than calling this.
pub fn print_line(args: fmt::Arguments<'_>) {
    let _guard = LINE_LOCK.lock();
    write_line(args);
}

/// Prints one line without taking the lock: for the panic handler, which may interrupt a
/// vCPU that holds it.
pub fn print_line_unlocked(args: fmt::Arguments<'_>) {
    write_line(args);
}

fn write_line(args: fmt::Arguments<'_>) {
    let mut serial = Serial;
    // `Serial` never fails; a failing `Display` impl only cuts its own line short.
    let _ = serial.write_str(PREFIX);
    let _ = serial.write_fmt(args);
    let _ = serial.write_str("\n");
}

/// Displays bytes that should be text (the command line): valid UTF-8 is shown as is, invalid
/// bytes and control characters as `\xNN`, so a line never breaks or carries raw binary.
pub struct ByteStr<'a>(pub &'a [u8]);

impl fmt::Display for ByteStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                if c.is_control() {
                    write!(f, "\\x{:02x}", u32::from(c))?;
                } else {
                    f.write_char(c)?;
                }
            }
            for byte in chunk.invalid() {
                write!(f, "\\x{byte:02x}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_str_passes_text_and_escapes_the_rest() {
        let shown = format!("{}", ByteStr(b"console=ttyS0 probe.mode=count"));
        assert_eq!(shown, "console=ttyS0 probe.mode=count");
        assert_eq!(format!("{}", ByteStr(b"a\nb\xffc")), "a\\x0ab\\xffc");
        assert_eq!(format!("{}", ByteStr("x=é".as_bytes())), "x=é");
    }
}
