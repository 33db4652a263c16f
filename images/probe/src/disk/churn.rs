//! `probe.disk=churn`: 4 KiB blocks rewritten at random places of the span, many in flight,
//! without end, each write different from every other: block `i` holds [`CHURN_MAGIC`], `i`
//! and a counter that grows with every write. A copy of the disk that missed a write, or
//! holds one made after the point it stands for, differs from the disk at that point.

use super::bench::XorShift;
use super::stream::{buffers, stream};
use super::{BLOCK, RAND_DEPTH, fail, span};
use crate::say;
use crate::time;
use crate::virtio::blk::{Blk, T_OUT};

/// The first word of every block written ("kec2chn\0").
pub const CHURN_MAGIC: u64 = u64::from_le_bytes(*b"kec2chn\0");

/// Fills `buf` (one block) as the `count`th write, to block `i`.
pub fn fill_churn(buf: &mut [u8], i: u64, count: u64) {
    for (n, word) in buf.chunks_exact_mut(8).enumerate() {
        let v = match n {
            0 => CHURN_MAGIC,
            1 => i,
            _ => count,
        };
        word.copy_from_slice(&v.to_le_bytes());
    }
}

/// Writes until the VM ends; false if a request failed.
pub fn run(blk: &mut Blk) -> bool {
    let blocks = span(blk.capacity_bytes()) / BLOCK as u64;
    if blocks == 0 || blk.read_only() {
        say!("disk churn needs a writable disk");
        return false;
    }
    let Some(bufs) = buffers(BLOCK, RAND_DEPTH) else {
        say!("disk out of memory for buffers");
        return false;
    };
    let mut rng = XorShift::new(time::now());
    let mut count = 0u64;
    say!("disk churn started {blocks} blocks");
    let result = stream(
        blk,
        bufs,
        T_OUT,
        false,
        None,
        |buf| {
            let i = rng.below(blocks);
            count += 1;
            fill_churn(buf, i, count);
            Some((i * BLOCK as u64, BLOCK))
        },
        |_, _| Ok(()),
    );
    match result {
        Ok(_) => true,
        Err(e) => fail("churn", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_churn_block_names_itself_and_its_write() {
        let mut b = [0u8; BLOCK];
        fill_churn(&mut b, 7, 42);
        let word = |n: usize| u64::from_le_bytes(b[8 * n..8 * n + 8].try_into().unwrap());
        assert_eq!((word(0), word(1)), (CHURN_MAGIC, 7));
        assert!((2..BLOCK / 8).all(|n| word(n) == 42));
        assert_eq!(&b[..8], b"kec2chn\0");
    }
}
