//! The request pipeline under every disk pass: buffers allocated without aborting, and
//! [`stream`], which keeps a number of requests in flight on the block device and hands the
//! finished ones back in order if asked; plus [`Sequential`], the chunked offsets of the
//! sequential passes.

use alloc::vec::Vec;

use super::{CHUNK, DiskError};
use crate::time;
use crate::virtio::blk::{Blk, S_OK, SECTOR_SIZE};

/// A buffer for requests, allocated without aborting when memory is short.
pub(super) fn buffer(len: usize) -> Option<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).ok()?;
    v.resize(len, 0);
    Some(v)
}

/// Up to `depth` buffers of `len` bytes (at least one, or `None`).
pub(super) fn buffers(len: usize, depth: usize) -> Option<Vec<Vec<u8>>> {
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
pub(super) struct StreamStats {
    pub(super) requests: u64,
    pub(super) bytes: u64,
    pub(super) ticks: u64,
}

/// Runs requests of `kind` through `bufs`, as many in flight as there are buffers.
/// `next(buf)` picks the next request's disk offset and length (filling `buf` for writes), or
/// `None` when done; it is not called after `stop_at` (a TSC time). `done(offset, data)` sees
/// each successful request, in submission order if `in_order`. A failing request stops the
/// stream with [`DiskError::Io`].
pub(super) fn stream(
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
pub(super) struct Sequential {
    pub(super) offset: u64,
    pub(super) span: u64,
    pub(super) wrap: bool,
}

impl Sequential {
    pub(super) fn next(&mut self) -> Option<(u64, usize)> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
