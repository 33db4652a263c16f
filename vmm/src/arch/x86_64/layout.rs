//! Where everything sits in guest physical memory.
//!
//! Low memory (below 1 MiB) holds the boot structures; RAM from 1 MiB up belongs to the guest.
//! The 32-bit hole below 4 GiB (`MMIO_GAP_START..4 GiB`) is left for devices, the IOAPIC and
//! the local APICs; RAM that does not fit below it continues at 4 GiB.

/// The GDT (8 entries).
pub const GDT_START: u64 = 0x500;
/// An empty IDT for kernel-mode starts (the kernel installs its own).
pub const IDT_START: u64 = 0x580;
/// The 64-bit TSS that TR points at.
pub const TSS_START: u64 = 0x1000;
/// Linux `boot_params` ("zero page").
pub const BOOT_PARAMS_START: u64 = 0x7000;
/// Top-level page table (PML4).
pub const PML4_START: u64 = 0x9000;
/// Page-directory-pointer table for the first 512 GiB.
pub const PDPT_START: u64 = 0xa000;
/// First page directory; one 4 KiB page per GiB mapped follows, up to `PD_END`.
pub const PD_START: u64 = 0x30000;
/// The command line.
pub const CMDLINE_START: u64 = 0x20000;
/// Longest command line accepted, NUL included.
pub const CMDLINE_MAX_SIZE: usize = 0x10000;
/// The page directories end below the EBDA.
pub const PD_END: u64 = 0x9f000;
/// Start of the Extended BIOS Data Area (reserved); usable low RAM ends here.
pub const EBDA_START: u64 = 0x9fc00;
/// The ACPI tables, the RSDP first (0xe0000..0xf0000, reserved; Linux scans it for the RSDP).
pub const ACPI_START: u64 = 0xe0000;
/// The MP table, in the BIOS area where Linux scans for it (0xf0000..0x100000, reserved).
pub const MPTABLE_START: u64 = 0xf0000;
/// The SMBIOS entry point and structures, in the BIOS area after the MP table (whose largest
/// size, for 254 vCPUs, is about 5.3 KiB).
pub const SMBIOS_START: u64 = 0xf8000;
/// End of the legacy region (VGA, BIOS); RAM resumes at 1 MiB.
pub const HIMEM_START: u64 = 0x10_0000;
/// Start of the 32-bit MMIO hole.
pub const MMIO_GAP_START: u64 = 0xc000_0000;
/// End of the 32-bit MMIO hole.
pub const MMIO_GAP_END: u64 = 0x1_0000_0000;
/// Where KVM puts its TSS for real-mode emulation on Intel hosts (three pages, inside the hole).
pub const KVM_TSS_ADDRESS: u64 = 0xfffb_d000;
/// The IOAPIC's MMIO base.
pub const IOAPIC_ADDR: u32 = 0xfec0_0000;
/// The local APICs' MMIO base.
pub const APIC_ADDR: u32 = 0xfee0_0000;
/// Bytes in a MiB.
pub const MIB: u64 = 1 << 20;

/// The guest RAM regions `(start, size)` for `mem_size` bytes of RAM: one region below the
/// MMIO hole, and a second one from 4 GiB when RAM does not fit below it.
pub fn ram_regions(mem_size: u64) -> Vec<(u64, u64)> {
    if mem_size <= MMIO_GAP_START {
        vec![(0, mem_size)]
    } else {
        vec![
            (0, MMIO_GAP_START),
            (MMIO_GAP_END, mem_size - MMIO_GAP_START),
        ]
    }
}

/// One past the highest guest-physical RAM address.
pub fn ram_end(mem_size: u64) -> u64 {
    ram_regions(mem_size)
        .last()
        .map(|(start, size)| start + size)
        .unwrap_or(0)
}

/// The most bytes the ACPI tables may take (0xe0000 to the MP table's BIOS area).
pub const ACPI_MAX_SIZE: usize = 0x10000;
/// The most bytes the SMBIOS entry point and structures take (up to the end of the BIOS
/// area).
pub const SMBIOS_MAX_SIZE: usize = 0x8000;
/// The TSS: its 104-byte header, an I/O permission bitmap of every port (65,536 bits), and
/// the bitmap's closing 0xff byte.
pub const TSS_SIZE: u32 = 104 + 65536 / 8 + 1;

// The boot structures must not overlap one another, checked when compiling.
const _: () = {
    assert!(GDT_START + 8 * 8 <= IDT_START);
    assert!(TSS_START + TSS_SIZE as u64 <= BOOT_PARAMS_START);
    assert!(BOOT_PARAMS_START + 4096 <= PML4_START);
    assert!(CMDLINE_START + CMDLINE_MAX_SIZE as u64 <= PD_START);
    assert!(PD_END <= EBDA_START);
    assert!(ACPI_START + ACPI_MAX_SIZE as u64 <= MPTABLE_START);
    assert!(SMBIOS_START + SMBIOS_MAX_SIZE as u64 <= HIMEM_START);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_memory_is_one_region() {
        assert_eq!(ram_regions(256 * MIB), vec![(0, 256 * MIB)]);
        assert_eq!(ram_end(256 * MIB), 256 * MIB);
    }

    #[test]
    fn large_memory_skips_the_mmio_hole() {
        let regions = ram_regions(4096 * MIB);
        assert_eq!(
            regions,
            vec![(0, MMIO_GAP_START), (MMIO_GAP_END, 1024 * MIB)]
        );
        assert_eq!(ram_end(4096 * MIB), MMIO_GAP_END + 1024 * MIB);
    }
}
