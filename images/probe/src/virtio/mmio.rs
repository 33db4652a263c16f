//! The virtio-mmio transport, version 2 (virtio 1.x, section 4.2): register access and the
//! driver initialisation sequence. Registers are read and written with 32-bit volatile
//! accesses at the identity-mapped window; every access exits to the vmm, so the drivers keep
//! them out of hot loops.

use core::fmt;

use super::queue::Virtqueue;
use super::{F_VERSION_1, status};

/// `MagicValue`: "virt" in little-endian.
pub const MAGIC: u32 = 0x7472_6976;

/// Register offsets.
pub mod reg {
    pub const MAGIC: usize = 0x000;
    pub const VERSION: usize = 0x004;
    pub const DEVICE_ID: usize = 0x008;
    pub const DEVICE_FEATURES: usize = 0x010;
    pub const DEVICE_FEATURES_SEL: usize = 0x014;
    pub const DRIVER_FEATURES: usize = 0x020;
    pub const DRIVER_FEATURES_SEL: usize = 0x024;
    pub const QUEUE_SEL: usize = 0x030;
    pub const QUEUE_NUM_MAX: usize = 0x034;
    pub const QUEUE_NUM: usize = 0x038;
    pub const QUEUE_READY: usize = 0x044;
    pub const QUEUE_NOTIFY: usize = 0x050;
    pub const INTERRUPT_STATUS: usize = 0x060;
    pub const INTERRUPT_ACK: usize = 0x064;
    pub const STATUS: usize = 0x070;
    pub const QUEUE_DESC_LOW: usize = 0x080;
    pub const QUEUE_DESC_HIGH: usize = 0x084;
    pub const QUEUE_DRIVER_LOW: usize = 0x090;
    pub const QUEUE_DRIVER_HIGH: usize = 0x094;
    pub const QUEUE_DEVICE_LOW: usize = 0x0a0;
    pub const QUEUE_DEVICE_HIGH: usize = 0x0a4;
    pub const CONFIG_GENERATION: usize = 0x0fc;
    pub const CONFIG: usize = 0x100;
}

/// Why a device could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// The window does not start with the magic value.
    BadMagic(u32),
    /// Not transport version 2 (1 is the legacy interface, which the probe does not drive).
    Version(u32),
    /// The device does not offer `VIRTIO_F_VERSION_1`.
    NoVersion1,
    /// The device cleared `FEATURES_OK`: it refused the features the probe accepted.
    FeaturesRefused,
    /// The queue does not exist (`QueueNumMax` 0) or is already live.
    QueueUnavailable(u16),
    /// The ring allocation failed.
    OutOfMemory,
    /// The device set `DEVICE_NEEDS_RESET`.
    NeedsReset,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic(m) => write!(f, "bad magic {m:#010x}"),
            Self::Version(v) => write!(f, "unsupported virtio-mmio version {v} (need 2)"),
            Self::NoVersion1 => write!(f, "device lacks VIRTIO_F_VERSION_1"),
            Self::FeaturesRefused => write!(f, "device refused the features (FEATURES_OK)"),
            Self::QueueUnavailable(q) => write!(f, "queue {q} unavailable"),
            Self::OutOfMemory => write!(f, "out of memory for the rings"),
            Self::NeedsReset => write!(f, "device needs reset"),
        }
    }
}

/// The features the driver accepts: `VIRTIO_F_VERSION_1` (required) plus those of `wanted`
/// that the device offers.
pub fn choose_features(offered: u64, wanted: u64) -> Result<u64, InitError> {
    if offered & F_VERSION_1 == 0 {
        return Err(InitError::NoVersion1);
    }
    Ok(offered & (wanted | F_VERSION_1))
}

/// The queue size to use: `wanted` capped at the device's maximum, rounded down to a power of
/// two; `None` if the device has no such queue.
pub fn choose_queue_size(max: u32, wanted: u16) -> Option<u16> {
    let max = u16::try_from(max.min(u32::from(super::queue::MAX_QUEUE_SIZE))).ok()?;
    let size = max.min(wanted);
    (size != 0).then(|| 1 << (15 - size.leading_zeros()))
}

/// One virtio-mmio register window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioDevice {
    base: usize,
}

impl MmioDevice {
    /// The device whose registers are at `base`.
    ///
    /// # Safety
    /// `base` must be the identity-mapped address of a virtio-mmio register window (or of
    /// MMIO that tolerates reads and writes at the register offsets).
    pub const unsafe fn new(base: u64) -> Self {
        Self {
            base: base as usize,
        }
    }

    /// The window's address.
    pub fn base(&self) -> u64 {
        self.base as u64
    }

    /// Reads a 32-bit register.
    pub fn read(&self, offset: usize) -> u32 {
        // SAFETY: `new`'s contract: the window is mapped MMIO; offsets are register offsets.
        unsafe { ((self.base + offset) as *const u32).read_volatile() }
    }

    /// Writes a 32-bit register.
    pub fn write(&self, offset: usize, value: u32) {
        // SAFETY: as for `read`.
        unsafe { ((self.base + offset) as *mut u32).write_volatile(value) }
    }

    /// Checks the magic value and version; returns the device ID (0 = no device here).
    pub fn probe(&self) -> Result<u32, InitError> {
        let magic = self.read(reg::MAGIC);
        if magic != MAGIC {
            return Err(InitError::BadMagic(magic));
        }
        let version = self.read(reg::VERSION);
        if version != 2 {
            return Err(InitError::Version(version));
        }
        Ok(self.read(reg::DEVICE_ID))
    }

    /// The device status register.
    pub fn status(&self) -> u32 {
        self.read(reg::STATUS)
    }

    /// True if the device set `DEVICE_NEEDS_RESET`.
    pub fn needs_reset(&self) -> bool {
        self.status() & status::DEVICE_NEEDS_RESET != 0
    }

    /// Resets the device (Status = 0); it stops using the rings.
    pub fn reset(&self) {
        self.write(reg::STATUS, 0);
    }

    /// Marks the driver as failed.
    pub fn fail(&self) {
        let s = self.status();
        self.write(reg::STATUS, s | status::FAILED);
    }

    fn add_status(&self, bits: u32) {
        let s = self.status();
        self.write(reg::STATUS, s | bits);
    }

    /// Reset, ACKNOWLEDGE, DRIVER, feature negotiation and FEATURES_OK (spec 3.1.1 steps
    /// 1-6); returns the negotiated features. On error the device is marked FAILED.
    pub fn negotiate(&self, wanted: u64) -> Result<u64, InitError> {
        self.reset();
        self.add_status(status::ACKNOWLEDGE);
        self.add_status(status::DRIVER);
        let offered = self.features();
        let accepted = match choose_features(offered, wanted) {
            Ok(f) => f,
            Err(e) => {
                self.fail();
                return Err(e);
            }
        };
        for sel in 0..2u32 {
            self.write(reg::DRIVER_FEATURES_SEL, sel);
            self.write(reg::DRIVER_FEATURES, (accepted >> (32 * sel)) as u32);
        }
        self.add_status(status::FEATURES_OK);
        if self.status() & status::FEATURES_OK == 0 {
            self.fail();
            return Err(InitError::FeaturesRefused);
        }
        Ok(accepted)
    }

    /// The 64 feature bits the device offers.
    pub fn features(&self) -> u64 {
        let mut features = 0u64;
        for sel in 0..2u32 {
            self.write(reg::DEVICE_FEATURES_SEL, sel);
            features |= u64::from(self.read(reg::DEVICE_FEATURES)) << (32 * sel);
        }
        features
    }

    /// Creates queue `index` with up to `wanted` entries and hands its rings to the device.
    pub fn setup_queue(&self, index: u16, wanted: u16) -> Result<Virtqueue, InitError> {
        self.write(reg::QUEUE_SEL, u32::from(index));
        if self.read(reg::QUEUE_READY) != 0 {
            return Err(InitError::QueueUnavailable(index));
        }
        let size = choose_queue_size(self.read(reg::QUEUE_NUM_MAX), wanted)
            .ok_or(InitError::QueueUnavailable(index))?;
        let queue = Virtqueue::new(size).ok_or(InitError::OutOfMemory)?;
        self.write(reg::QUEUE_NUM, u32::from(size));
        for (low, high, addr) in [
            (reg::QUEUE_DESC_LOW, reg::QUEUE_DESC_HIGH, queue.desc_addr()),
            (
                reg::QUEUE_DRIVER_LOW,
                reg::QUEUE_DRIVER_HIGH,
                queue.avail_addr(),
            ),
            (
                reg::QUEUE_DEVICE_LOW,
                reg::QUEUE_DEVICE_HIGH,
                queue.used_addr(),
            ),
        ] {
            self.write(low, addr as u32);
            self.write(high, (addr >> 32) as u32);
        }
        self.write(reg::QUEUE_READY, 1);
        Ok(queue)
    }

    /// Sets DRIVER_OK: the device is live. Fails if the device already wants a reset.
    pub fn driver_ok(&self) -> Result<(), InitError> {
        self.add_status(status::DRIVER_OK);
        if self.needs_reset() {
            return Err(InitError::NeedsReset);
        }
        Ok(())
    }

    /// Tells the device that queue `index` has new buffers.
    pub fn notify(&self, index: u16) {
        self.write(reg::QUEUE_NOTIFY, u32::from(index));
    }

    /// Acknowledges whatever the device signalled in InterruptStatus.
    pub fn ack_interrupt(&self) {
        let pending = self.read(reg::INTERRUPT_STATUS);
        if pending != 0 {
            self.write(reg::INTERRUPT_ACK, pending);
        }
    }

    /// Reads `N` bytes of device config space at `offset`, byte by byte, retrying until the
    /// config generation is stable.
    pub fn config_bytes<const N: usize>(&self, offset: usize) -> [u8; N] {
        loop {
            let before = self.read(reg::CONFIG_GENERATION);
            let mut out = [0u8; N];
            for (i, byte) in out.iter_mut().enumerate() {
                // SAFETY: config space is part of the mapped window; byte reads are allowed.
                *byte = unsafe {
                    ((self.base + reg::CONFIG + offset + i) as *const u8).read_volatile()
                };
            }
            if self.read(reg::CONFIG_GENERATION) == before {
                return out;
            }
        }
    }

    /// Reads a little-endian u64 from config space as two 32-bit halves (generation-checked).
    pub fn config_u64(&self, offset: usize) -> u64 {
        loop {
            let before = self.read(reg::CONFIG_GENERATION);
            let low = self.read(reg::CONFIG + offset);
            let high = self.read(reg::CONFIG + offset + 4);
            if self.read(reg::CONFIG_GENERATION) == before {
                return u64::from(low) | (u64::from(high) << 32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_require_version_1() {
        assert_eq!(
            choose_features(0xffff_ffff, 1 << 5),
            Err(InitError::NoVersion1)
        );
        let offered = F_VERSION_1 | (1 << 5) | (1 << 9) | (1 << 0);
        assert_eq!(
            choose_features(offered, (1 << 5) | (1 << 6) | (1 << 9)),
            Ok(F_VERSION_1 | (1 << 5) | (1 << 9))
        );
        assert_eq!(choose_features(F_VERSION_1, 0), Ok(F_VERSION_1));
    }

    #[test]
    fn queue_sizes_are_powers_of_two_within_the_maximum() {
        assert_eq!(choose_queue_size(1024, 256), Some(256));
        assert_eq!(choose_queue_size(256, 256), Some(256));
        assert_eq!(choose_queue_size(200, 256), Some(128));
        assert_eq!(choose_queue_size(1, 256), Some(1));
        assert_eq!(choose_queue_size(0, 256), None);
        assert_eq!(choose_queue_size(u32::MAX, 256), Some(256));
        assert_eq!(choose_queue_size(u32::MAX, 40000), Some(32768));
    }
}
