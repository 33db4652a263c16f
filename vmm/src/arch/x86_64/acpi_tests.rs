//! The ACPI tables read back byte by byte, the way a guest's parser walks them: signatures,
//! lengths, checksums and the pointers from the RSDP down to the DSDT. When ACPICA's `iasl`
//! is installed, it also disassembles the DSDT (an independent AML parser).

use super::super::dsdt::{MmioWindow, dsdt};
use super::*;
use crate::devices::acpi::GED_IRQ;

/// Two virtio-mmio windows, as a VM with a disk and a network card has them.
const WINDOWS: [MmioWindow; 2] = [
    MmioWindow {
        base: 0xd000_0000,
        len: 0x1000,
        irq: 5,
    },
    MmioWindow {
        base: 0xd000_1000,
        len: 0x1000,
        irq: 6,
    },
];

fn sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(b[off..off + 2].try_into().unwrap())
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// The table at guest address `addr` in `image`, checked: signature, length in range,
/// checksum zero, OEM ids.
fn table<'a>(image: &'a [u8], addr: u64, signature: &[u8; 4]) -> &'a [u8] {
    let off = (addr - ACPI_START) as usize;
    assert_eq!(off % 16, 0, "{signature:?} is aligned");
    assert_eq!(&image[off..off + 4], signature);
    let len = u32_at(image, off + 4) as usize;
    assert!(
        len >= 36 && off + len <= image.len(),
        "{signature:?} length {len}"
    );
    let t = &image[off..off + len];
    assert_eq!(sum(t), 0, "{signature:?} checksum");
    assert_eq!(&t[10..16], &OEM_ID);
    assert_eq!(&t[16..24], &OEM_TABLE_ID);
    t
}

#[test]
fn rsdp_leads_through_the_xsdt_to_the_fadt_madt_and_dsdt() {
    let image = acpi_tables(2, &WINDOWS);
    let rsdp = &image[..36];
    assert_eq!(&rsdp[..8], b"RSD PTR ");
    assert_eq!(sum(&rsdp[..20]), 0, "ACPI 1.0 checksum");
    assert_eq!(sum(rsdp), 0, "extended checksum");
    assert_eq!(rsdp[15], 2, "revision 2: the XSDT is used");
    assert_eq!(u32_at(rsdp, 20), 36);
    let xsdt = table(&image, u64_at(rsdp, 24), b"XSDT");
    assert_eq!(xsdt.len(), 36 + 16);
    let fadt = table(&image, u64_at(xsdt, 36), b"FACP");
    table(&image, u64_at(xsdt, 44), b"APIC");
    assert_eq!(fadt.len(), 276);
    assert_eq!(u32_at(fadt, 40), 0, "32-bit DSDT unused");
    let dsdt = table(&image, u64_at(fadt, 140), b"DSDT");
    assert_eq!(dsdt, &self::dsdt(&WINDOWS)[..]);
}

#[test]
fn fadt_is_hardware_reduced_with_an_8042_and_io_sleep_registers() {
    let fadt = fadt(0xe1000);
    assert_eq!(sum(&fadt), 0);
    let flags = u32_at(&fadt, 112);
    assert_ne!(flags & (1 << 20), 0, "HW_REDUCED_ACPI");
    assert_ne!(
        flags & (1 << 4),
        0,
        "power button is a control-method device"
    );
    let boot_arch = u16_at(&fadt, 109);
    assert_ne!(boot_arch & (1 << 1), 0, "8042 present");
    // Sleep control and status: SystemIO, 8 bits at offset 0, byte access, the ports.
    let gas = |off: usize| {
        (
            fadt[off],
            fadt[off + 1],
            fadt[off + 2],
            fadt[off + 3],
            u64_at(&fadt, off + 4),
        )
    };
    assert_eq!(gas(244), (1, 8, 0, 1, u64::from(SLEEP_CONTROL_PORT)));
    assert_eq!(gas(256), (1, 8, 0, 1, u64::from(SLEEP_STATUS_PORT)));
    assert_eq!(u64_at(&fadt, 140), 0xe1000, "X_DSDT");
}

#[test]
fn madt_lists_every_cpu_and_the_ioapic() {
    let madt = madt(3);
    assert_eq!(sum(&madt), 0);
    assert_eq!(u32_at(&madt, 36), APIC_ADDR);
    let mut entries = Vec::new();
    let mut off = 44;
    while off < madt.len() {
        let len = madt[off + 1] as usize;
        assert!(len >= 2 && off + len <= madt.len());
        entries.push(&madt[off..off + len]);
        off += len;
    }
    assert_eq!(off, madt.len());
    assert_eq!(entries.len(), 4);
    for (i, e) in entries[..3].iter().enumerate() {
        assert_eq!(e[..4], [0, 8, i as u8, i as u8], "local APIC {i}");
        assert_eq!(u32_at(e, 4), 1, "enabled");
    }
    let ioapic = entries[3];
    assert_eq!(
        ioapic[..3],
        [1, 12, 3],
        "IOAPIC id = vCPU count, as in the MP table"
    );
    assert_eq!(u32_at(ioapic, 4), IOAPIC_ADDR);
    assert_eq!(u32_at(ioapic, 8), 0, "GSI base");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn dsdt_holds_the_ged_the_power_button_and_s5() {
    let dsdt = dsdt(&[]);
    assert_eq!(sum(&dsdt), 0);
    assert_eq!(u32_at(&dsdt, 4) as usize, dsdt.len());
    assert!(contains(&dsdt, b"ACPI0013\0"));
    // EisaId("PNP0C0C") as a DWord.
    assert!(contains(&dsdt, &[0x0c, 0x41, 0xd0, 0x0c, 0x0c]));
    for name in [b"PWRB", b"GED0", b"_EVT", b"_S5_", b"GDAT", b"_CRS"] {
        assert!(contains(&dsdt, name), "{}", String::from_utf8_lossy(name));
    }
    // Extended interrupt descriptor: consumer, edge, active high, exclusive, one GSI: 3.
    assert!(contains(
        &dsdt,
        &[0x89, 6, 0, 0b0011, 1, GED_IRQ as u8, 0, 0, 0]
    ));
    // _S5_ = Package (4) { 5, 5, 0, 0 }.
    assert!(contains(
        &dsdt,
        &[
            b'_', b'S', b'5', b'_', 0x12, 0x08, 4, 0x0a, 5, 0x0a, 5, 0, 0
        ]
    ));
}

/// Every device of the DSDT with its `_HID` and the interrupt lines its `_CRS` names, read
/// back by ACPICA: a hardware-reduced guest maps only these lines.
#[test]
fn iasl_finds_every_device_with_its_interrupt() {
    let Some(asl) = iasl_disassemble(&dsdt(&WINDOWS)) else {
        return;
    };
    let devices: Vec<(&str, &str)> = asl
        .split("Device (")
        .skip(1)
        .map(|d| (&d[..4], d))
        .collect();
    let names: Vec<&str> = devices.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["PWRB", "GED0", "COM1", "PS2K", "V000", "V001"]);
    for (name, hid, irq) in [
        ("COM1", "PNP0501", "0x00000004"),
        ("PS2K", "PNP0303", "0x00000001"),
        ("V000", "LNRO0005", "0x00000005"),
        ("V001", "LNRO0005", "0x00000006"),
        ("GED0", "ACPI0013", "0x00000003"),
    ] {
        let (_, body) = devices.iter().find(|(n, _)| *n == name).unwrap();
        assert!(body.contains(hid), "{name} has _HID {hid}:\n{body}");
        assert!(body.contains(irq), "{name} has interrupt {irq}:\n{body}");
    }
}

#[test]
fn acpi_is_off_only_when_the_command_line_says_acpi_off() {
    assert!(acpi_off("console=ttyS0 acpi=off root=/dev/vda"));
    assert!(acpi_off("acpi=off"));
    assert!(!acpi_off("console=ttyS0 root=/dev/vda"));
    assert!(!acpi_off("acpi=offx noacpi=off"));
    assert!(!acpi_off(""));
}

#[test]
fn tables_fit_below_the_mp_table_at_the_most_vcpus() {
    let windows: Vec<MmioWindow> = (0..19u32)
        .map(|i| MmioWindow {
            base: 0xd000_0000 + u64::from(i) * 0x1000,
            len: 0x1000,
            irq: 5 + i,
        })
        .collect();
    let image = acpi_tables(super::super::mptable::MAX_CPUS, &windows);
    assert!(ACPI_START + image.len() as u64 <= super::super::layout::MPTABLE_START);
}

/// ACPICA's disassembler on `bytes` (a table): its text, or None when `iasl` is not installed.
fn iasl_disassemble(bytes: &[u8]) -> Option<String> {
    if std::process::Command::new("iasl")
        .arg("-v")
        .output()
        .is_err()
    {
        eprintln!("iasl not installed (apt-get install acpica-tools); skipped");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("table.aml");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("iasl")
        .arg("-d")
        .arg(&path)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(std::fs::read_to_string(dir.path().join("table.dsl")).unwrap())
}

/// ACPICA's disassembler, when installed, reads the DSDT back to ASL.
#[test]
fn iasl_disassembles_the_dsdt() {
    let Some(asl) = iasl_disassemble(&dsdt(&WINDOWS)) else {
        return;
    };
    // One space between words, so that the checks do not depend on iasl's layout.
    let asl = asl.split_whitespace().collect::<Vec<_>>().join(" ");
    for expected in [
        "Device (COM1)",
        "EisaId (\"PNP0501\")",
        "IO (Decode16, 0x03F8, // Range Minimum",
        "Device (PS2K)",
        "EisaId (\"PNP0303\")",
        "Device (V000)",
        "Device (V001)",
        "Memory32Fixed (ReadWrite, 0xD0001000, // Address Base",
        "Device (PWRB)",
        "EisaId (\"PNP0C0C\")",
        "Device (GED0)",
        "\"ACPI0013\"",
        "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )",
        "OperationRegion (GDST, SystemIO, 0x0602, One)",
        "Method (_EVT, 1, Serialized)",
        "Notify (\\_SB.PWRB, 0x80)",
        "Name (_S5, Package (0x04)",
    ] {
        assert!(asl.contains(expected), "`{expected}` missing from:\n{asl}");
    }
}

/// The same for the FADT and the MADT (ACPICA's own table layouts).
#[test]
fn iasl_reads_the_fadt_and_madt() {
    let Some(fadt) = iasl_disassemble(&fadt(0xe01e0)) else {
        return;
    };
    for expected in [
        "8042 Present on ports 60/64 (V2) : 1",
        "Hardware Reduced (V5) : 1",
        "DSDT Address : 00000000000E01E0",
    ] {
        assert!(
            fadt.contains(expected),
            "`{expected}` missing from:\n{fadt}"
        );
    }
    let control = fadt.split("Sleep Control Register").nth(1).unwrap();
    assert!(control.contains("Space ID : 01 [SystemIO]"), "{control}");
    assert!(control.contains("Address : 0000000000000600"), "{control}");
    let Some(madt) = iasl_disassemble(&madt(2)) else {
        return;
    };
    assert_eq!(madt.matches("[Processor Local APIC]").count(), 2, "{madt}");
    assert!(madt.contains("Address : FEC00000"), "{madt}");
    assert!(!madt.contains("Interrupt Source Override"), "{madt}");
}
