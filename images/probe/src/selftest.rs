//! `probe.mode=selftest`: writes a pattern derived from each 8-byte address over all free
//! memory, reads it all back, checks it and folds what it read into a checksum.

use alloc::vec::Vec;
use core::hint::black_box;

use crate::bootinfo::E820Entry;

/// Memory below this is the vmm's (page tables, GDT, boot_params, command line).
pub const LOW_MEMORY_END: u64 = 1 << 20;
/// Words the heap check allocates (256 KiB).
const HEAP_CHECK_WORDS: usize = 32 * 1024;

/// FNV-1a 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A half-open range of guest physical addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// How the self-test ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every word read back as written; `checksum` folds all of them.
    Passed {
        /// The words read, in address order, folded by [`Checksum`].
        checksum: u64,
    },
    /// The word at `address` did not read back as written.
    Failed {
        /// Guest physical address of the first bad word.
        address: u64,
    },
}

/// The value the self-test stores at `address`: the splitmix64 finaliser of the address, so
/// every word differs from its neighbours and a wrong address line shows up.
pub const fn pattern(address: u64) -> u64 {
    let mut z = address.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a (64-bit constants) applied to whole 64-bit words rather than bytes: for each word,
/// `hash = (hash ^ word) * FNV_PRIME`. One multiply per word keeps a gigabyte check fast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checksum(u64);

impl Default for Checksum {
    fn default() -> Self {
        Self::new()
    }
}

impl Checksum {
    /// The checksum of nothing (the FNV offset basis).
    pub const fn new() -> Self {
        Self(FNV_OFFSET)
    }

    /// Folds in one word.
    pub fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(FNV_PRIME);
    }

    /// The checksum so far.
    pub const fn value(self) -> u64 {
        self.0
    }
}

/// Calls `f` with each free range: every usable e820 range, from [`LOW_MEMORY_END`] up, minus
/// `reserved` (the probe's own image), trimmed to whole 8-byte words; empty ranges are skipped.
pub fn free_ranges(e820: &[E820Entry], reserved: Range, mut f: impl FnMut(Range)) {
    for entry in e820.iter().filter(|e| e.is_usable()) {
        let start = entry.addr.max(LOW_MEMORY_END);
        let end = entry.end();
        for piece in [
            Range {
                start,
                end: end.min(reserved.start),
            },
            Range {
                start: start.max(reserved.end),
                end,
            },
        ] {
            let Some(start) = piece.start.checked_next_multiple_of(8) else {
                continue;
            };
            let end = piece.end & !7;
            if start < end {
                f(Range { start, end });
            }
        }
    }
}

/// Runs the self-test: a heap check, then the pattern over every free range.
///
/// # Safety
/// `e820` must be the vmm's memory map (all usable RAM identity-mapped and writable), and `image`
/// must cover everything the probe uses above 1 MiB: every other byte there is overwritten.
pub unsafe fn run(e820: &[E820Entry], image: Range) -> Outcome {
    if let Err(address) = heap_check() {
        return Outcome::Failed { address };
    }
    // SAFETY: the caller guarantees the free ranges are RAM that nothing else uses.
    free_ranges(e820, image, |range| unsafe { fill(range) });
    let mut checksum = Checksum::new();
    let mut failure = None;
    free_ranges(e820, image, |range| {
        if failure.is_none() {
            // SAFETY: as above; `fill` wrote every word of this range.
            failure = unsafe { verify(range, &mut checksum) }.err();
        }
    });
    match failure {
        Some(address) => Outcome::Failed { address },
        None => Outcome::Passed {
            checksum: checksum.value(),
        },
    }
}

/// Checks the global allocator: a buffer from it holds the pattern of its own addresses.
/// `Err` carries the address of the first bad word.
pub fn heap_check() -> Result<(), u64> {
    let mut words: Vec<u64> = Vec::with_capacity(HEAP_CHECK_WORDS);
    words.extend((0..HEAP_CHECK_WORDS).map(|_| 0));
    for word in &mut words {
        *word = pattern(address_of(word));
    }
    let words = black_box(words);
    match words.iter().find(|&w| *w != pattern(address_of(w))) {
        Some(bad) => Err(address_of(bad)),
        None => Ok(()),
    }
}

fn address_of(word: &u64) -> u64 {
    core::ptr::from_ref(word).addr() as u64
}

fn word_at(address: u64) -> *mut u64 {
    core::ptr::with_exposed_provenance_mut(address as usize)
}

/// Writes the pattern over `range`.
///
/// # Safety
/// `range` must be identity-mapped, writable RAM (8-byte aligned) that nothing else uses.
unsafe fn fill(range: Range) {
    let mut address = range.start;
    while address < range.end {
        // SAFETY: per the caller, this word is writable RAM no one else uses; volatile keeps
        // the compiler from dropping or merging the stores.
        unsafe { word_at(address).write_volatile(pattern(address)) };
        address += 8;
    }
}

/// Reads `range` back, folding each word into `checksum`; `Err` at the first bad word.
///
/// # Safety
/// `range` must be identity-mapped, readable RAM (8-byte aligned) that nothing else uses.
unsafe fn verify(range: Range, checksum: &mut Checksum) -> Result<(), u64> {
    let mut address = range.start;
    while address < range.end {
        // SAFETY: per the caller, this word is readable RAM; volatile forces a real load.
        let word = unsafe { word_at(address).read_volatile() };
        if word != pattern(address) {
            return Err(address);
        }
        checksum.add(word);
        address += 8;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn usable(addr: u64, size: u64) -> E820Entry {
        E820Entry {
            addr,
            size,
            kind: 1,
        }
    }

    fn collect(e820: &[E820Entry], reserved: Range) -> Vec<Range> {
        let mut out = Vec::new();
        free_ranges(e820, reserved, |r| out.push(r));
        out
    }

    #[test]
    fn free_ranges_skip_low_memory_image_and_reserved_types() {
        let e820 = [
            usable(0, 0x9fc00),
            E820Entry {
                addr: 0xf0000,
                size: 0x10000,
                kind: 2,
            },
            usable(MIB, 63 * MIB),
            E820Entry {
                addr: 0xfeb0_0000,
                size: MIB,
                kind: 2,
            },
        ];
        let image = Range {
            start: 2 * MIB,
            end: 11 * MIB,
        };
        assert_eq!(
            collect(&e820, image),
            [
                Range {
                    start: MIB,
                    end: 2 * MIB
                },
                Range {
                    start: 11 * MIB,
                    end: 64 * MIB
                }
            ]
        );
    }

    #[test]
    fn free_ranges_straddling_and_unaligned() {
        // A range below 1 MiB that crosses it, ending unaligned; the image is elsewhere.
        let e820 = [usable(0x80000, 0x80000 + 0x1003), usable(4 * MIB, 0)];
        let image = Range {
            start: 2 * MIB,
            end: 3 * MIB,
        };
        assert_eq!(
            collect(&e820, image),
            [Range {
                start: MIB,
                end: MIB + 0x1000
            }]
        );
        // The image covers a whole range.
        let e820 = [usable(2 * MIB, MIB)];
        assert_eq!(collect(&e820, image), []);
        // A range wholly above the image, and one at the top of the address space.
        let e820 = [usable(8 * MIB, MIB), usable(u64::MAX - 7, 7)];
        assert_eq!(
            collect(&e820, image),
            [Range {
                start: 8 * MIB,
                end: 9 * MIB
            }]
        );
    }

    #[test]
    fn pattern_differs_between_words() {
        let values: Vec<u64> = (0..1024u64).map(|i| pattern(MIB + 8 * i)).collect();
        let mut sorted = values.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), values.len());
        assert_eq!(pattern(0), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn checksum_is_word_wise_fnv1a() {
        assert_eq!(Checksum::new().value(), 0xcbf2_9ce4_8422_2325);
        let mut sum = Checksum::new();
        sum.add(1);
        sum.add(2);
        let first = (0xcbf2_9ce4_8422_2325u64 ^ 1).wrapping_mul(0x100_0000_01b3);
        assert_eq!(sum.value(), (first ^ 2).wrapping_mul(0x100_0000_01b3));
        // Order matters.
        let mut swapped = Checksum::new();
        swapped.add(2);
        swapped.add(1);
        assert_ne!(swapped.value(), sum.value());
    }

    #[test]
    fn fill_and_verify_round_trip_in_a_buffer() {
        let mut buffer = vec![0u64; 512];
        let start = buffer.as_mut_ptr().expose_provenance() as u64;
        let range = Range {
            start,
            end: start + 512 * 8,
        };
        let mut sum = Checksum::new();
        // SAFETY: `range` is exactly `buffer`, which nothing else touches meanwhile.
        unsafe {
            fill(range);
            assert_eq!(verify(range, &mut sum), Ok(()));
        }
        buffer[100] ^= 1;
        // SAFETY: as above.
        let result = unsafe { verify(range, &mut Checksum::new()) };
        assert_eq!(result, Err(start + 800));
        assert!(heap_check().is_ok());
    }
}
