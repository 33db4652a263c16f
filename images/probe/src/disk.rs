//! `probe.disk=`: pattern write/verify, throughput benchmarks and the IOPS check on the first
//! virtio block device.
//!
//! The pattern depends only on each 8-byte word's offset on the disk (and a fixed seed), so a
//! later boot verifies a disk without state; the checksum folds the words in offset order.

use alloc::vec::Vec;

use crate::cmdline::DiskMode;
use crate::say;
use crate::selftest::{self, Checksum};
use crate::time::{self, Clock};
use crate::virtio::blk::{Blk, BlkError, S_OK, SECTOR_SIZE, T_IN, T_OUT};

/// The most of a disk that write/verify/bench touch: 64 MiB.
pub const MAX_SPAN: u64 = 64 << 20;
/// Mixed into every pattern word ("kec2disk").
pub const DISK_SEED: u64 = 0x6b65_6332_6469_736b;
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

/// The bytes write/verify/bench use on a disk of `capacity` bytes: all of it up to
/// [`MAX_SPAN`].
pub const fn span(capacity: u64) -> u64 {
    if capacity < MAX_SPAN {
        capacity
    } else {
        MAX_SPAN
    }
}

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

/// A buffer for requests, allocated without aborting when memory is short.
fn buffer(len: usize) -> Option<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).ok()?;
    v.resize(len, 0);
    Some(v)
}

/// Up to `depth` buffers of `len` bytes (at least one, or `None`).
fn buffers(len: usize, depth: usize) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for _ in 0..depth {
        match buffer(len) {
            Some(b) => out.push(b),
            None => break,
        }
    }
    (!out.is_empty()).then_some(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotState {
    Free,
    InFlight { seq: u64, token: u16 },
    Done { seq: u64, status: u8 },
}

struct Slot {
    buf: Vec<u8>,
    state: SlotState,
    offset: u64,
    len: usize,
}

/// What a stream of requests did.
#[derive(Clone, Copy, Debug, Default)]
struct StreamStats {
    requests: u64,
    bytes: u64,
    ticks: u64,
}

/// Runs requests of `kind` through `bufs`, as many in flight as there are buffers.
/// `next(buf)` picks the next request's disk offset and length (filling `buf` for writes), or
/// `None` when done; it is not called after `stop_at` (a TSC time). `done(offset, data)` sees
/// each successful request, in submission order if `in_order`. A failing request stops the
/// stream with [`DiskError::Io`].
fn stream(
    blk: &mut Blk,
    bufs: Vec<Vec<u8>>,
    kind: u32,
    in_order: bool,
    stop_at: Option<u64>,
    mut next: impl FnMut(&mut [u8]) -> Option<(u64, usize)>,
    mut done: impl FnMut(u64, &[u8]) -> Result<(), DiskError>,
) -> Result<StreamStats, DiskError> {
    let mut slots: Vec<Slot> = bufs
        .into_iter()
        .map(|buf| Slot {
            buf,
            state: SlotState::Free,
            offset: 0,
            len: 0,
        })
        .collect();
    let start = time::now();
    let mut stats = StreamStats::default();
    let mut seq = 0u64;
    let mut next_done = 0u64;
    let mut exhausted = false;
    let mut failure = None;
    loop {
        if !exhausted && failure.is_none() {
            for slot in slots.iter_mut().filter(|s| s.state == SlotState::Free) {
                if stop_at.is_some_and(|t| time::now() >= t) {
                    exhausted = true;
                    break;
                }
                let Some((offset, len)) = next(&mut slot.buf) else {
                    exhausted = true;
                    break;
                };
                // SAFETY: the slot's buffer is not touched until its request completes (or
                // the device is reset on error).
                let token =
                    unsafe { blk.submit(kind, offset / SECTOR_SIZE, slot.buf.as_mut_ptr(), len) }
                        .map_err(DiskError::Device)?;
                *slot = Slot {
                    state: SlotState::InFlight { seq, token },
                    offset,
                    len,
                    buf: core::mem::take(&mut slot.buf),
                };
                seq += 1;
            }
        }
        if slots.iter().all(|s| s.state == SlotState::Free) {
            break;
        }
        if slots
            .iter()
            .any(|s| matches!(s.state, SlotState::InFlight { .. }))
        {
            let mut completion = Some(blk.wait_or_reset().map_err(DiskError::Device)?);
            while let Some(c) = completion {
                if let Some(slot) = slots.iter_mut().find(
                    |s| matches!(s.state, SlotState::InFlight { token, .. } if token == c.token),
                ) && let SlotState::InFlight { seq, .. } = slot.state
                {
                    slot.state = SlotState::Done {
                        seq,
                        status: c.status,
                    };
                }
                completion = match blk.poll() {
                    Some(r) => Some(r.map_err(DiskError::Device)?),
                    None => None,
                };
            }
        }
        // Hand finished requests to `done`, in order if asked, and free their slots.
        loop {
            let ready = slots.iter_mut().find(|s| match s.state {
                SlotState::Done { seq, .. } => !in_order || seq == next_done,
                _ => false,
            });
            let Some(slot) = ready else { break };
            let SlotState::Done { status, .. } = slot.state else {
                break;
            };
            slot.state = SlotState::Free;
            next_done += 1;
            if failure.is_some() {
                continue;
            }
            if status != S_OK {
                failure = Some(DiskError::Io {
                    offset: slot.offset,
                    status,
                });
                continue;
            }
            stats.requests += 1;
            stats.bytes += slot.len as u64;
            if let Err(e) = done(slot.offset, &slot.buf[..slot.len]) {
                failure = Some(e);
            }
        }
    }
    stats.ticks = time::now().saturating_sub(start);
    match failure {
        Some(e) => Err(e),
        None => Ok(stats),
    }
}

/// Sequential chunks over `[0, span)`: yields (offset, len) and advances.
struct Sequential {
    offset: u64,
    span: u64,
    wrap: bool,
}

impl Sequential {
    fn next(&mut self) -> Option<(u64, usize)> {
        if self.offset >= self.span {
            if !self.wrap || self.span == 0 {
                return None;
            }
            self.offset = 0;
        }
        let len = (self.span - self.offset).min(CHUNK as u64) as usize;
        let at = self.offset;
        self.offset += len as u64;
        Some((at, len))
    }
}

/// Writes the pattern over `[0, span)`.
fn write_pattern(blk: &mut Blk, span: u64) -> Result<(), DiskError> {
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
fn verify_pattern(blk: &mut Blk, span: u64) -> Result<u64, DiskError> {
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
            DiskMode::WriteRoCheck | DiskMode::Iops | DiskMode::Seq
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
        DiskMode::Bench => bench(blk, span, clock),
        DiskMode::Iops => {
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
        DiskMode::Seq => crate::disk_seq::run(blk),
        DiskMode::Unknown(_) => false,
    }
}

fn report(what: &str, span: u64, result: Result<u64, DiskError>) -> bool {
    match result {
        Ok(checksum) => {
            say!("disk {what} ok {span} bytes checksum {checksum:016x}");
            true
        }
        Err(e) => fail(what, e),
    }
}

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

/// Random 4 KiB requests of `kind` in `[0, span)` until `stop` (TSC).
fn random(blk: &mut Blk, span: u64, kind: u32, stop: u64) -> Result<StreamStats, DiskError> {
    let blocks = span / BLOCK as u64;
    if blocks == 0 {
        return Ok(StreamStats::default());
    }
    let bufs = buffers(BLOCK, RAND_DEPTH).ok_or(DiskError::NoMemory)?;
    let mut rng = XorShift::new(time::now());
    stream(
        blk,
        bufs,
        kind,
        false,
        Some(stop),
        |buf| {
            let at = rng.below(blocks) * BLOCK as u64;
            if kind == T_OUT {
                fill(buf, at);
            }
            Some((at, BLOCK))
        },
        |_, _| Ok(()),
    )
}

/// Sequential passes of 1 MiB requests of `kind` over `[0, span)` until `stop` (TSC).
fn sequential(blk: &mut Blk, span: u64, kind: u32, stop: u64) -> Result<StreamStats, DiskError> {
    let bufs = buffers(CHUNK, SEQ_DEPTH).ok_or(DiskError::NoMemory)?;
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
        |buf| {
            let (at, len) = seq.next()?;
            if kind == T_OUT {
                fill(&mut buf[..len], at);
            }
            Some((at, len))
        },
        |_, _| Ok(()),
    )
}

fn bench(blk: &mut Blk, span: u64, clock: Clock) -> bool {
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

    #[test]
    fn span_is_capped() {
        assert_eq!(span(0), 0);
        assert_eq!(span(512), 512);
        assert_eq!(span(MAX_SPAN), MAX_SPAN);
        assert_eq!(span(1 << 40), MAX_SPAN);
    }

    #[test]
    fn sequential_chunks() {
        let mut s = Sequential {
            offset: 0,
            span: CHUNK as u64 * 2 + 512,
            wrap: false,
        };
        assert_eq!(s.next(), Some((0, CHUNK)));
        assert_eq!(s.next(), Some((CHUNK as u64, CHUNK)));
        assert_eq!(s.next(), Some((2 * CHUNK as u64, 512)));
        assert_eq!(s.next(), None);
        let mut s = Sequential {
            offset: 0,
            span: 1024,
            wrap: true,
        };
        assert_eq!(s.next(), Some((0, 1024)));
        assert_eq!(s.next(), Some((0, 1024)));
    }

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

/// The block driver and the disk modes against a fake device thread.
#[cfg(test)]
mod device_tests {
    use super::*;
    use crate::virtio::fake::FakeBlk;

    const CLOCK: Clock = Clock::new(0);

    fn up(fake: &FakeBlk) -> Blk {
        Blk::init(fake.mmio(), CLOCK).expect("fake device initialises")
    }

    #[test]
    fn write_then_verify_matches_the_expected_checksum() {
        let bytes = 3 * CHUNK + 4096;
        let fake = FakeBlk::new(bytes, false);
        let mut blk = up(&fake);
        assert_eq!(blk.capacity_bytes(), bytes as u64);
        assert!(!blk.read_only() && blk.has_flush());
        assert!(run(&mut blk, DiskMode::Write, CLOCK));
        assert!(fake.state.lock().unwrap().flushes >= 1);
        let checksum = verify_pattern(&mut blk, bytes as u64).unwrap();
        assert_eq!(checksum, expected_checksum(bytes as u64));
        // The disk holds the pattern itself.
        let state = fake.state.lock().unwrap();
        let mut sum = Checksum::new();
        assert_eq!(check(&state.disk, 0, &mut sum), Ok(()));
        assert_eq!(sum.value(), checksum);
    }

    #[test]
    fn verify_finds_corruption_and_io_errors() {
        let bytes = 2 * CHUNK;
        let fake = FakeBlk::new(bytes, false);
        let mut blk = up(&fake);
        write_pattern(&mut blk, bytes as u64).unwrap();
        fake.state.lock().unwrap().disk[CHUNK + 4101] ^= 0x40;
        assert_eq!(
            verify_pattern(&mut blk, bytes as u64),
            Err(DiskError::Mismatch {
                offset: CHUNK as u64 + 4096
            })
        );
        assert!(!run(&mut blk, DiskMode::Verify, CLOCK));
        // An I/O error is reported at the failing request's offset.
        fake.state.lock().unwrap().fail_at = Some(CHUNK as u64 + 10);
        assert_eq!(
            verify_pattern(&mut blk, bytes as u64),
            Err(DiskError::Io {
                offset: CHUNK as u64,
                status: 1
            })
        );
    }

    #[test]
    fn blank_disk_fails_verify_at_zero() {
        let fake = FakeBlk::new(CHUNK, false);
        let mut blk = up(&fake);
        assert_eq!(
            verify_pattern(&mut blk, CHUNK as u64),
            Err(DiskError::Mismatch { offset: 0 })
        );
    }

    #[test]
    fn read_only_disk_skips_writes() {
        let fake = FakeBlk::new(CHUNK, true);
        let mut blk = up(&fake);
        assert!(blk.read_only());
        assert!(run(&mut blk, DiskMode::Write, CLOCK));
        assert_eq!(fake.state.lock().unwrap().requests, 0);
        // write-ro-check writes anyway and reports the device's IOERR.
        let mut buf = vec![0u8; BLOCK];
        assert_eq!(blk.request(T_OUT, 0, &mut buf), Ok(1));
        assert!(run(&mut blk, DiskMode::WriteRoCheck, CLOCK));
    }

    #[test]
    fn streams_for_the_benchmarks() {
        let bytes = 2 * CHUNK;
        let fake = FakeBlk::new(bytes, false);
        let mut blk = up(&fake);
        let soon = |ms| time::now() + CLOCK.ticks_from_millis(ms);
        let w = random(&mut blk, bytes as u64, T_OUT, soon(30)).unwrap();
        assert!(w.requests > 0 && w.bytes == w.requests * BLOCK as u64);
        let r = sequential(&mut blk, bytes as u64, T_IN, soon(30)).unwrap();
        assert!(r.requests > 0);
        assert_eq!(blk.in_flight(), 0);
        assert!(run(&mut blk, DiskMode::Iops, CLOCK));
    }
}
