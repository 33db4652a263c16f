//! SMBIOS 2.8 tables: the 32-bit entry point (`_SM_`/`_DMI_`) at `SMBIOS_START`, where
//! Linux's DMI scan of 0xf0000..0x100000 finds it, then the structures: BIOS (type 0),
//! system (type 1), chassis (type 3) and the end of table (type 127).
//!
//! Linux shows them in /sys/class/dmi/id: `sys_vendor`, `product_name`, `product_version`,
//! `product_serial`, `product_uuid` (type 1), `bios_vendor` (type 0), `chassis_asset_tag`
//! (type 3).

use super::layout::{SMBIOS_MAX_SIZE, SMBIOS_START};

/// Where the structure table starts, from `SMBIOS_START`.
const TABLE_OFFSET: usize = 0x20;
const ENTRY_POINT_LEN: u8 = 0x1f;
const MAJOR: u8 = 2;
const MINOR: u8 = 8;

const TYPE_BIOS: u8 = 0;
const TYPE_SYSTEM: u8 = 1;
const TYPE_CHASSIS: u8 = 3;
const TYPE_END: u8 = 127;
/// BIOS characteristics: "not supported".
const BIOS_CHARACTERISTICS_UNSUPPORTED: u64 = 1 << 3;
/// BIOS characteristics extension byte 2: the system is a virtual machine.
const BIOS_EXT2_VIRTUAL_MACHINE: u8 = 1 << 4;
/// System wake-up type: power switch.
const WAKE_POWER_SWITCH: u8 = 6;
/// Chassis type "Other", and "Safe" for its states.
const CHASSIS_OTHER: u8 = 1;
const STATE_SAFE: u8 = 3;
const SECURITY_UNKNOWN: u8 = 2;

/// What the tables say about the machine (strings already validated: no NUL, at most 255
/// bytes; an empty string is left out).
#[derive(Debug, Clone, Default)]
pub struct SmbiosIdentity<'a> {
    /// System, BIOS and chassis manufacturer.
    pub manufacturer: &'a str,
    /// System product name.
    pub product: &'a str,
    /// System version.
    pub version: &'a str,
    /// System serial number.
    pub serial: &'a str,
    /// System UUID, bytes in the order the text form writes them.
    pub uuid: [u8; 16],
    /// Chassis asset tag.
    pub asset_tag: &'a str,
}

/// The UUID as SMBIOS 2.6+ stores it: the first three fields little-endian, so that Linux
/// prints `product_uuid` as the text it came from.
pub fn encode_uuid(uuid: [u8; 16]) -> [u8; 16] {
    let mut out = uuid;
    out[..4].reverse();
    out[4..6].reverse();
    out[6..8].reverse();
    out
}

/// One structure being built: formatted area, then its strings.
struct Structure {
    formatted: Vec<u8>,
    strings: Vec<u8>,
    count: u8,
}

impl Structure {
    fn new(kind: u8, len: u8, handle: u16) -> Self {
        let mut formatted = vec![kind, len];
        formatted.extend(handle.to_le_bytes());
        Structure {
            formatted,
            strings: Vec::new(),
            count: 0,
        }
    }

    /// Adds a string and returns its number (0, "none", for an empty one).
    fn string(&mut self, text: &str) -> u8 {
        if text.is_empty() {
            return 0;
        }
        self.strings.extend(text.as_bytes());
        self.strings.push(0);
        self.count += 1;
        self.count
    }

    fn push(&mut self, bytes: &[u8]) {
        self.formatted.extend(bytes);
    }

    fn finish(mut self) -> Vec<u8> {
        assert_eq!(self.formatted.len(), usize::from(self.formatted[1]));
        if self.strings.is_empty() {
            self.strings.push(0);
        }
        self.strings.push(0);
        self.formatted.extend(self.strings);
        self.formatted
    }
}

fn bios(id: &SmbiosIdentity<'_>) -> Vec<u8> {
    let mut s = Structure::new(TYPE_BIOS, 0x18, 0);
    let vendor = s.string(id.manufacturer);
    let version = s.string(env!("CARGO_PKG_VERSION"));
    s.push(&[vendor, version]);
    s.push(&0xf000u16.to_le_bytes()); // starting segment
    let date = s.string("01/01/2026");
    s.push(&[date, 0]); // release date; ROM size 64 KiB
    s.push(&BIOS_CHARACTERISTICS_UNSUPPORTED.to_le_bytes());
    s.push(&[0, BIOS_EXT2_VIRTUAL_MACHINE]);
    s.push(&[0, 1, 0xff, 0xff]); // BIOS release 0.1; no embedded controller
    s.finish()
}

fn system(id: &SmbiosIdentity<'_>) -> Vec<u8> {
    let mut s = Structure::new(TYPE_SYSTEM, 0x1b, 1);
    let strings = [
        s.string(id.manufacturer),
        s.string(id.product),
        s.string(id.version),
        s.string(id.serial),
    ];
    s.push(&strings);
    s.push(&encode_uuid(id.uuid));
    s.push(&[WAKE_POWER_SWITCH, 0, 0]); // no SKU, no family
    s.finish()
}

fn chassis(id: &SmbiosIdentity<'_>) -> Vec<u8> {
    let mut s = Structure::new(TYPE_CHASSIS, 0x16, 2);
    let manufacturer = s.string(id.manufacturer);
    let asset_tag = s.string(id.asset_tag);
    s.push(&[manufacturer, CHASSIS_OTHER, 0, 0, asset_tag]);
    s.push(&[STATE_SAFE, STATE_SAFE, STATE_SAFE, SECURITY_UNKNOWN]);
    s.push(&[0; 4]); // OEM-defined
    s.push(&[0, 0, 0, 0, 0]); // height, power cords, no contained elements; no SKU
    s.finish()
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |sum, b| sum.wrapping_add(*b))
        .wrapping_neg()
}

/// The entry point followed by the structures, to be written at `SMBIOS_START`.
pub fn smbios(id: &SmbiosIdentity<'_>) -> Vec<u8> {
    let structures = [
        bios(id),
        system(id),
        chassis(id),
        Structure::new(TYPE_END, 4, 0xfeff).finish(),
    ];
    let max_size = structures.iter().map(Vec::len).max().unwrap_or(0) as u16;
    let table: Vec<u8> = structures.concat();
    let mut ep = Vec::with_capacity(usize::from(ENTRY_POINT_LEN));
    ep.extend(*b"_SM_");
    ep.extend([0, ENTRY_POINT_LEN, MAJOR, MINOR]);
    ep.extend(max_size.to_le_bytes());
    ep.extend([0; 6]); // entry point revision 0, formatted area
    ep.extend(*b"_DMI_");
    ep.push(0); // intermediate checksum
    ep.extend((table.len() as u16).to_le_bytes());
    ep.extend((SMBIOS_START as u32 + TABLE_OFFSET as u32).to_le_bytes());
    ep.extend((structures.len() as u16).to_le_bytes());
    ep.push((MAJOR << 4) | MINOR); // BCD revision
    ep[0x15] = checksum(&ep[0x10..]);
    ep[4] = checksum(&ep);

    let mut image = ep;
    image.resize(TABLE_OFFSET, 0);
    image.extend(table);
    assert!(image.len() <= SMBIOS_MAX_SIZE, "SMBIOS fits its area");
    image
}

#[cfg(test)]
#[path = "smbios_tests.rs"]
mod tests;
