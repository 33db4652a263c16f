//! Polled virtio drivers over virtio-mmio version 2: the transport ([`mmio`]), split
//! virtqueues ([`queue`]), block ([`blk`]) and net ([`net`]). No interrupts reach the probe:
//! the drivers poll the used rings and block on the vmm's wait port, which wakes a waiting
//! vCPU whenever a device completes work or a packet arrives (docs/probe-abi.md, "Virtio").

pub mod blk;
#[cfg(test)]
pub mod fake;
pub mod mmio;
pub mod net;

pub mod queue;

use alloc::vec::Vec;

use crate::cmdline::{self, VirtioMmioDevice};
use crate::say;
use mmio::MmioDevice;

/// `VIRTIO_F_VERSION_1`: the modern interface; the probe requires it.
pub const F_VERSION_1: u64 = 1 << 32;

/// Device status bits (spec 2.1).
pub mod status {
    pub const ACKNOWLEDGE: u32 = 1;
    pub const DRIVER: u32 = 2;
    pub const DRIVER_OK: u32 = 4;
    pub const FEATURES_OK: u32 = 8;
    pub const DEVICE_NEEDS_RESET: u32 = 64;
    pub const FAILED: u32 = 128;
}

/// Device IDs (spec 5).
pub const DEVICE_NET: u32 = 1;
/// Block device.
pub const DEVICE_BLOCK: u32 = 2;
/// Entropy device.
pub const DEVICE_RNG: u32 = 4;

/// A name for a device ID in console lines.
pub fn device_name(id: u32) -> &'static str {
    match id {
        DEVICE_NET => "net",
        DEVICE_BLOCK => "block",
        DEVICE_RNG => "rng",
        _ => "other",
    }
}

/// The virtio devices found: windows that answered with the magic value and version 2.
#[derive(Debug, Default)]
pub struct Devices {
    /// Block devices, in address order.
    pub block: Vec<MmioDevice>,
    /// Net devices, in address order.
    pub net: Vec<MmioDevice>,
}

/// Probes every `virtio_mmio.device=` window of the command line and prints one line per
/// device: `probe: virtio <base> <kind>` (or why it is skipped).
pub fn discover(cmdline: &[u8]) -> Devices {
    let mut found = Devices::default();
    for VirtioMmioDevice { base, size, .. } in cmdline::virtio_mmio_devices(cmdline) {
        if size < 0x200 {
            say!("virtio {base:#x} window too small ({size} bytes)");
            continue;
        }
        // SAFETY: the vmm announces virtio-mmio windows on the command line, identity-mapped.
        let dev = unsafe { MmioDevice::new(base) };
        match dev.probe() {
            Ok(0) => {}
            Ok(id) => {
                say!("virtio {base:#x} {}", device_name(id));
                match id {
                    DEVICE_BLOCK => found.block.push(dev),
                    DEVICE_NET => found.net.push(dev),
                    _ => {}
                }
            }
            Err(e) => say!("virtio {base:#x} skipped: {e}"),
        }
    }
    found
}
