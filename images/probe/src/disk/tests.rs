//! Tests of the disk modes: the span, and the block driver and the modes against a fake
//! device thread.

use super::bench::{random, sequential};
use super::*;
use crate::selftest::Checksum;
use crate::time;
use crate::virtio::blk::T_IN;
use crate::virtio::fake::FakeBlk;

#[test]
fn span_is_capped() {
    assert_eq!(span(0), 0);
    assert_eq!(span(512), 512);
    assert_eq!(span(MAX_SPAN), MAX_SPAN);
    assert_eq!(span(1 << 40), MAX_SPAN);
}

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
    // Windows long enough that a loaded host still completes requests in each.
    let soon = |ms| time::now() + CLOCK.ticks_from_millis(ms);
    let w = random(&mut blk, bytes as u64, T_OUT, soon(300)).unwrap();
    assert!(w.requests > 0 && w.bytes == w.requests * BLOCK as u64);
    let r = sequential(&mut blk, bytes as u64, T_IN, soon(300)).unwrap();
    assert!(r.requests > 0);
    assert_eq!(blk.in_flight(), 0);
    assert!(run(&mut blk, DiskMode::Iops, CLOCK));
}
