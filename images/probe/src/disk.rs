//! `probe.disk=`: pattern write/verify, throughput benchmarks and the IOPS check on the first
//! virtio block device. This file owns the dispatch on the mode, the sizes the passes use and
//! the failure lines; the rest lives beside it:
//! - `disk/pattern.rs`: the pattern, its checksum and the write and verify passes;
//! - `disk/stream.rs`: the request pipeline (requests in flight, buffers, sequential chunks);
//! - `disk/bench.rs`: `bench` and `iops`;
//! - `disk/seq.rs`: `probe.disk=seq`;
//! - `disk/churn.rs`: `probe.disk=churn`.

use crate::cmdline::DiskMode;
use crate::say;
use crate::time::Clock;
use crate::virtio::blk::{Blk, BlkError, S_OK, T_OUT};

mod bench;
mod churn;
mod pattern;
mod seq;
mod stream;
#[cfg(test)]
mod tests;

pub use bench::{XorShift, mb_per_s, per_second};
pub use pattern::{DISK_SEED, check, expected_checksum, fill, pattern};

use pattern::{verify_pattern, write_pattern};
use stream::buffer;

/// The most of a disk that write/verify/bench touch: 64 MiB.
pub const MAX_SPAN: u64 = 64 << 20;
/// Request size of the sequential passes.
pub const CHUNK: usize = 1 << 20;
/// Sequential requests in flight.
pub const SEQ_DEPTH: usize = 4;
/// Request size of the random tests.
pub const BLOCK: usize = 4096;
/// Random requests in flight.
pub const RAND_DEPTH: usize = 32;
/// Duration of each benchmark.
pub const BENCH_MILLIS: u64 = 2000;
/// Duration of `probe.disk=iops`.
pub const IOPS_MILLIS: u64 = 3000;

/// The bytes write/verify/bench use on a disk of `capacity` bytes: all of it up to
/// [`MAX_SPAN`].
pub const fn span(capacity: u64) -> u64 {
    if capacity < MAX_SPAN {
        capacity
    } else {
        MAX_SPAN
    }
}

/// Why a disk pass stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskError {
    /// The device answered a request at `offset` with a non-zero status.
    Io {
        /// Disk offset of the request.
        offset: u64,
        /// Its status byte.
        status: u8,
    },
    /// The word at `offset` did not read back as written.
    Mismatch {
        /// Disk offset of the word.
        offset: u64,
    },
    /// The device failed (it is reset and no longer used).
    Device(BlkError),
    /// No memory for the buffers.
    NoMemory,
}

impl DiskError {
    /// The disk offset the error is reported at.
    pub fn offset(&self) -> u64 {
        match *self {
            Self::Io { offset, .. } | Self::Mismatch { offset } => offset,
            Self::Device(_) | Self::NoMemory => 0,
        }
    }
}

/// Runs `probe.disk=<mode>` on `blk`; true if it succeeded.
pub fn run(blk: &mut Blk, mode: DiskMode<'_>, clock: Clock) -> bool {
    let capacity = blk.capacity_bytes();
    let span = span(capacity);
    say!(
        "disk capacity {capacity} bytes{}",
        if blk.read_only() { " read-only" } else { "" }
    );
    if span < capacity
        && !matches!(
            mode,
            DiskMode::WriteRoCheck | DiskMode::Iops | DiskMode::Seq | DiskMode::Churn
        )
    {
        say!("disk using the first {span} bytes");
    }
    match mode {
        DiskMode::Write => {
            if blk.read_only() {
                say!("disk read-only");
                return true;
            }
            let result = write_pattern(blk, span).and_then(|()| {
                match blk.flush() {
                    Ok(S_OK) => {}
                    Ok(status) => return Err(DiskError::Io { offset: 0, status }),
                    Err(e) => return Err(DiskError::Device(e)),
                }
                verify_pattern(blk, span)
            });
            report("write", span, result)
        }
        DiskMode::Verify => report("verify", span, verify_pattern(blk, span)),
        DiskMode::Bench => bench::bench(blk, span, clock),
        DiskMode::Iops => bench::iops(blk, span, clock),
        DiskMode::WriteRoCheck => {
            let Some(mut buf) = buffer(BLOCK) else {
                return fail("write", DiskError::NoMemory);
            };
            fill(&mut buf, 0);
            match blk.request(T_OUT, 0, &mut buf) {
                Ok(status) => {
                    say!("disk write status {status}");
                    true
                }
                Err(e) => fail("write", DiskError::Device(e)),
            }
        }
        DiskMode::Seq => seq::run(blk),
        DiskMode::Churn => churn::run(blk),
        DiskMode::Unknown(_) => false,
    }
}

/// Prints `disk <what> ok <span> bytes checksum <sum>`, or the failure; true on success.
fn report(what: &str, span: u64, result: Result<u64, DiskError>) -> bool {
    match result {
        Ok(checksum) => {
            say!("disk {what} ok {span} bytes checksum {checksum:016x}");
            true
        }
        Err(e) => fail(what, e),
    }
}

/// Prints why `what` failed and `disk <what> FAILED at offset <n>`; always false.
fn fail(what: &str, e: DiskError) -> bool {
    match e {
        DiskError::Io { offset, status } => {
            say!("disk io error status {status} at offset {offset}");
        }
        DiskError::Device(BlkError::NeedsReset) => say!("disk needs reset"),
        DiskError::Device(e) => say!("disk {e}"),
        DiskError::NoMemory => say!("disk out of memory for buffers"),
        DiskError::Mismatch { .. } => {}
    }
    say!("disk {what} FAILED at offset {}", e.offset());
    false
}
