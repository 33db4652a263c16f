//! The disk benchmarks: sequential and random throughput (`probe.disk=bench`) and random-read
//! IOPS (`probe.disk=iops`), with their offset generator and rate arithmetic.

use super::pattern::fill;
use super::stream::{Sequential, StreamStats, buffers, stream};
use super::{BENCH_MILLIS, BLOCK, CHUNK, DiskError, IOPS_MILLIS, RAND_DEPTH, SEQ_DEPTH, fail};
use crate::say;
use crate::time::{self, Clock};
use crate::virtio::blk::{Blk, T_IN, T_OUT};
use alloc::vec::Vec;

/// A xorshift64 generator for the random offsets.
#[derive(Clone, Copy, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (0 is replaced, xorshift would stay at 0).
    pub const fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x2545_f491_4f6c_dd1d
        } else {
            seed
        })
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value below `n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Decimal megabytes per second for `bytes` in `micros`.
pub fn mb_per_s(bytes: u64, micros: u64) -> u64 {
    if micros == 0 {
        return 0;
    }
    u64::try_from(u128::from(bytes) * 1_000_000 / u128::from(micros) / 1_000_000).unwrap_or(0)
}

/// Operations per second for `ops` in `micros`.
pub fn per_second(ops: u64, micros: u64) -> u64 {
    if micros == 0 {
        return 0;
    }
    u64::try_from(u128::from(ops) * 1_000_000 / u128::from(micros)).unwrap_or(0)
}

/// `bufs` filled with the pattern once, before a pass is timed: the writes then send what
/// the buffers hold, as fio does, so that the figure is the device's and not the time the
/// probe takes to make data (about as long as the host takes to copy it).
fn filled(mut bufs: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    for buf in &mut bufs {
        fill(buf, 0);
    }
    bufs
}

/// Random 4 KiB requests of `kind` in `[0, span)` until `stop` (TSC).
pub(super) fn random(
    blk: &mut Blk,
    span: u64,
    kind: u32,
    stop: u64,
) -> Result<StreamStats, DiskError> {
    let blocks = span / BLOCK as u64;
    if blocks == 0 {
        return Ok(StreamStats::default());
    }
    let bufs = filled(buffers(BLOCK, RAND_DEPTH).ok_or(DiskError::NoMemory)?);
    let mut rng = XorShift::new(time::now());
    stream(
        blk,
        bufs,
        kind,
        false,
        Some(stop),
        |_| Some((rng.below(blocks) * BLOCK as u64, BLOCK)),
        |_, _| Ok(()),
    )
}

/// Sequential passes of 1 MiB requests of `kind` over `[0, span)` until `stop` (TSC).
pub(super) fn sequential(
    blk: &mut Blk,
    span: u64,
    kind: u32,
    stop: u64,
) -> Result<StreamStats, DiskError> {
    let bufs = filled(buffers(CHUNK, SEQ_DEPTH).ok_or(DiskError::NoMemory)?);
    let mut seq = Sequential {
        offset: 0,
        span,
        wrap: true,
    };
    stream(
        blk,
        bufs,
        kind,
        false,
        Some(stop),
        |_| seq.next(),
        |_, _| Ok(()),
    )
}

/// `probe.disk=iops`: random 4 KiB reads in `[0, span)` for [`IOPS_MILLIS`]; true if they
/// succeeded.
pub(super) fn iops(blk: &mut Blk, span: u64, clock: Clock) -> bool {
    let stop = time::now().saturating_add(clock.ticks_from_millis(IOPS_MILLIS));
    match random(blk, span, T_IN, stop) {
        Ok(stats) => {
            say!(
                "disk iops {}",
                per_second(stats.requests, clock.micros_ceil(stats.ticks))
            );
            true
        }
        Err(e) => fail("iops", e),
    }
}

/// `probe.disk=bench`: each pass for [`BENCH_MILLIS`] over `[0, span)` (the writes skipped on
/// a read-only disk); true unless a pass failed.
pub(super) fn bench(blk: &mut Blk, span: u64, clock: Clock) -> bool {
    let writes = !blk.read_only();
    if !writes {
        say!("disk read-only");
    }
    let duration = clock.ticks_from_millis(BENCH_MILLIS);
    type Runner = fn(&mut Blk, u64, u32, u64) -> Result<StreamStats, DiskError>;
    let tests: [(&str, Runner, u32, bool); 4] = [
        ("seq-write", sequential, T_OUT, false),
        ("seq-read", sequential, T_IN, false),
        ("rand-write", random, T_OUT, true),
        ("rand-read", random, T_IN, true),
    ];
    for (name, runner, kind, iops) in tests {
        if kind == T_OUT && !writes {
            continue;
        }
        let stop = time::now().saturating_add(duration);
        let stats = match runner(blk, span, kind, stop) {
            Ok(s) => s,
            Err(e) => return fail("bench", e),
        };
        let micros = clock.micros_ceil(stats.ticks);
        if iops {
            say!(
                "disk bench {name} {} IOPS",
                per_second(stats.requests, micros)
            );
        } else {
            say!("disk bench {name} {} MB/s", mb_per_s(stats.bytes, micros));
        }
    }
    if writes && blk.flush().is_err() {
        say!("disk bench flush failed");
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(mb_per_s(100_000_000, 1_000_000), 100);
        assert_eq!(mb_per_s(64 << 20, 500_000), 134);
        assert_eq!(mb_per_s(1, 0), 0);
        assert_eq!(per_second(3000, 3_000_000), 1000);
        assert_eq!(per_second(1, 0), 0);
    }

    #[test]
    fn xorshift_stays_in_range() {
        let mut r = XorShift::new(0);
        let mut seen = [false; 16];
        for _ in 0..1000 {
            seen[r.below(16) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}
