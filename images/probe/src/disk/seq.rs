//! `probe.disk=seq`: sequence-numbered 4 KiB blocks written in order, one at a time, for
//! point-in-time checks of snapshots taken while the guest writes.
//!
//! Block `i` (from the start of the disk) holds [`SEQ_MAGIC`] and then `i` (little-endian
//! u64s) repeated; after every [`FLUSH_EVERY`] blocks the probe flushes and then writes the
//! commit record to the last block of the span: [`COMMIT_MAGIC`] and the number of blocks
//! written and flushed before it. So any point-in-time image of the disk holds blocks
//! `0..n` and zeros after them, with a commit record of at most `n` (or none yet). A copy
//! made while the guest kept writing can show a commit record of `m` with a block below `m`
//! still zero, or a written block after a zero one.

use alloc::vec;

use super::{BLOCK, span};
use crate::say;
use crate::virtio::blk::{Blk, S_OK, SECTOR_SIZE, T_OUT};

/// The first word of every data block ("kec2seq\0").
pub const SEQ_MAGIC: u64 = u64::from_le_bytes(*b"kec2seq\0");
/// The first word of the commit record ("kec2cmt\0").
pub const COMMIT_MAGIC: u64 = u64::from_le_bytes(*b"kec2cmt\0");
/// Blocks between flushes (and commit records).
pub const FLUSH_EVERY: u64 = 16;

/// Fills `buf` (one block) with the content of data block `i`.
pub fn fill_block(buf: &mut [u8], i: u64) {
    for (n, word) in buf.chunks_exact_mut(8).enumerate() {
        let v = if n == 0 { SEQ_MAGIC } else { i };
        word.copy_from_slice(&v.to_le_bytes());
    }
}

/// Fills `buf` (one block) with a commit record for `committed` blocks.
pub fn fill_commit(buf: &mut [u8], committed: u64) {
    buf.fill(0);
    buf[..8].copy_from_slice(&COMMIT_MAGIC.to_le_bytes());
    buf[8..16].copy_from_slice(&committed.to_le_bytes());
}

/// Writes blocks `0..` of the span in order until it is full (the last block is the commit
/// record); true if every request succeeded.
pub fn run(blk: &mut Blk) -> bool {
    let span = span(blk.capacity_bytes());
    let blocks = span / BLOCK as u64;
    if blocks < 2 || blk.read_only() {
        say!("disk seq needs a writable disk of at least two blocks");
        return false;
    }
    let data_blocks = blocks - 1;
    let commit_sector = data_blocks * BLOCK as u64 / SECTOR_SIZE;
    let mut buf = vec![0u8; BLOCK];
    say!("disk seq started {data_blocks} blocks");
    let mut i = 0;
    while i < data_blocks {
        fill_block(&mut buf, i);
        if !matches!(
            blk.request(T_OUT, i * BLOCK as u64 / SECTOR_SIZE, &mut buf),
            Ok(S_OK)
        ) {
            say!("disk seq write FAILED at block {i}");
            return false;
        }
        i += 1;
        if i % FLUSH_EVERY == 0 || i == data_blocks {
            fill_commit(&mut buf, i);
            let ok = matches!(blk.flush(), Ok(S_OK))
                && matches!(blk.request(T_OUT, commit_sector, &mut buf), Ok(S_OK));
            if !ok {
                say!("disk seq commit FAILED at block {i}");
                return false;
            }
        }
    }
    let _ = blk.flush();
    say!("disk seq done {data_blocks} blocks");
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_commits_are_recognisable() {
        let mut b = vec![0u8; BLOCK];
        fill_block(&mut b, 7);
        assert_eq!(&b[..8], b"kec2seq\0");
        assert_eq!(u64::from_le_bytes(b[8..16].try_into().unwrap()), 7);
        assert_eq!(u64::from_le_bytes(b[BLOCK - 8..].try_into().unwrap()), 7);
        fill_commit(&mut b, 32);
        assert_eq!(&b[..8], b"kec2cmt\0");
        assert_eq!(u64::from_le_bytes(b[8..16].try_into().unwrap()), 32);
        assert!(b[16..].iter().all(|&x| x == 0));
    }
}
