//! Helpers that keep snapshots of mostly-empty guests cheap: which guest pages were never
//! touched (so they are zero and need not be read), and the CRC of runs of zeros without
//! hashing them byte by byte.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Bytes of one pagemap entry.
const ENTRY: u64 = 8;
/// Pagemap bit: the page is in RAM.
const PRESENT: u64 = 1 << 63;
/// Pagemap bit: the page is in swap.
const SWAPPED: u64 = 1 << 62;
/// Host page size assumed by the pagemap lookups.
const HOST_PAGE: u64 = 4096;

/// `/proc/self/pagemap`: for an anonymous private mapping, a page neither present nor swapped
/// was never written (nor read) and holds zeros.
#[derive(Debug)]
pub struct Pagemap {
    file: Option<File>,
}

impl Pagemap {
    /// Opens this process's pagemap; without it, every page counts as touched.
    pub fn open() -> Self {
        Pagemap {
            file: File::open("/proc/self/pagemap").ok(),
        }
    }

    /// For each host page in `host_addr..host_addr + pages * 4096`, whether it may hold data.
    pub fn touched(&self, host_addr: u64, pages: usize) -> Vec<bool> {
        let Some(file) = &self.file else {
            return vec![true; pages];
        };
        let mut raw = vec![0u8; pages * ENTRY as usize];
        if file
            .read_exact_at(&mut raw, host_addr / HOST_PAGE * ENTRY)
            .is_err()
        {
            return vec![true; pages];
        }
        raw.chunks_exact(ENTRY as usize)
            .map(|e| {
                let entry = u64::from_le_bytes(e.try_into().unwrap_or_default());
                entry & (PRESENT | SWAPPED) != 0
            })
            .collect()
    }
}

/// Adds runs of zero bytes to a CRC-32 quickly: a whole chunk of zeros is combined from a
/// precomputed hash in constant time.
#[derive(Debug)]
pub struct Zeros {
    chunk: usize,
    chunk_crc: crc32fast::Hasher,
    bytes: Vec<u8>,
}

impl Zeros {
    /// A helper for zero runs cut in chunks of `chunk` bytes.
    pub fn new(chunk: usize) -> Self {
        let bytes = vec![0u8; chunk];
        let mut chunk_crc = crc32fast::Hasher::new();
        chunk_crc.update(&bytes);
        Zeros {
            chunk,
            chunk_crc,
            bytes,
        }
    }

    /// Adds `n` zero bytes to `crc`.
    pub fn update(&self, crc: &mut crc32fast::Hasher, mut n: u64) {
        while n >= self.chunk as u64 {
            crc.combine(&self.chunk_crc);
            n -= self.chunk as u64;
        }
        crc.update(&self.bytes[..n as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_runs_hash_like_zero_bytes() {
        let zeros = Zeros::new(4096);
        for n in [0u64, 1, 4095, 4096, 4097, 3 * 4096 + 17] {
            let mut fast = crc32fast::Hasher::new();
            fast.update(b"head");
            zeros.update(&mut fast, n);
            let mut slow = crc32fast::Hasher::new();
            slow.update(b"head");
            slow.update(&vec![0u8; n as usize]);
            assert_eq!(fast.finalize(), slow.finalize(), "{n} zeros");
        }
    }

    #[test]
    fn untouched_anonymous_pages_are_seen_as_such() {
        let mut buf = vec![0u8; 64 * 4096 + 4096];
        let base = (buf.as_ptr() as u64).next_multiple_of(4096);
        let offset = (base - buf.as_ptr() as u64) as usize;
        buf[offset + 3 * 4096] = 1;
        let touched = Pagemap::open().touched(base, 64);
        assert!(touched[3], "a written page is touched");
    }
}
