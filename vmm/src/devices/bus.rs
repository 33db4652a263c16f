//! A bus: which device answers which address. One serves port I/O, one MMIO.

use std::sync::{Arc, Mutex};

/// A device reached through port I/O or MMIO.
pub trait BusDevice: Send {
    /// A read of `data.len()` bytes at `base + offset`, where `base` is the range it was
    /// registered at.
    fn read(&mut self, base: u64, offset: u64, data: &mut [u8]);
    /// A write of `data` at `base + offset`.
    fn write(&mut self, base: u64, offset: u64, data: &[u8]);
}

/// A device shared between the bus and whoever else drives it (the control API).
pub type SharedDevice = Arc<Mutex<dyn BusDevice>>;

/// Why a device could not be placed on the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The range is empty or overlaps one already taken.
    #[error("addresses {base:#x}+{len:#x} overlap a device already on the bus")]
    Overlap {
        /// First address.
        base: u64,
        /// Length of the range.
        len: u64,
    },
}

#[derive(Clone)]
struct Range {
    base: u64,
    len: u64,
    device: SharedDevice,
}

/// Address ranges and their devices.
#[derive(Default, Clone)]
pub struct Bus {
    ranges: Vec<Range>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ranges: Vec<_> = self.ranges.iter().map(|r| (r.base, r.len)).collect();
        f.debug_struct("Bus").field("ranges", &ranges).finish()
    }
}

impl Bus {
    /// Places `device` at `base..base + len`.
    pub fn insert(&mut self, base: u64, len: u64, device: SharedDevice) -> Result<(), BusError> {
        let end = u128::from(base) + u128::from(len);
        let overlaps = self.ranges.iter().any(|r| {
            let r_end = u128::from(r.base) + u128::from(r.len);
            u128::from(base) < r_end && u128::from(r.base) < end
        });
        if len == 0 || overlaps {
            return Err(BusError::Overlap { base, len });
        }
        self.ranges.push(Range { base, len, device });
        Ok(())
    }

    fn find(&self, addr: u64) -> Option<&Range> {
        self.ranges
            .iter()
            .find(|r| addr >= r.base && addr - r.base < r.len)
    }

    /// Dispatches a read; returns false (leaving `data` alone) when no device has the port.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        match self.find(addr) {
            Some(r) => {
                let mut dev = r.device.lock().unwrap_or_else(|e| e.into_inner());
                dev.read(r.base, addr - r.base, data);
                true
            }
            None => false,
        }
    }

    /// Dispatches a write; returns false when no device has the port.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        match self.find(addr) {
            Some(r) => {
                let mut dev = r.device.lock().unwrap_or_else(|e| e.into_inner());
                dev.write(r.base, addr - r.base, data);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        writes: Vec<(u64, u64, Vec<u8>)>,
    }

    impl BusDevice for Recorder {
        fn read(&mut self, _base: u64, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, base: u64, offset: u64, data: &[u8]) {
            self.writes.push((base, offset, data.to_vec()));
        }
    }

    #[test]
    fn dispatches_by_range_with_offsets() {
        let dev = Arc::new(Mutex::new(Recorder::default()));
        let mut bus = Bus::default();
        bus.insert(0x3f8, 8, dev.clone()).unwrap();
        let mut byte = [0u8];
        assert!(bus.read(0x3fd, &mut byte));
        assert_eq!(byte, [5]);
        assert!(bus.write(0x3f8, b"x"));
        assert!(!bus.write(0x400, &[1]));
        assert!(!bus.read(0x3f7, &mut byte));
        assert_eq!(dev.lock().unwrap().writes, vec![(0x3f8, 0, b"x".to_vec())]);
    }

    #[test]
    fn refuses_overlaps() {
        let dev = Arc::new(Mutex::new(Recorder::default()));
        let mut bus = Bus::default();
        bus.insert(0x60, 1, dev.clone()).unwrap();
        bus.insert(0x64, 1, dev.clone()).unwrap();
        assert!(bus.insert(0x5f, 2, dev.clone()).is_err());
        assert!(bus.insert(0x10, 0, dev.clone()).is_err());
        bus.insert(0xd000_0000, 0x1000, dev.clone()).unwrap();
        assert!(bus.insert(0xd000_0fff, 0x1000, dev).is_err());
    }
}
