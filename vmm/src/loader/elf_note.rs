//! The ELF note by which an image asks for a user-mode (CPL3) start (`docs/probe-abi.md`).

use std::io::{Read, Seek, SeekFrom};

use crate::arch::x86_64::regs::EntryMode;

/// Owner name of our notes.
pub const NOTE_NAME: &[u8] = b"kec2\0";
/// Note type: entry mode.
pub const NOTE_ENTRY_MODE: u32 = 1;
const PT_NOTE: u32 = 4;
/// Largest note segment read.
const MAX_NOTE_BYTES: u64 = 64 * 1024;
/// Most program headers looked at.
const MAX_PHDRS: u16 = 256;

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    bytes
        .get(at..at + 8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
}

/// Finds our entry-mode note in the contents of one `PT_NOTE` segment.
pub fn parse_entry_note(notes: &[u8]) -> Option<EntryMode> {
    let mut at = 0usize;
    while at + 12 <= notes.len() {
        let namesz = u32_at(notes, at)? as usize;
        let descsz = u32_at(notes, at + 4)? as usize;
        let kind = u32_at(notes, at + 8)?;
        let name_at = at + 12;
        let desc_at = name_at.checked_add(namesz.next_multiple_of(4))?;
        let next = desc_at.checked_add(descsz.next_multiple_of(4))?;
        let name = notes.get(name_at..name_at + namesz)?;
        if name == NOTE_NAME && kind == NOTE_ENTRY_MODE && descsz >= 4 {
            return match u32_at(notes, desc_at)? {
                1 => Some(EntryMode::User),
                _ => Some(EntryMode::Kernel),
            };
        }
        at = next;
    }
    None
}

/// Reads the entry mode an ELF image asks for, if it has our note.
pub fn entry_mode_of<F: Read + Seek>(file: &mut F) -> std::io::Result<Option<EntryMode>> {
    let mut ehdr = [0u8; 64];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut ehdr)?;
    let phoff = u64_at(&ehdr, 0x20).unwrap_or(0);
    let phentsize = u16::from_le_bytes([ehdr[0x36], ehdr[0x37]]);
    let phnum = u16::from_le_bytes([ehdr[0x38], ehdr[0x39]]).min(MAX_PHDRS);
    if phentsize < 56 {
        return Ok(None);
    }
    for i in 0..u64::from(phnum) {
        let mut phdr = [0u8; 56];
        file.seek(SeekFrom::Start(phoff + i * u64::from(phentsize)))?;
        file.read_exact(&mut phdr)?;
        if u32_at(&phdr, 0) != Some(PT_NOTE) {
            continue;
        }
        let offset = u64_at(&phdr, 0x08).unwrap_or(0);
        let size = u64_at(&phdr, 0x20).unwrap_or(0).min(MAX_NOTE_BYTES);
        let mut notes = vec![0u8; size as usize];
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(&mut notes)?;
        if let Some(mode) = parse_entry_note(&notes) {
            return Ok(Some(mode));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend((name.len() as u32).to_le_bytes());
        v.extend((desc.len() as u32).to_le_bytes());
        v.extend(kind.to_le_bytes());
        v.extend(name);
        v.resize(v.len().next_multiple_of(4), 0);
        v.extend(desc);
        v.resize(v.len().next_multiple_of(4), 0);
        v
    }

    #[test]
    fn finds_the_user_note_after_others() {
        let mut notes = note(b"GNU\0", 3, &[1, 2, 3, 4, 5]);
        notes.extend(note(NOTE_NAME, NOTE_ENTRY_MODE, &1u32.to_le_bytes()));
        assert_eq!(parse_entry_note(&notes), Some(EntryMode::User));
    }

    #[test]
    fn kernel_value_and_missing_note() {
        let notes = note(NOTE_NAME, NOTE_ENTRY_MODE, &0u32.to_le_bytes());
        assert_eq!(parse_entry_note(&notes), Some(EntryMode::Kernel));
        assert_eq!(parse_entry_note(&note(b"Xen\0", 18, &[0; 8])), None);
        assert_eq!(parse_entry_note(&note(NOTE_NAME, 2, &[1, 0, 0, 0])), None);
    }

    #[test]
    fn truncated_notes_are_ignored() {
        let notes = note(NOTE_NAME, NOTE_ENTRY_MODE, &1u32.to_le_bytes());
        for cut in 0..notes.len() - 4 {
            assert_eq!(parse_entry_note(&notes[..cut]), None, "cut at {cut}");
        }
        let mut huge = notes.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_entry_note(&huge), None);
    }
}
