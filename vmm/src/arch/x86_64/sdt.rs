//! What every ACPI table this VMM writes shares: the OEM identity in its header, and the
//! bytes of a table or AML object.

use acpi_tables::Aml;

/// The OEM id every table carries.
pub const OEM_ID: [u8; 6] = *b"KEC2  ";
/// The OEM table id every table carries.
pub const OEM_TABLE_ID: [u8; 8] = *b"MICROVM ";
/// The OEM revision every table carries.
pub const OEM_REVISION: u32 = 1;

/// The AML (or table) bytes of `object`.
pub(super) fn aml_bytes(object: &dyn Aml) -> Vec<u8> {
    let mut bytes = Vec::new();
    object.to_aml_bytes(&mut bytes);
    bytes
}
