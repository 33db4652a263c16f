//! The Intel MultiProcessor table: how a kernel without ACPI finds its CPUs, the IOAPIC and
//! the legacy interrupt routing (ISA IRQ n to IOAPIC pin n).

use super::layout::{APIC_ADDR, IOAPIC_ADDR, MPTABLE_START};

/// Number of IOAPIC pins.
pub const IOAPIC_PINS: u8 = 24;
/// Most vCPUs the table (and 8-bit APIC ids, leaving one for the IOAPIC) can describe.
pub const MAX_CPUS: u32 = 254;

const FLOATING_LEN: usize = 16;
const HEADER_LEN: usize = 44;
const APIC_VERSION: u8 = 0x14;
const IOAPIC_VERSION: u8 = 0x11;
const CPU_ENABLED: u8 = 1;
const CPU_BOOTSTRAP: u8 = 2;
/// Family 6 signature and the FPU and APIC feature bits.
const CPU_SIGNATURE: u32 = 0x600;
const CPU_FEATURES: u32 = 0x201;
const ENTRY_PROCESSOR: u8 = 0;
const ENTRY_BUS: u8 = 1;
const ENTRY_IOAPIC: u8 = 2;
const ENTRY_IO_INTERRUPT: u8 = 3;
const ENTRY_LOCAL_INTERRUPT: u8 = 4;
const INT_TYPE_INT: u8 = 0;
const INT_TYPE_NMI: u8 = 1;
const INT_TYPE_EXTINT: u8 = 3;

fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |sum, b| sum.wrapping_add(*b))
        .wrapping_neg()
}

/// Builds the floating pointer followed by the configuration table, to be written at
/// `MPTABLE_START`, for `cpus` processors.
pub fn mptable(cpus: u32) -> Vec<u8> {
    assert!(
        (1..=MAX_CPUS).contains(&cpus),
        "vCPU count checked by config"
    );
    let ioapic_id = cpus as u8;
    let mut entries = Vec::new();
    let mut count: u16 = 0;
    for id in 0..cpus {
        let flags = CPU_ENABLED | if id == 0 { CPU_BOOTSTRAP } else { 0 };
        entries.extend([ENTRY_PROCESSOR, id as u8, APIC_VERSION, flags]);
        entries.extend(CPU_SIGNATURE.to_le_bytes());
        entries.extend(CPU_FEATURES.to_le_bytes());
        entries.extend([0u8; 8]);
        count += 1;
    }
    entries.extend([ENTRY_BUS, 0]);
    entries.extend(*b"ISA   ");
    count += 1;
    entries.extend([ENTRY_IOAPIC, ioapic_id, IOAPIC_VERSION, CPU_ENABLED]);
    entries.extend(IOAPIC_ADDR.to_le_bytes());
    count += 1;
    for pin in 0..IOAPIC_PINS {
        entries.extend([
            ENTRY_IO_INTERRUPT,
            INT_TYPE_INT,
            0,
            0,
            0,
            pin,
            ioapic_id,
            pin,
        ]);
        count += 1;
    }
    // LINT0 carries the PIC (ExtINT) to the bootstrap CPU; LINT1 carries NMI to all.
    entries.extend([ENTRY_LOCAL_INTERRUPT, INT_TYPE_EXTINT, 0, 0, 0, 0, 0, 0]);
    entries.extend([ENTRY_LOCAL_INTERRUPT, INT_TYPE_NMI, 0, 0, 0, 0, 0xff, 1]);
    count += 2;

    let table_addr = MPTABLE_START as u32 + FLOATING_LEN as u32;
    let table_len = (HEADER_LEN + entries.len()) as u16;
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend(*b"PCMP");
    header.extend(table_len.to_le_bytes());
    header.extend([4, 0]); // spec revision 1.4, checksum filled below
    header.extend(*b"KEC2    ");
    header.extend(*b"MICROVM     ");
    header.extend(0u32.to_le_bytes()); // no OEM table
    header.extend(0u16.to_le_bytes());
    header.extend(count.to_le_bytes());
    header.extend(APIC_ADDR.to_le_bytes());
    header.extend([0u8; 4]); // no extended table
    let mut table = header;
    table.extend(entries);
    table[7] = checksum(&table);

    let mut floating = Vec::with_capacity(FLOATING_LEN);
    floating.extend(*b"_MP_");
    floating.extend(table_addr.to_le_bytes());
    floating.extend([1, 4, 0, 0, 0, 0, 0, 0]); // 16 bytes long, revision 1.4, no default config
    floating[10] = checksum(&floating);

    floating.extend(table);
    floating
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
    }

    #[test]
    fn checksums_are_valid() {
        let bytes = mptable(4);
        assert_eq!(&bytes[..4], b"_MP_");
        assert_eq!(sum(&bytes[..FLOATING_LEN]), 0);
        let table = &bytes[FLOATING_LEN..];
        assert_eq!(&table[..4], b"PCMP");
        let len = u16::from_le_bytes([table[4], table[5]]) as usize;
        assert_eq!(len, table.len());
        assert_eq!(sum(table), 0);
    }

    #[test]
    fn lists_every_cpu_with_the_bootstrap_first() {
        let bytes = mptable(3);
        let table = &bytes[FLOATING_LEN..];
        let count = u16::from_le_bytes([table[34], table[35]]);
        assert_eq!(count, 3 + 1 + 1 + 24 + 2);
        let cpus: Vec<_> = (0..3)
            .map(|i| &table[HEADER_LEN + 20 * i..HEADER_LEN + 20 * (i + 1)])
            .collect();
        assert_eq!((cpus[0][0], cpus[0][1], cpus[0][3]), (0, 0, 3));
        assert_eq!((cpus[2][1], cpus[2][3]), (2, 1));
    }

    #[test]
    fn floating_pointer_points_at_the_table() {
        let bytes = mptable(1);
        let ptr = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
        assert_eq!(u64::from(ptr), MPTABLE_START + FLOATING_LEN as u64);
    }

    #[test]
    fn fits_the_bios_area_at_the_maximum() {
        assert!(mptable(MAX_CPUS).len() < 0x10000);
    }
}
