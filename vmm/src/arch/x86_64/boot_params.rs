//! The Linux `boot_params` ("zero page"): the e820 memory map, the command line, the initrd.
//!
//! Kernel starts follow the 64-bit boot protocol (`rsi` points here); user starts get the
//! same page, so the probe reads its memory map and command line the way Linux does.

use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};

use super::acpi::RSDP_ADDR;
use super::layout::{ACPI_START, EBDA_START, HIMEM_START, ram_regions};

/// e820 type of usable RAM.
pub const E820_RAM: u32 = 1;
/// e820 type of reserved memory.
pub const E820_RESERVED: u32 = 2;
/// `boot_flag` every valid setup header carries.
const BOOT_FLAG: u16 = 0xaa55;
/// `header` magic, "HdrS".
const HDRS_MAGIC: u32 = 0x5372_6448;
/// `type_of_loader`: an undefined boot loader.
const LOADER_UNDEFINED: u8 = 0xff;
/// `loadflags` bit: the kernel is loaded high (at 1 MiB).
const LOADED_HIGH: u8 = 0x01;
/// `loadflags` bit: the loader set `heap_end_ptr`.
const CAN_USE_HEAP: u8 = 0x80;

/// One entry of the memory map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E820Entry {
    /// First address.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// `E820_RAM` or `E820_RESERVED`.
    pub kind: u32,
}

/// The memory map for `mem_size` bytes of guest RAM: low RAM up to the EBDA (reserved), the
/// legacy hole with the ACPI tables' and BIOS area reserved (ACPI tables, MP table, SMBIOS), then RAM from 1 MiB, split around the
/// MMIO hole.
pub fn e820_map(mem_size: u64) -> Vec<E820Entry> {
    let mut map = vec![
        E820Entry {
            addr: 0,
            size: EBDA_START,
            kind: E820_RAM,
        },
        E820Entry {
            addr: EBDA_START,
            size: 0xa0000 - EBDA_START,
            kind: E820_RESERVED,
        },
        E820Entry {
            addr: ACPI_START,
            size: HIMEM_START - ACPI_START,
            kind: E820_RESERVED,
        },
    ];
    for (start, size) in ram_regions(mem_size) {
        let start_hi = start.max(HIMEM_START);
        let end = start + size;
        if end > start_hi {
            map.push(E820Entry {
                addr: start_hi,
                size: end - start_hi,
                kind: E820_RAM,
            });
        }
    }
    map
}

/// What goes into the zero page besides the memory map.
#[derive(Debug, Clone, Default)]
pub struct BootParamsInput {
    /// The kernel's own setup header (bzImage), to be copied in first.
    pub setup_header: Option<setup_header>,
    /// Guest address of the NUL-terminated command line.
    pub cmdline_addr: u64,
    /// Length of the command line, NUL included.
    pub cmdline_size: usize,
    /// Guest address and size of the initrd, if any.
    pub initrd: Option<(u64, u64)>,
}

/// Fills a zero page for `mem_size` bytes of RAM.
pub fn build(mem_size: u64, input: &BootParamsInput) -> boot_params {
    let mut params = boot_params::default();
    if let Some(hdr) = input.setup_header {
        params.hdr = hdr;
    }
    params.hdr.boot_flag = BOOT_FLAG;
    params.hdr.header = HDRS_MAGIC;
    params.hdr.type_of_loader = LOADER_UNDEFINED;
    params.hdr.loadflags |= LOADED_HIGH | CAN_USE_HEAP;
    params.hdr.heap_end_ptr = 0xfe00;
    params.hdr.cmd_line_ptr = input.cmdline_addr as u32;
    params.hdr.cmdline_size = input.cmdline_size as u32;
    if let Some((addr, size)) = input.initrd {
        params.hdr.ramdisk_image = addr as u32;
        params.hdr.ramdisk_size = size as u32;
        params.ext_ramdisk_image = (addr >> 32) as u32;
        params.ext_ramdisk_size = (size >> 32) as u32;
    }
    params.acpi_rsdp_addr = RSDP_ADDR;
    let map = e820_map(mem_size);
    params.e820_entries = map.len() as u8;
    for (slot, entry) in params.e820_table.iter_mut().zip(&map) {
        *slot = boot_e820_entry {
            addr: entry.addr,
            size: entry.size,
            r#type: entry.kind,
        };
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::x86_64::layout::{MIB, MMIO_GAP_END, MMIO_GAP_START};

    fn usable(map: &[E820Entry]) -> u64 {
        map.iter()
            .filter(|e| e.kind == E820_RAM)
            .map(|e| e.size)
            .sum()
    }

    #[test]
    fn map_covers_ram_except_the_legacy_hole() {
        let map = e820_map(256 * MIB);
        assert_eq!(usable(&map), 256 * MIB - (HIMEM_START - EBDA_START));
        let last = map.last().unwrap();
        assert_eq!(last.addr + last.size, 256 * MIB);
    }

    #[test]
    fn map_splits_around_the_mmio_hole() {
        let map = e820_map(4096 * MIB);
        let high: Vec<_> = map.iter().filter(|e| e.addr >= MMIO_GAP_END).collect();
        assert_eq!(high.len(), 1);
        assert_eq!(high[0].size, 4096 * MIB - MMIO_GAP_START);
        assert!(
            map.iter()
                .all(|e| e.addr + e.size <= MMIO_GAP_START || e.addr >= MMIO_GAP_END)
        );
    }

    #[test]
    fn zero_page_carries_map_cmdline_and_initrd() {
        let input = BootParamsInput {
            setup_header: None,
            cmdline_addr: 0x20000,
            cmdline_size: 12,
            initrd: Some((0x0800_0000, 0x1234)),
        };
        let params = build(512 * MIB, &input);
        let entries = params.e820_entries;
        assert_eq!(entries, 4);
        let table = params.e820_table;
        let ram_end = table[3].addr + table[3].size;
        assert_eq!(ram_end, 512 * MIB);
        let hdr = params.hdr;
        assert_eq!({ hdr.cmd_line_ptr }, 0x20000);
        assert_eq!({ hdr.ramdisk_image }, 0x0800_0000);
        assert_eq!({ hdr.ramdisk_size }, 0x1234);
        assert_eq!({ hdr.boot_flag }, 0xaa55);
        assert_eq!({ hdr.header }, 0x5372_6448);
        assert_eq!({ params.acpi_rsdp_addr }, 0xe0000);
        assert_eq!((table[2].addr, table[2].size), (0xe0000, 0x20000));
        assert_eq!({ table[2].r#type }, E820_RESERVED);
    }
}
