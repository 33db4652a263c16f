//! The GDT, the TSS, and the segment registers a vCPU starts with.
//!
//! One table serves both starts. Kernel starts use the Linux boot protocol's selectors
//! (`__BOOT_CS` = 0x10, `__BOOT_DS` = 0x18); user starts (the probe) use DPL-3 segments with
//! RPL-3 selectors. TR always points at a present, busy 64-bit TSS, and LDTR is null and
//! unusable, which is what hardware virtualization's entry checks require.

use kvm_bindings::kvm_segment;

pub use super::layout::TSS_SIZE;
use super::layout::TSS_START;

/// Index of the kernel 64-bit code segment.
pub const KERNEL_CODE: u16 = 2;
/// Index of the kernel data segment.
pub const KERNEL_DATA: u16 = 3;
/// Index of the user data segment (DPL 3).
pub const USER_DATA: u16 = 4;
/// Index of the user 64-bit code segment (DPL 3).
pub const USER_CODE: u16 = 5;
/// Index of the TSS descriptor (it takes two slots).
pub const TSS: u16 = 6;
/// Size of the 64-bit TSS proper.
const TSS_HEADER: u32 = 104;
/// One bit per port; a clear bit lets CPL3 code use the port whatever its IOPL.
const IO_BITMAP_BYTES: u32 = 65536 / 8;
// The TSS's area (layout's TSS_SIZE) holds the TSS with its I/O permission bitmap and the
// bitmap's all-ones terminator byte.
const _: () = assert!(TSS_SIZE == TSS_HEADER + IO_BITMAP_BYTES + 1);
/// Number of 8-byte slots in the table.
pub const GDT_ENTRIES: usize = 8;

/// Access byte and flags of one descriptor, in the layout of bits 40..56 of a descriptor.
const fn flags(access: u16, dpl: u16) -> u16 {
    access | (dpl << 5)
}

/// 64-bit code: present, code, readable, L=1, G=1.
const CODE64: u16 = 0xa09b;
/// Data: present, writable, D/B=1, G=1.
const DATA: u16 = 0xc093;
/// 64-bit TSS, busy (type 0xb), present.
const TSS_BUSY: u16 = 0x008b;

/// Encodes one 8-byte descriptor from its flags, base and limit.
pub const fn descriptor(flags: u16, base: u32, limit: u32) -> u64 {
    ((base as u64 & 0xff00_0000) << 32)
        | ((base as u64 & 0x00ff_ffff) << 16)
        | (limit as u64 & 0x0000_ffff)
        | ((limit as u64 & 0x000f_0000) << 32)
        | ((flags as u64 & 0xf0ff) << 40)
}

/// The GDT's contents.
pub fn gdt_table() -> [u64; GDT_ENTRIES] {
    let tss_base = TSS_START;
    let mut table = [0u64; GDT_ENTRIES];
    table[KERNEL_CODE as usize] = descriptor(CODE64, 0, 0xfffff);
    table[KERNEL_DATA as usize] = descriptor(DATA, 0, 0xfffff);
    table[USER_DATA as usize] = descriptor(flags(DATA, 3), 0, 0xfffff);
    table[USER_CODE as usize] = descriptor(flags(CODE64, 3), 0, 0xfffff);
    table[TSS as usize] = descriptor(TSS_BUSY, tss_base as u32, TSS_SIZE - 1);
    // The upper half of a 16-byte system descriptor holds base bits 32..64.
    table[TSS as usize + 1] = tss_base >> 32;
    table
}

/// The TSS: no stacks (nothing runs at CPL0 in a user start, and a kernel installs its own),
/// and an I/O permission bitmap that opens every port. IOPL 3 already opens them; the bitmap
/// makes port access from CPL3 independent of how the host virtualizes IOPL.
pub fn tss_bytes() -> Vec<u8> {
    let mut tss = vec![0u8; TSS_SIZE as usize];
    tss[0x66..0x68].copy_from_slice(&(TSS_HEADER as u16).to_le_bytes());
    tss[TSS_SIZE as usize - 1] = 0xff;
    tss
}

/// Decodes GDT slot `index` into the form KVM takes for a segment register, with selector
/// RPL `rpl`.
pub fn segment(table: &[u64; GDT_ENTRIES], index: u16, rpl: u16) -> kvm_segment {
    let entry = table[index as usize];
    let base = ((entry >> 16) & 0x00ff_ffff) | ((entry >> 32) & 0xff00_0000);
    let raw_limit = (entry & 0xffff) | ((entry >> 32) & 0x000f_0000);
    let granular = (entry >> 55) & 1 == 1;
    let limit = if granular {
        (raw_limit << 12) | 0xfff
    } else {
        raw_limit
    };
    kvm_segment {
        base,
        limit: limit as u32,
        selector: (index << 3) | rpl,
        type_: ((entry >> 40) & 0xf) as u8,
        present: ((entry >> 47) & 1) as u8,
        dpl: ((entry >> 45) & 3) as u8,
        db: ((entry >> 54) & 1) as u8,
        s: ((entry >> 44) & 1) as u8,
        l: ((entry >> 53) & 1) as u8,
        g: granular as u8,
        avl: ((entry >> 52) & 1) as u8,
        unusable: if (entry >> 47) & 1 == 1 { 0 } else { 1 },
        padding: 0,
    }
}

/// A null LDTR, marked unusable.
pub fn null_ldt() -> kvm_segment {
    kvm_segment {
        unusable: 1,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_code_is_flat_64_bit_ring_0() {
        let seg = segment(&gdt_table(), KERNEL_CODE, 0);
        assert_eq!(seg.selector, 0x10);
        assert_eq!((seg.base, seg.limit), (0, 0xffff_ffff));
        assert_eq!(
            (seg.l, seg.db, seg.dpl, seg.present, seg.s),
            (1, 0, 0, 1, 1)
        );
        assert_eq!(seg.type_, 0xb);
    }

    #[test]
    fn user_segments_have_dpl_3_and_rpl_3() {
        let table = gdt_table();
        let cs = segment(&table, USER_CODE, 3);
        let ss = segment(&table, USER_DATA, 3);
        assert_eq!((cs.selector, cs.dpl, cs.l), (0x2b, 3, 1));
        assert_eq!((ss.selector, ss.dpl, ss.db, ss.type_), (0x23, 3, 1, 3));
    }

    #[test]
    fn tr_is_a_present_busy_64_bit_tss() {
        let tr = segment(&gdt_table(), TSS, 0);
        assert_eq!((tr.type_, tr.present, tr.s, tr.unusable), (0xb, 1, 0, 0));
        assert_eq!(tr.base, TSS_START);
        assert_eq!(tr.limit, TSS_SIZE - 1);
        assert_eq!(tr.selector, 0x30);
    }

    #[test]
    fn tss_opens_every_port() {
        let tss = tss_bytes();
        let base = u16::from_le_bytes([tss[0x66], tss[0x67]]) as usize;
        assert_eq!(base, 104);
        assert!(tss[base..base + 8192].iter().all(|b| *b == 0));
        assert_eq!(tss.len(), base + 8192 + 1);
        assert_eq!(tss[tss.len() - 1], 0xff);
    }

    #[test]
    fn ldt_is_unusable() {
        assert_eq!(null_ldt().unusable, 1);
    }
}
