//! The blocks of a disk written since tracking started: one bit per [`BLOCK_BYTES`], set by
//! every completed write, discard and write-zeroes. The agent copies a running instance's
//! volume, then copies again only the blocks written meanwhile, with the VM paused.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Bytes one bit stands for.
pub const BLOCK_BYTES: u64 = 64 << 10;

/// The written blocks of one disk, shared by the device (which marks) and the control API
/// (which starts and takes).
#[derive(Debug)]
pub struct WriteLog {
    size: u64,
    on: AtomicBool,
    bits: Mutex<Vec<u64>>,
}

impl WriteLog {
    /// A log for a disk of `size` bytes, not tracking.
    pub fn new(size: u64) -> Self {
        WriteLog {
            size,
            on: AtomicBool::new(false),
            bits: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u64>> {
        self.bits.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn blocks(&self) -> u64 {
        self.size.div_ceil(BLOCK_BYTES)
    }

    /// Starts tracking with nothing written (again, if it was tracking).
    pub fn start(&self) {
        let words = self.blocks().div_ceil(64) as usize;
        let mut bits = self.lock();
        *bits = vec![0; words];
        self.on.store(true, Ordering::SeqCst);
    }

    /// Whether writes are being tracked.
    pub fn tracking(&self) -> bool {
        self.on.load(Ordering::SeqCst)
    }

    /// Records that `len` bytes at `offset` were written (after the write completed).
    /// Ranges past the disk's end are cut off.
    pub fn mark(&self, offset: u64, len: u64) {
        if len == 0 || !self.on.load(Ordering::Relaxed) {
            return;
        }
        let end = offset.saturating_add(len).min(self.size);
        if offset >= end {
            return;
        }
        let (first, last) = (offset / BLOCK_BYTES, (end - 1) / BLOCK_BYTES);
        let mut bits = self.lock();
        if !self.on.load(Ordering::Relaxed) {
            return;
        }
        for block in first..=last {
            if let Some(word) = bits.get_mut((block / 64) as usize) {
                *word |= 1 << (block % 64);
            }
        }
    }

    /// The written ranges `(offset, len)` in bytes, in order and merged, cut at the disk's
    /// end; the set starts empty again, and tracking ends if `stop`. `None` if it was not
    /// tracking.
    pub fn take(&self, stop: bool) -> Option<Vec<(u64, u64)>> {
        let mut bits = self.lock();
        if !self.on.load(Ordering::SeqCst) {
            return None;
        }
        if stop {
            self.on.store(false, Ordering::SeqCst);
        }
        let taken = if stop {
            std::mem::take(&mut *bits)
        } else {
            let words = bits.len();
            std::mem::replace(&mut *bits, vec![0; words])
        };
        drop(bits);
        Some(ranges(&taken, self.size))
    }
}

/// The runs of set bits in `bits`, as byte ranges cut at `size`.
fn ranges(bits: &[u64], size: u64) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (w, &word) in bits.iter().enumerate() {
        let mut rest = word;
        while rest != 0 {
            let bit = u64::from(rest.trailing_zeros());
            rest &= rest - 1;
            let start = (w as u64 * 64 + bit) * BLOCK_BYTES;
            if start >= size {
                break;
            }
            let len = BLOCK_BYTES.min(size - start);
            match out.last_mut() {
                Some((s, l)) if *s + *l == start => *l += len,
                _ => out.push((start, len)),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: u64 = BLOCK_BYTES;

    #[test]
    fn nothing_is_recorded_unless_tracking() {
        let log = WriteLog::new(10 * B);
        log.mark(0, 4096);
        assert_eq!(log.take(true), None);
        log.start();
        assert_eq!(log.take(true), Some(vec![]));
        assert!(!log.tracking());
    }

    #[test]
    fn writes_become_merged_block_ranges() {
        let log = WriteLog::new(200 * B + 100);
        log.start();
        log.mark(B + 1, 1); // block 1
        log.mark(2 * B - 1, 2); // blocks 1 and 2
        log.mark(70 * B, 3 * B); // blocks 70..73
        log.mark(200 * B + 50, 1 << 30); // the short last block, cut at the end
        log.mark(u64::MAX - 5, 100); // past the end: nothing
        assert_eq!(
            log.take(false),
            Some(vec![(B, 2 * B), (70 * B, 3 * B), (200 * B, 100)])
        );
        assert_eq!(log.take(false), Some(vec![]), "the set starts empty again");
        log.mark(63 * B, 2 * B); // across a word boundary
        assert_eq!(log.take(true), Some(vec![(63 * B, 2 * B)]));
        log.mark(0, 1);
        assert_eq!(log.take(true), None, "stopped");
    }

    #[test]
    fn starting_again_forgets_earlier_writes() {
        let log = WriteLog::new(4 * B);
        log.start();
        log.mark(0, 1);
        log.start();
        assert_eq!(log.take(true), Some(vec![]));
    }

    proptest::proptest! {
        /// Any marks, however large or misplaced, give exactly the blocks they touch within
        /// the disk, as sorted, merged, non-empty ranges.
        #[test]
        fn ranges_are_the_blocks_marked(
            size in 0u64..(300 * B),
            marks in proptest::collection::vec((0u64..(320 * B), 0u64..(40 * B)), 0..40),
        ) {
            let log = WriteLog::new(size);
            log.start();
            let mut want = std::collections::BTreeSet::new();
            for &(at, len) in &marks {
                log.mark(at, len);
                let end = at.saturating_add(len).min(size);
                if len > 0 && at < end {
                    want.extend(at / B..=(end - 1) / B);
                }
            }
            let ranges = log.take(true).unwrap();
            let mut got = std::collections::BTreeSet::new();
            let mut last_end = None;
            for &(start, len) in &ranges {
                proptest::prop_assert!(len > 0 && start % B == 0 && start + len <= size);
                proptest::prop_assert!(last_end.is_none_or(|e| e < start), "merged and sorted");
                last_end = Some(start + len);
                got.extend(start / B..=(start + len - 1) / B);
            }
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn an_empty_disk_has_no_blocks() {
        let log = WriteLog::new(0);
        log.start();
        log.mark(0, 4096);
        assert_eq!(log.take(true), Some(vec![]));
    }
}
