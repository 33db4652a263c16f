//! The 8250 serial console (COM1), writing the guest's output to a log file and stdout.

use std::fs::File;
use std::io::Write;

use vm_superio::Serial;
use vm_superio::serial::NoEvents;
pub use vm_superio::serial::SerialState;

use super::bus::BusDevice;
use super::irq::EventFdIrq;

/// COM1's first port.
pub const COM1_BASE: u64 = 0x3f8;
/// Number of COM1 ports.
pub const COM1_LEN: u64 = 8;
/// COM1's interrupt (GSI).
pub const COM1_IRQ: u32 = 4;

/// Where console bytes go: a log file (appended, written through at once so a crash loses
/// nothing) and optionally stdout.
#[derive(Debug)]
pub struct ConsoleSink {
    log: Option<File>,
    stdout: bool,
}

impl ConsoleSink {
    /// A sink to `log` and, when `stdout` is set, to standard output.
    pub fn new(log: Option<File>, stdout: bool) -> Self {
        ConsoleSink { log, stdout }
    }
}

impl Write for ConsoleSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(log) = &mut self.log {
            log.write_all(buf)?;
        }
        if self.stdout {
            let mut out = std::io::stdout().lock();
            out.write_all(buf)?;
            out.flush()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The serial device on the port bus.
pub struct SerialConsole {
    inner: Serial<EventFdIrq, NoEvents, ConsoleSink>,
}

impl std::fmt::Debug for SerialConsole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialConsole").finish_non_exhaustive()
    }
}

impl SerialConsole {
    /// A UART raising `irq` and writing to `sink`.
    pub fn new(irq: EventFdIrq, sink: ConsoleSink) -> Self {
        SerialConsole {
            inner: Serial::new(irq, sink),
        }
    }

    /// A UART with the registers and input a snapshot recorded.
    pub fn from_state(
        irq: EventFdIrq,
        sink: ConsoleSink,
        state: &SerialState,
    ) -> std::io::Result<Self> {
        Serial::from_state(state, irq, NoEvents, sink)
            .map(|inner| SerialConsole { inner })
            .map_err(|err| std::io::Error::other(format!("serial state refused: {err:?}")))
    }

    /// The registers and pending input, for a snapshot.
    pub fn state(&self) -> SerialState {
        self.inner.state()
    }
}

impl BusDevice for SerialConsole {
    fn read(&mut self, _base: u64, offset: u64, data: &mut [u8]) {
        if let (Some(first), Ok(offset)) = (data.first_mut(), u8::try_from(offset)) {
            *first = self.inner.read(offset);
        }
    }

    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) {
        if let (Some(value), Ok(offset)) = (data.first(), u8::try_from(offset)) {
            if let Err(err) = self.inner.write(offset, *value) {
                tracing::warn!("serial write failed: {err:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmm_sys_util::eventfd::EventFd;

    #[test]
    fn transmitted_bytes_reach_the_log() {
        let log = tempfile::NamedTempFile::new().unwrap();
        let file = log.reopen().unwrap();
        let irq = EventFdIrq(EventFd::new(libc::EFD_NONBLOCK).unwrap());
        let mut serial = SerialConsole::new(irq, ConsoleSink::new(Some(file), false));
        for b in b"hi\n" {
            serial.write(COM1_BASE, 0, &[*b]);
        }
        let mut lsr = [0u8];
        serial.read(COM1_BASE, 5, &mut lsr);
        assert_ne!(lsr[0] & 0x20, 0, "transmitter holding register empty");
        assert_eq!(std::fs::read(log.path()).unwrap(), b"hi\n");
    }
}
