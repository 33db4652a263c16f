//! What the vmm tells the probe through the Linux `boot_params` page: the e820 memory map and
//! the command line (offsets from the x86 boot protocol, as listed in docs/probe-abi.md).

/// Size of the `boot_params` page.
pub const BOOT_PARAMS_SIZE: usize = 4096;
/// Offset of `e820_entries` (u8).
const E820_ENTRIES: usize = 0x1e8;
/// Offset of `hdr.cmd_line_ptr` (u32).
const CMD_LINE_PTR: usize = 0x228;
/// Offset of `e820_table`.
const E820_TABLE: usize = 0x2d0;
/// Size of one e820 entry: u64 addr, u64 size, u32 type.
const E820_ENTRY_SIZE: usize = 20;
/// Entries the zero page has room for.
pub const E820_MAX_ENTRIES: usize = 128;
/// e820 type of usable RAM.
pub const E820_USABLE: u32 = 1;
/// The longest command line read, in bytes (it ends earlier at its NUL).
pub const CMDLINE_MAX: usize = 4096;

const MIB: u64 = 1 << 20;

/// One e820 range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct E820Entry {
    /// First byte.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// Type; [`E820_USABLE`] is RAM.
    pub kind: u32,
}

impl E820Entry {
    /// One past the last byte (saturating).
    pub const fn end(&self) -> u64 {
        self.addr.saturating_add(self.size)
    }

    /// Whether this range is usable RAM.
    pub const fn is_usable(&self) -> bool {
        self.kind == E820_USABLE
    }
}

/// The e820 table, copied out of `boot_params`.
#[derive(Clone, Debug)]
pub struct E820Table {
    entries: [E820Entry; E820_MAX_ENTRIES],
    len: usize,
}

impl E820Table {
    /// The entries, in table order.
    pub fn entries(&self) -> &[E820Entry] {
        &self.entries[..self.len]
    }

    /// End of the usable range that ends highest, if any.
    pub fn highest_usable_end(&self) -> Option<u64> {
        self.entries()
            .iter()
            .filter(|e| e.is_usable() && e.size > 0)
            .map(E820Entry::end)
            .max()
    }
}

/// What the probe uses from `boot_params`.
#[derive(Clone, Debug)]
pub struct BootInfo {
    /// The memory map.
    pub e820: E820Table,
    /// Guest physical address of the NUL-terminated command line (0: none).
    pub cmd_line_ptr: u32,
}

impl BootInfo {
    /// Parses a `boot_params` page. A count beyond the table's room is clamped to it.
    pub fn parse(page: &[u8; BOOT_PARAMS_SIZE]) -> Self {
        let len = usize::from(page[E820_ENTRIES]).min(E820_MAX_ENTRIES);
        let mut entries = [E820Entry::default(); E820_MAX_ENTRIES];
        for (i, entry) in entries.iter_mut().take(len).enumerate() {
            let at = E820_TABLE + i * E820_ENTRY_SIZE;
            *entry = E820Entry {
                addr: read_u64(page, at),
                size: read_u64(page, at + 8),
                kind: read_u32(page, at + 16),
            };
        }
        Self {
            e820: E820Table { entries, len },
            cmd_line_ptr: read_u32(page, CMD_LINE_PTR),
        }
    }

    /// Parses the `boot_params` page at guest physical address `address`.
    ///
    /// # Safety
    /// `address` must be the identity-mapped, readable `boot_params` page the vmm passed in `rsi`.
    pub unsafe fn from_address(address: u64) -> Self {
        let ptr = core::ptr::with_exposed_provenance::<[u8; BOOT_PARAMS_SIZE]>(address as usize);
        // SAFETY: the caller guarantees a readable page there; nothing writes it, and the
        // reference does not outlive this call.
        Self::parse(unsafe { &*ptr })
    }
}

/// The command line at guest physical address `ptr`, up to its NUL (at most [`CMDLINE_MAX`]
/// bytes); empty when `ptr` is 0.
///
/// # Safety
/// `ptr` must be the vmm's `cmd_line_ptr`: identity-mapped, readable for [`CMDLINE_MAX`] bytes
/// or up to a NUL, and never written while the probe runs (it lies below 1 MiB).
pub unsafe fn cmdline_at(ptr: u32) -> &'static [u8] {
    if ptr == 0 {
        return &[];
    }
    // SAFETY: the caller's guarantees are `nul_terminated`'s.
    unsafe { nul_terminated(core::ptr::with_exposed_provenance::<u8>(ptr as usize)) }
}

/// The bytes from `start` up to the first NUL, at most [`CMDLINE_MAX`] of them.
///
/// # Safety
/// The bytes from `start` must be readable up to a NUL or for [`CMDLINE_MAX`] bytes, and must
/// never be written afterwards.
unsafe fn nul_terminated(start: *const u8) -> &'static [u8] {
    let mut len = 0;
    // SAFETY: the caller guarantees these bytes are readable, up to the NUL or the bound.
    while len < CMDLINE_MAX && unsafe { start.add(len).read() } != 0 {
        len += 1;
    }
    // SAFETY: the `len` bytes just read are readable and, per the caller, never written.
    unsafe { core::slice::from_raw_parts(start, len) }
}

/// Bytes in MiB, rounded to the nearest MiB.
pub const fn to_mib_rounded(bytes: u64) -> u64 {
    bytes.saturating_add(MIB / 2) / MIB
}

fn read_u64(page: &[u8], at: usize) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&page[at..at + 8]);
    u64::from_le_bytes(bytes)
}

fn read_u32(page: &[u8], at: usize) -> u32 {
    let mut bytes = [0; 4];
    bytes.copy_from_slice(&page[at..at + 4]);
    u32::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_with(entries: &[(u64, u64, u32)], cmd_line_ptr: u32) -> Box<[u8; BOOT_PARAMS_SIZE]> {
        let mut page = Box::new([0u8; BOOT_PARAMS_SIZE]);
        page[E820_ENTRIES] = entries.len() as u8;
        for (i, &(addr, size, kind)) in entries.iter().enumerate() {
            let at = E820_TABLE + i * E820_ENTRY_SIZE;
            page[at..at + 8].copy_from_slice(&addr.to_le_bytes());
            page[at + 8..at + 16].copy_from_slice(&size.to_le_bytes());
            page[at + 16..at + 20].copy_from_slice(&kind.to_le_bytes());
        }
        page[CMD_LINE_PTR..CMD_LINE_PTR + 4].copy_from_slice(&cmd_line_ptr.to_le_bytes());
        page
    }

    #[test]
    fn parses_e820_and_cmdline_pointer() {
        let page = page_with(
            &[
                (0, 0x9fc00, 1),
                (0xf0000, 0x10000, 2),
                (0x100000, 0x3f00000, 1),
            ],
            0x20000,
        );
        let info = BootInfo::parse(&page);
        assert_eq!(info.cmd_line_ptr, 0x20000);
        assert_eq!(
            info.e820.entries(),
            &[
                E820Entry {
                    addr: 0,
                    size: 0x9fc00,
                    kind: 1
                },
                E820Entry {
                    addr: 0xf0000,
                    size: 0x10000,
                    kind: 2
                },
                E820Entry {
                    addr: 0x100000,
                    size: 0x3f00000,
                    kind: 1
                },
            ]
        );
        assert_eq!(info.e820.highest_usable_end(), Some(64 << 20));
    }

    #[test]
    fn highest_end_ignores_reserved_and_order() {
        let page = page_with(
            &[
                (0x1_0000_0000, 0x4000_0000, 1),
                (0x100000, 0xbff00000, 1),
                (0xfec0_0000, 0x1000_0000_0000, 2),
            ],
            0,
        );
        let info = BootInfo::parse(&page);
        assert_eq!(info.e820.highest_usable_end(), Some(0x1_4000_0000));
    }

    #[test]
    fn no_usable_range_and_clamped_count() {
        let mut page = page_with(&[(0, 0x1000, 2)], 0);
        assert_eq!(BootInfo::parse(&page).e820.highest_usable_end(), None);
        page[E820_ENTRIES] = 255;
        assert_eq!(
            BootInfo::parse(&page).e820.entries().len(),
            E820_MAX_ENTRIES
        );
    }

    #[test]
    fn rounds_to_nearest_mib() {
        assert_eq!(to_mib_rounded(64 << 20), 64);
        assert_eq!(to_mib_rounded((64 << 20) - 4096), 64);
        assert_eq!(to_mib_rounded((64 << 20) + (512 << 10)), 65);
        assert_eq!(to_mib_rounded((64 << 20) + (512 << 10) - 1), 64);
        assert_eq!(to_mib_rounded(0), 0);
        assert_eq!(to_mib_rounded(u64::MAX), u64::MAX / (1 << 20));
    }

    #[test]
    fn reads_cmdline_up_to_nul_or_bound() {
        static TEXT: &[u8] = b"console=ttyS0 probe.mode=count\0garbage";
        // SAFETY: `TEXT` is a static, NUL-terminated and never written.
        assert_eq!(
            unsafe { nul_terminated(TEXT.as_ptr()) },
            b"console=ttyS0 probe.mode=count"
        );
        static LONG: [u8; CMDLINE_MAX + 8] = [b'x'; CMDLINE_MAX + 8];
        // SAFETY: `LONG` is a static longer than the bound and never written.
        assert_eq!(unsafe { nul_terminated(LONG.as_ptr()) }.len(), CMDLINE_MAX);
        // SAFETY: a null pointer is handled without reading memory.
        assert_eq!(unsafe { cmdline_at(0) }, b"");
    }
}
