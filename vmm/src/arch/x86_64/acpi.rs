//! Hardware-reduced ACPI tables: RSDP, XSDT, FADT, MADT, and the DSDT of `dsdt.rs`, built
//! with rust-vmm's `acpi_tables`.
//!
//! They are written at `ACPI_START` (0xe0000, reserved in the e820 map), the RSDP first, so
//! that Linux finds it both through `boot_params.acpi_rsdp_addr` and by scanning the BIOS
//! area. The MADT lists what the MP table lists: a local APIC per vCPU and the IOAPIC (id =
//! the vCPU count); ISA IRQ n reaches IOAPIC pin n, edge-triggered and active high, which is
//! ACPI's default, so there are no interrupt source overrides (and none in the MP table).
//!
//! A guest that boots with `acpi=off` ignores all of this and reads the MP table, and learns
//! of its virtio devices from `virtio_mmio.device=` parameters instead (see `acpi_off`).

use acpi_tables::fadt::{FADTBuilder, Flags, PmProfile};
use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
use acpi_tables::madt::{
    EnabledStatus, IoApic, LocalInterruptController, MADT, ProcessorLocalApic,
};
use acpi_tables::rsdp::Rsdp;
use acpi_tables::xsdt::XSDT;

use super::dsdt::{MmioWindow, dsdt};
use super::layout::{ACPI_MAX_SIZE, ACPI_START, APIC_ADDR, IOAPIC_ADDR};
use super::sdt::aml_bytes;
pub use super::sdt::{OEM_ID, OEM_REVISION, OEM_TABLE_ID};
use crate::devices::acpi::{SLEEP_CONTROL_PORT, SLEEP_STATUS_PORT};

/// Where the RSDP sits.
pub const RSDP_ADDR: u64 = ACPI_START;

/// IAPC_BOOT_ARCH bits: an 8042 is present (Linux then probes the i8042), no VGA, no MSI,
/// no CMOS RTC.
pub const IAPC_8042: u16 = 1 << 1;
const IAPC_NO_VGA: u16 = 1 << 2;
const IAPC_NO_MSI: u16 = 1 << 3;
const IAPC_NO_CMOS_RTC: u16 = 1 << 5;

/// Tables start on 16-byte boundaries.
const ALIGN: usize = 16;

fn align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// The FADT: hardware-reduced, with the sleep registers as I/O ports, pointing at the DSDT.
pub fn fadt(dsdt_addr: u64) -> Vec<u8> {
    let io_byte = |port: u16| {
        GAS::new(
            AddressSpace::SystemIo,
            8,
            0,
            AccessSize::ByteAccess,
            port.into(),
        )
    };
    let mut builder = FADTBuilder::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION)
        .dsdt_64(dsdt_addr)
        .preferred_pm_profile(PmProfile::EnterpriseServer)
        .flag(Flags::HwReducedAcpi)
        // The buttons are control-method devices (the GED), not fixed-feature ones.
        .flag(Flags::PwrButton)
        .flag(Flags::SlpButton);
    builder.iapc_boot_arch = (IAPC_8042 | IAPC_NO_VGA | IAPC_NO_MSI | IAPC_NO_CMOS_RTC).into();
    builder.sleep_control_reg = io_byte(SLEEP_CONTROL_PORT);
    builder.sleep_status_reg = io_byte(SLEEP_STATUS_PORT);
    aml_bytes(&builder.finalize())
}

/// The MADT: a local APIC per vCPU (APIC id = index) and the IOAPIC, as in the MP table.
pub fn madt(vcpus: u32) -> Vec<u8> {
    let mut madt = MADT::new(
        OEM_ID,
        OEM_TABLE_ID,
        OEM_REVISION,
        LocalInterruptController::Address(APIC_ADDR),
    );
    for id in 0..vcpus {
        madt.add_structure(ProcessorLocalApic::new(
            id as u8,
            id as u8,
            EnabledStatus::Enabled,
        ));
    }
    madt.add_structure(IoApic::new(vcpus as u8, IOAPIC_ADDR, 0));
    aml_bytes(&madt)
}

/// Whether the kernel command line `cmdline` turns ACPI off.
pub fn acpi_off(cmdline: &str) -> bool {
    cmdline
        .split_ascii_whitespace()
        .any(|word| word == "acpi=off")
}

/// Every table, laid out from `ACPI_START` (RSDP at offset 0), for `vcpus` vCPUs and the
/// virtio-mmio windows `virtio`.
pub fn acpi_tables(vcpus: u32, virtio: &[MmioWindow]) -> Vec<u8> {
    let dsdt = dsdt(virtio);
    let madt = madt(vcpus);
    let xsdt_off = align(Rsdp::len());
    let xsdt_len = 36 + 2 * 8;
    let fadt_off = align(xsdt_off + xsdt_len);
    let madt_off = align(fadt_off + acpi_tables::fadt::FADT::len());
    let dsdt_off = align(madt_off + madt.len());
    let addr = |off: usize| ACPI_START + off as u64;

    let fadt = fadt(addr(dsdt_off));
    let mut xsdt = XSDT::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    xsdt.add_entry(addr(fadt_off));
    xsdt.add_entry(addr(madt_off));
    let xsdt = aml_bytes(&xsdt);
    let rsdp = aml_bytes(&Rsdp::new(OEM_ID, addr(xsdt_off)));

    let mut image = vec![0u8; dsdt_off + dsdt.len()];
    for (off, table) in [
        (0, &rsdp),
        (xsdt_off, &xsdt),
        (fadt_off, &fadt),
        (madt_off, &madt),
        (dsdt_off, &dsdt),
    ] {
        image[off..off + table.len()].copy_from_slice(table);
    }
    assert!(image.len() <= ACPI_MAX_SIZE, "ACPI tables fit their area");
    image
}

#[cfg(test)]
#[path = "acpi_tests.rs"]
mod tests;
