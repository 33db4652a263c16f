//! The Linux-style `virtio_mmio.device=SIZE@BASE:IRQ` announcements of virtio-mmio devices.

use super::parse::{parse_hex, parse_size, parse_u64};
use super::{VIRTIO_MMIO_KEY, all_params};

/// One `virtio_mmio.device=SIZE@BASE:IRQ` announcement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioMmioDevice {
    /// Guest physical address of the register window.
    pub base: u64,
    /// Size of the register window in bytes.
    pub size: u64,
    /// The interrupt line (unused: the probe polls).
    pub irq: u32,
}

impl VirtioMmioDevice {
    /// Parses `SIZE@BASE:IRQ` (`4K@0xd0000000:5`); the `:IRQ` part may be missing.
    pub fn parse(value: &[u8]) -> Option<Self> {
        let at = value.iter().position(|&b| b == b'@')?;
        let size = parse_size(&value[..at])?;
        let rest = &value[at + 1..];
        let (base, irq) = match rest.iter().position(|&b| b == b':') {
            Some(colon) => (
                &rest[..colon],
                u32::try_from(parse_u64(&rest[colon + 1..])?).ok()?,
            ),
            None => (rest, 0),
        };
        let base = if base.starts_with(b"0x") || base.starts_with(b"0X") {
            parse_hex(base)?
        } else {
            parse_u64(base)?
        };
        (size > 0).then_some(Self { base, size, irq })
    }
}

/// Every well-formed `virtio_mmio.device=` token of `cmdline`, in address order (duplicates
/// dropped); malformed ones are skipped.
pub fn virtio_mmio_devices(cmdline: &[u8]) -> alloc::vec::Vec<VirtioMmioDevice> {
    let mut devices: alloc::vec::Vec<VirtioMmioDevice> = all_params(cmdline, VIRTIO_MMIO_KEY)
        .filter_map(VirtioMmioDevice::parse)
        .collect();
    devices.sort_by_key(|d| d.base);
    devices.dedup_by_key(|d| d.base);
    devices
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_virtio_mmio_tokens_in_address_order() {
        let line = b"console=ttyS0 virtio_mmio.device=4K@0xd0001000:6 \
            virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=bad \
            virtio_mmio.device=0x200@0xd0002000 virtio_mmio.device=1M@3489673216:7 virtio_mmio.device=4K@0xd0000000:9";
        let devices = virtio_mmio_devices(line);
        assert_eq!(
            devices,
            [
                VirtioMmioDevice {
                    base: 0xd000_0000,
                    size: 4096,
                    irq: 5
                },
                VirtioMmioDevice {
                    base: 0xd000_1000,
                    size: 4096,
                    irq: 6
                },
                VirtioMmioDevice {
                    base: 0xd000_2000,
                    size: 0x200,
                    irq: 0
                },
                VirtioMmioDevice {
                    base: 0xd000_3000,
                    size: 1 << 20,
                    irq: 7
                },
            ]
        );
        assert!(virtio_mmio_devices(b"probe.mode=count").is_empty());
        assert_eq!(VirtioMmioDevice::parse(b"0@0xd0000000:5"), None);
        assert_eq!(VirtioMmioDevice::parse(b"4K0xd0000000:5"), None);
        assert_eq!(VirtioMmioDevice::parse(b"4K@0xd0000000:x"), None);
    }
}
