//! Identity-mapped page tables for the first instruction in long mode.
//!
//! Virtual addresses equal physical ones, in 2 MiB pages. A kernel start maps the first
//! 4 GiB (Linux builds its own tables at once); a user start maps the first 4 GiB (the MMIO
//! hole included, so CPL3 drivers reach their devices) and all RAM above it, with the user bit.

use super::layout::{MMIO_GAP_END, PD_END, PD_START, PDPT_START, PML4_START};

const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const USER: u64 = 1 << 2;
const HUGE: u64 = 1 << 7;
const GIB: u64 = 1 << 30;
const PAGE_2M: u64 = 2 << 20;
const ENTRIES: u64 = 512;

/// Most GiB one set of tables can map (one page directory per GiB below the EBDA).
pub const MAX_MAPPED_GIB: u64 = (PD_END - PD_START) / 4096;

/// Why the page tables could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PagingError {
    /// Guest RAM reaches past what the boot page tables can map.
    #[error("guest RAM ends at {end:#x}, past the {max_gib} GiB the boot page tables can map")]
    TooMuchMemory {
        /// One past the highest RAM address.
        end: u64,
        /// The limit in GiB.
        max_gib: u64,
    },
}

/// One page-table page to write: its guest-physical address and its 512 entries.
pub type TablePage = (u64, Vec<u64>);

/// Builds the tables that identity-map the first 4 GiB and, for a user start, all RAM up to
/// `ram_end` too, with the user bit when `user` is set. Returns the pages to write; CR3 is
/// `PML4_START`.
pub fn identity_map(ram_end: u64, user: bool) -> Result<Vec<TablePage>, PagingError> {
    let wanted = if user { ram_end } else { 0 };
    let map_end = wanted.max(MMIO_GAP_END).next_multiple_of(GIB);
    let gibs = map_end / GIB;
    if gibs > MAX_MAPPED_GIB {
        return Err(PagingError::TooMuchMemory {
            end: ram_end,
            max_gib: MAX_MAPPED_GIB,
        });
    }
    let flags = PRESENT | WRITABLE | if user { USER } else { 0 };

    let mut pml4 = vec![0u64; ENTRIES as usize];
    pml4[0] = PDPT_START | flags;
    let mut pdpt = vec![0u64; ENTRIES as usize];
    let mut pages = Vec::with_capacity(gibs as usize + 2);
    for gib in 0..gibs {
        let pd_addr = PD_START + gib * 4096;
        pdpt[gib as usize] = pd_addr | flags;
        let pd = (0..ENTRIES)
            .map(|i| (gib * GIB + i * PAGE_2M) | flags | HUGE)
            .collect();
        pages.push((pd_addr, pd));
    }
    pages.insert(0, (PDPT_START, pdpt));
    pages.insert(0, (PML4_START, pml4));
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks the tables like the MMU does, returning the physical address and the AND of the
    /// user bits along the way.
    fn walk(pages: &[TablePage], va: u64) -> Option<(u64, bool)> {
        let table = |addr: u64| pages.iter().find(|(a, _)| *a == addr).map(|(_, t)| t);
        let pml4e = table(PML4_START)?[((va >> 39) & 511) as usize];
        let pdpte = table(pml4e & !0xfff)?[((va >> 30) & 511) as usize];
        if pdpte & PRESENT == 0 {
            return None;
        }
        let pde = table(pdpte & !0xfff)?[((va >> 21) & 511) as usize];
        if pde & PRESENT == 0 || pde & HUGE == 0 {
            return None;
        }
        let user = pml4e & pdpte & pde & USER != 0;
        Some((
            (pde & !(PAGE_2M - 1) & !HUGE & !0xfff) | (va & (PAGE_2M - 1)),
            user,
        ))
    }

    #[test]
    fn maps_identity_with_user_bit() {
        let pages = identity_map(512 << 20, true).unwrap();
        for va in [0, 0x20_0000, 0x1234_5678, 0xd000_0000, 0xffff_ffff] {
            assert_eq!(walk(&pages, va), Some((va, true)), "va {va:#x}");
        }
        assert_eq!(walk(&pages, 4 * GIB), None);
    }

    #[test]
    fn kernel_tables_have_no_user_bit() {
        let pages = identity_map(256 << 20, false).unwrap();
        assert_eq!(walk(&pages, 0x100_0000), Some((0x100_0000, false)));
        let big = identity_map(200 * GIB, false).unwrap();
        assert_eq!(
            big.len(),
            2 + 4,
            "a kernel start maps 4 GiB whatever the RAM"
        );
    }

    #[test]
    fn ram_above_4g_is_mapped() {
        let end = 6 * GIB + (3 << 20);
        let pages = identity_map(end, true).unwrap();
        assert_eq!(walk(&pages, end - 8), Some((end - 8, true)));
        assert_eq!(pages.len(), 2 + 7);
    }

    #[test]
    fn tables_stay_inside_their_area() {
        let pages = identity_map(MAX_MAPPED_GIB * GIB, true).unwrap();
        assert!(pages.iter().all(|(a, _)| *a < PD_END));
        assert!(matches!(
            identity_map(MAX_MAPPED_GIB * GIB + 1, true),
            Err(PagingError::TooMuchMemory { .. })
        ));
    }
}
