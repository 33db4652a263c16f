//! Hardware-reduced ACPI tables: RSDP, XSDT, FADT, MADT and a DSDT with a power button, a
//! Generic Event Device (GED) and `_S5_`, built with rust-vmm's `acpi_tables`.
//!
//! They are written at `ACPI_START` (0xe0000, reserved in the e820 map), the RSDP first, so
//! that Linux finds it both through `boot_params.acpi_rsdp_addr` and by scanning the BIOS
//! area. The MADT lists what the MP table lists: a local APIC per vCPU and the IOAPIC (id =
//! the vCPU count); ISA IRQ n reaches IOAPIC pin n, edge-triggered and active high, which is
//! ACPI's default, so there are no interrupt source overrides (and none in the MP table).
//!
//! The DSDT, in ASL:
//! ```text
//! Scope (\_SB) {
//!     Device (PWRB) { Name (_HID, EisaId ("PNP0C0C")) Name (_UID, 0) }
//!     Device (GED0) {
//!         Name (_HID, "ACPI0013") Name (_UID, 0)
//!         Name (_CRS, ResourceTemplate () { Interrupt (ResourceConsumer, Edge, ActiveHigh,
//!             Exclusive) { 3 } })
//!         OperationRegion (GDST, SystemIO, 0x602, 1)
//!         Field (GDST, ByteAcc, NoLock, WriteAsZeros) { GDAT, 8 }
//!         Method (_EVT, 1, Serialized) {
//!             Local0 = GDAT
//!             If ((Local0 & 1) == 1) { Notify (\_SB.PWRB, 0x80) }
//!         }
//!     }
//! }
//! Name (_S5, Package () { 5, 5, 0, 0 })
//! ```

use acpi_tables::Aml;
use acpi_tables::aml::{
    self, Device, EISAName, Equal, Field, FieldAccessType, FieldEntry, FieldLockRule,
    FieldUpdateRule, If, Interrupt, Local, Method, Name, Notify, OpRegion, OpRegionSpace, Package,
    Path, ResourceTemplate, Scope, Store,
};
use acpi_tables::fadt::{FADTBuilder, Flags, PmProfile};
use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
use acpi_tables::madt::{
    EnabledStatus, IoApic, LocalInterruptController, MADT, ProcessorLocalApic,
};
use acpi_tables::rsdp::Rsdp;
use acpi_tables::sdt::Sdt;
use acpi_tables::xsdt::XSDT;

use super::layout::{ACPI_START, APIC_ADDR, IOAPIC_ADDR};
use crate::devices::acpi::{
    GED_IRQ, GED_POWER_BUTTON, GED_STATUS_PORT, S5_SLEEP_TYPE, SLEEP_CONTROL_PORT,
    SLEEP_STATUS_PORT,
};

/// The OEM id every table carries.
pub const OEM_ID: [u8; 6] = *b"KEC2  ";
/// The OEM table id every table carries.
pub const OEM_TABLE_ID: [u8; 8] = *b"MICROVM ";
const OEM_REVISION: u32 = 1;
/// Where the RSDP sits.
pub const RSDP_ADDR: u64 = ACPI_START;
/// The most bytes the tables may take (0xe0000 to the MP table's BIOS area).
pub const ACPI_MAX_SIZE: usize = 0x10000;

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

fn aml_bytes(object: &dyn Aml) -> Vec<u8> {
    let mut bytes = Vec::new();
    object.to_aml_bytes(&mut bytes);
    bytes
}

/// The DSDT: the power button, the GED that notifies it, and `_S5_`.
pub fn dsdt() -> Vec<u8> {
    let pwrb_hid = Name::new("_HID".into(), &EISAName::new("PNP0C0C"));
    let pwrb_uid = Name::new("_UID".into(), &aml::ZERO);
    let pwrb = Device::new("PWRB".into(), vec![&pwrb_hid, &pwrb_uid]);
    let irq = Interrupt::new(true, true, false, false, GED_IRQ);
    let crs = ResourceTemplate::new(vec![&irq]);
    let port = u32::from(GED_STATUS_PORT);
    let region = OpRegion::new("GDST".into(), OpRegionSpace::SystemIO, &port, &1u8);
    let field = Field::new(
        "GDST".into(),
        FieldAccessType::Byte,
        FieldLockRule::NoLock,
        FieldUpdateRule::WriteAsZeroes,
        vec![FieldEntry::Named(*b"GDAT", 8)],
    );
    let gdat = Path::new("GDAT");
    let read = Store::new(&Local(0), &gdat);
    let bit = aml::And::new(&aml::ZERO, &Local(0), &GED_POWER_BUTTON);
    let pressed = Equal::new(&bit, &GED_POWER_BUTTON);
    let pwrb_path = Path::new("\\_SB_.PWRB");
    let notify = Notify::new(&pwrb_path, &0x80u8);
    let on_press = If::new(&pressed, vec![&notify]);
    let evt = Method::new("_EVT".into(), 1, true, vec![&read, &on_press]);
    let ged_hid = Name::new("_HID".into(), &"ACPI0013");
    let ged_uid = Name::new("_UID".into(), &aml::ZERO);
    let ged_crs = Name::new("_CRS".into(), &crs);
    let ged = Device::new(
        "GED0".into(),
        vec![&ged_hid, &ged_uid, &ged_crs, &region, &field, &evt],
    );
    let sb = Scope::new("\\_SB_".into(), vec![&pwrb, &ged]);
    let s5_package = Package::new(vec![&S5_SLEEP_TYPE, &S5_SLEEP_TYPE, &aml::ZERO, &aml::ZERO]);
    let s5 = Name::new("_S5_".into(), &s5_package);
    let mut table = Sdt::new(*b"DSDT", 36, 6, OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    table.append_slice(&aml_bytes(&sb));
    table.append_slice(&aml_bytes(&s5));
    table.as_slice().to_vec()
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

/// Every table, laid out from `ACPI_START` (RSDP at offset 0), for `vcpus` vCPUs.
pub fn acpi_tables(vcpus: u32) -> Vec<u8> {
    let dsdt = dsdt();
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
