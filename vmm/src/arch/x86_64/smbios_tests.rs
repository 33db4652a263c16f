//! The SMBIOS tables read back the way Linux's DMI scan reads them.

use super::*;
use crate::config::{SmbiosConfig, parse_uuid};

fn sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
}

/// A structure as read back: type, formatted area, strings.
#[derive(Debug)]
struct Parsed {
    kind: u8,
    handle: u16,
    formatted: Vec<u8>,
    strings: Vec<String>,
}

impl Parsed {
    /// String number `n` (1-based) of this structure; "" for 0.
    fn string(&self, n: u8) -> &str {
        match n {
            0 => "",
            n => &self.strings[usize::from(n) - 1],
        }
    }
}

fn parse(table: &[u8], count: usize) -> Vec<Parsed> {
    let mut out = Vec::new();
    let mut off = 0;
    for _ in 0..count {
        let len = usize::from(table[off + 1]);
        let formatted = table[off..off + len].to_vec();
        let mut pos = off + len;
        let mut strings = Vec::new();
        loop {
            let end = pos + table[pos..].iter().position(|&b| b == 0).unwrap();
            if end == pos {
                // An empty string ends the set (two NULs when there are no strings).
                pos = if strings.is_empty() { end + 2 } else { end + 1 };
                break;
            }
            strings.push(String::from_utf8(table[pos..end].to_vec()).unwrap());
            pos = end + 1;
        }
        out.push(Parsed {
            kind: formatted[0],
            handle: u16::from_le_bytes([formatted[2], formatted[3]]),
            formatted,
            strings,
        });
        off = pos;
    }
    assert_eq!(off, table.len(), "the structures fill the table exactly");
    out
}

fn ec2_identity() -> SmbiosConfig {
    "manufacturer=Amazon EC2,product=t3.micro,version=1.0,\
     serial=ec2e1916-9099-7caf-fd21-012345abcdef,uuid=ec2e1916-9099-7caf-fd21-012345abcdef,\
     asset-tag=i-0123456789abcdef0"
        .parse()
        .unwrap()
}

fn image_of(c: &SmbiosConfig) -> Vec<u8> {
    smbios(&SmbiosIdentity {
        manufacturer: c.manufacturer(),
        product: c.product(),
        version: c.version.as_deref().unwrap_or(""),
        serial: c.serial.as_deref().unwrap_or(""),
        uuid: c.uuid_bytes(),
        asset_tag: c.asset_tag.as_deref().unwrap_or(""),
    })
}

#[test]
fn uuid_has_its_first_three_fields_little_endian() {
    let bytes = encode_uuid(parse_uuid("ec2e1916-9099-7caf-fd21-012345abcdef").unwrap());
    assert_eq!(
        bytes,
        [
            0x16, 0x19, 0x2e, 0xec, 0x99, 0x90, 0xaf, 0x7c, 0xfd, 0x21, 0x01, 0x23, 0x45, 0xab,
            0xcd, 0xef
        ]
    );
}

#[test]
fn entry_point_checksums_and_points_at_the_table() {
    let image = image_of(&ec2_identity());
    let ep = &image[..0x1f];
    assert_eq!(&ep[..4], b"_SM_");
    assert_eq!(ep[5], 0x1f);
    assert_eq!((ep[6], ep[7]), (2, 8));
    assert_eq!(sum(ep), 0, "entry point checksum");
    assert_eq!(&ep[0x10..0x15], b"_DMI_");
    assert_eq!(sum(&ep[0x10..]), 0, "intermediate checksum");
    assert_eq!(ep[0x1e], 0x28, "BCD revision");
    let len = usize::from(u16::from_le_bytes([ep[0x16], ep[0x17]]));
    let addr = u32::from_le_bytes(ep[0x18..0x1c].try_into().unwrap());
    let count = usize::from(u16::from_le_bytes([ep[0x1c], ep[0x1d]]));
    assert_eq!(u64::from(addr), SMBIOS_START + 0x20);
    assert_eq!(0x20 + len, image.len());
    let structures = parse(&image[0x20..], count);
    let max = u16::from_le_bytes([ep[8], ep[9]]);
    assert!(
        structures
            .iter()
            .all(|s| s.formatted.len() <= usize::from(max))
    );
    let kinds: Vec<u8> = structures.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [0, 1, 3, 127]);
    let handles: Vec<u16> = structures.iter().map(|s| s.handle).collect();
    assert_eq!(handles, [0, 1, 2, 0xfeff]);
}

#[test]
fn structures_carry_the_identity() {
    let image = image_of(&ec2_identity());
    let s = parse(&image[0x20..], 4);
    let (bios, system, chassis) = (&s[0], &s[1], &s[2]);
    assert_eq!(bios.formatted.len(), 0x18);
    assert_eq!(bios.string(bios.formatted[4]), "Amazon EC2", "bios_vendor");
    assert_ne!(bios.formatted[0x13] & (1 << 4), 0, "a virtual machine");
    assert_eq!(system.formatted.len(), 0x1b);
    let f = &system.formatted;
    assert_eq!(system.string(f[4]), "Amazon EC2", "sys_vendor");
    assert_eq!(system.string(f[5]), "t3.micro", "product_name");
    assert_eq!(system.string(f[6]), "1.0", "product_version");
    assert_eq!(
        system.string(f[7]),
        "ec2e1916-9099-7caf-fd21-012345abcdef",
        "product_serial"
    );
    assert_eq!(
        f[8..24],
        [
            0x16, 0x19, 0x2e, 0xec, 0x99, 0x90, 0xaf, 0x7c, 0xfd, 0x21, 0x01, 0x23, 0x45, 0xab,
            0xcd, 0xef
        ]
    );
    assert_eq!(chassis.formatted.len(), 0x16);
    assert_eq!(chassis.string(chassis.formatted[8]), "i-0123456789abcdef0");
    assert_eq!(chassis.string(chassis.formatted[4]), "Amazon EC2");
    assert_eq!(s[3].formatted, [127, 4, 0xff, 0xfe]);
    assert!(s[3].strings.is_empty());
}

#[test]
fn defaults_leave_absent_strings_out() {
    let image = image_of(&SmbiosConfig::default());
    let s = parse(&image[0x20..], 4);
    let f = &s[1].formatted;
    assert_eq!(s[1].string(f[4]), "kec2");
    assert_eq!(s[1].string(f[5]), "microvm");
    assert_eq!((f[6], f[7]), (0, 0), "no version, no serial");
    assert_eq!(f[8..24], [0; 16], "nil UUID");
    assert_eq!(s[2].formatted[8], 0, "no asset tag");
}

#[test]
fn longest_strings_fit_and_do_not_reach_the_end_of_the_bios_area() {
    let long = "x".repeat(255);
    let image = smbios(&SmbiosIdentity {
        manufacturer: &long,
        product: &long,
        version: &long,
        serial: &long,
        uuid: [0xff; 16],
        asset_tag: &long,
    });
    assert!(SMBIOS_START + image.len() as u64 <= 0x10_0000);
    parse(&image[0x20..], 4);
}

#[test]
fn mp_table_ends_before_the_smbios_area() {
    let mp = super::super::mptable::mptable(super::super::mptable::MAX_CPUS);
    assert!(super::super::layout::MPTABLE_START + mp.len() as u64 <= SMBIOS_START);
}
