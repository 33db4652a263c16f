//! The disk pattern and the passes that write and verify it (`probe.disk=write` / `verify`).
//!
//! The pattern depends only on each 8-byte word's offset on the disk (and a fixed seed), so a
//! later boot verifies a disk without state; the checksum folds the words in offset order.

use super::stream::{Sequential, buffers, stream};
use super::{CHUNK, DiskError, SEQ_DEPTH};
use crate::selftest::{self, Checksum};
use crate::virtio::blk::{Blk, T_IN, T_OUT};

/// Mixed into every pattern word ("kec2disk").
pub const DISK_SEED: u64 = 0x6b65_6332_6469_736b;

/// The pattern word at byte `offset` of the disk.
pub const fn pattern(offset: u64) -> u64 {
    selftest::pattern(offset ^ DISK_SEED)
}

/// Fills `buf` (a multiple of 8 bytes) with the pattern of the disk bytes from `offset`.
pub fn fill(buf: &mut [u8], offset: u64) {
    for (i, word) in buf.chunks_exact_mut(8).enumerate() {
        word.copy_from_slice(&pattern(offset + 8 * i as u64).to_le_bytes());
    }
}

/// Checks `buf` against the pattern from `offset` and folds its words into `sum`;
/// `Err` carries the disk offset of the first wrong word.
pub fn check(buf: &[u8], offset: u64, sum: &mut Checksum) -> Result<(), u64> {
    for (i, word) in buf.chunks_exact(8).enumerate() {
        let at = offset + 8 * i as u64;
        let value = u64::from_le_bytes(word.try_into().unwrap_or_default());
        if value != pattern(at) {
            return Err(at);
        }
        sum.add(value);
    }
    Ok(())
}

/// The checksum that write and verify report for a span of `bytes`.
pub fn expected_checksum(bytes: u64) -> u64 {
    let mut sum = Checksum::new();
    for at in (0..bytes).step_by(8) {
        sum.add(pattern(at));
    }
    sum.value()
}

/// Writes the pattern over `[0, span)`.
pub(super) fn write_pattern(blk: &mut Blk, span: u64) -> Result<(), DiskError> {
    let bufs = buffers(CHUNK, SEQ_DEPTH).ok_or(DiskError::NoMemory)?;
    let mut seq = Sequential {
        offset: 0,
        span,
        wrap: false,
    };
    stream(
        blk,
        bufs,
        T_OUT,
        false,
        None,
        |buf| {
            let (at, len) = seq.next()?;
            fill(&mut buf[..len], at);
            Some((at, len))
        },
        |_, _| Ok(()),
    )?;
    Ok(())
}

/// Reads `[0, span)` back, checks it and returns the checksum.
pub(super) fn verify_pattern(blk: &mut Blk, span: u64) -> Result<u64, DiskError> {
    let bufs = buffers(CHUNK, SEQ_DEPTH).ok_or(DiskError::NoMemory)?;
    let mut seq = Sequential {
        offset: 0,
        span,
        wrap: false,
    };
    let mut sum = Checksum::new();
    stream(
        blk,
        bufs,
        T_IN,
        true,
        None,
        |_| seq.next(),
        |at, data| check(data, at, &mut sum).map_err(|offset| DiskError::Mismatch { offset }),
    )?;
    Ok(sum.value())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_round_trips_and_checksums_match() {
        let mut buf = vec![0u8; 4096];
        fill(&mut buf, 8192);
        let mut sum = Checksum::new();
        assert_eq!(check(&buf, 8192, &mut sum), Ok(()));
        // Checking the same words at another offset fails at the first word.
        let mut other = Checksum::new();
        assert_eq!(check(&buf, 0, &mut other), Err(0));

        // Chunked checksums equal the whole-span checksum.
        let span = 3 * 4096u64;
        let mut sum = Checksum::new();
        for at in (0..span).step_by(4096) {
            fill(&mut buf, at);
            check(&buf, at, &mut sum).unwrap();
        }
        assert_eq!(sum.value(), expected_checksum(span));
        assert_ne!(expected_checksum(span), expected_checksum(span - 8));
    }

    #[test]
    fn check_reports_the_first_bad_word() {
        let mut buf = vec![0u8; 1024];
        fill(&mut buf, 1 << 20);
        buf[8 * 5 + 3] ^= 1;
        buf[8 * 9] ^= 1;
        assert_eq!(
            check(&buf, 1 << 20, &mut Checksum::new()),
            Err((1 << 20) + 40)
        );
    }

    #[test]
    fn pattern_is_stable() {
        // A later boot (or another build) must produce the same words.
        assert_eq!(pattern(0), selftest::pattern(DISK_SEED));
        assert_eq!(expected_checksum(0), Checksum::new().value());
        assert_eq!(expected_checksum(16), {
            let mut c = Checksum::new();
            c.add(pattern(0));
            c.add(pattern(8));
            c.value()
        });
    }
}
