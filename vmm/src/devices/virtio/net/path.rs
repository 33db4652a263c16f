//! One frame at a time between the tap and a queue: what the device's passes over its rx and
//! tx queues are made of, and the interrupt decision at their end.

use vm_memory::{Bytes, GuestMemoryMmap};

use super::io::IoVecs;
use super::tap::{Tap, VNET_HDR_LEN};
use super::{Active, MAX_FRAME, RX, Throttle};
use crate::devices::virtio::DeviceCounters;
use crate::devices::virtio::interrupt::USED_BUFFER;
use crate::devices::virtio::queue::DescriptorChain;

/// What one tx chain came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TxStep {
    /// A chain was used (its frame sent, or dropped as malformed).
    Sent,
    /// The queue is empty.
    Empty,
    /// The rate limiter says wait (the chain stays available).
    Throttled,
    /// The queue is malformed: the device needs a reset.
    Broken,
}

/// What one rx frame came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// A chain was used (a frame moved, or a bad chain returned empty); go on.
    Done,
    /// Nothing used this time, but there may be more; go on.
    Skipped,
    /// Stop for now: nothing to move, no buffers, or throttled.
    Stop,
    /// The queue is malformed: the device needs a reset.
    Broken,
}

/// Interrupts the driver if chains were used on queue `which` and it wants to hear of them.
pub(super) fn notify_used(active: &mut Active, which: usize, used: bool) {
    if !used {
        return;
    }
    let queue = if which == RX {
        &mut active.rx
    } else {
        &mut active.tx
    };
    // A used ring we cannot read is reported on the next pop; interrupt to be safe.
    if queue.needs_notification(&active.memory).unwrap_or(true) {
        active.interrupt.trigger(USED_BUFFER);
    }
}

/// Takes an rx chain, asking for a notification when there is none; `None` to stop.
fn rx_chain(active: &mut Active) -> Result<Option<DescriptorChain>, Step> {
    loop {
        match active.rx.pop(&active.memory) {
            Ok(Some(chain)) => return Ok(Some(chain)),
            Ok(None) => match active.rx.enable_notification(&active.memory) {
                Ok(true) => continue,
                Ok(false) => return Ok(None),
                Err(_) => return Err(Step::Broken),
            },
            Err(err) => {
                tracing::warn!("net rx queue malformed: {err}");
                return Err(Step::Broken);
            }
        }
    }
}

/// One frame read from the tap straight into the guest's next rx buffers.
pub(super) fn rx_one_direct(
    active: &mut Active,
    tap: &Tap,
    iov: &mut IoVecs,
    counters: &DeviceCounters,
) -> Step {
    let chain = match rx_chain(active) {
        Ok(Some(chain)) => chain,
        Ok(None) => return Step::Stop,
        Err(step) => return step,
    };
    let written = match iov.fill(&active.memory, &chain, true, usize::MAX) {
        Err(_) => {
            // The buffers cannot take a frame: return them empty.
            DeviceCounters::add(&counters.errors, 1);
            0
        }
        Ok(room) => match tap.read_frame_vectored(iov.as_slice()) {
            Ok(n) if n <= room && n >= VNET_HDR_LEN => {
                DeviceCounters::add(&counters.requests, 1);
                DeviceCounters::add(&counters.ops_in, 1);
                DeviceCounters::add(&counters.bytes_in, (n - VNET_HDR_LEN) as u64);
                n as u32
            }
            Ok(_) => {
                // Reached the overflow byte (the buffers were too small): dropped.
                DeviceCounters::add(&counters.errors, 1);
                0
            }
            Err(err) => {
                active.rx.undo_pop();
                return match err.kind() {
                    std::io::ErrorKind::WouldBlock => Step::Stop,
                    // A frame the kernel could not describe to us was dropped; try the next.
                    std::io::ErrorKind::InvalidInput => {
                        DeviceCounters::add(&counters.errors, 1);
                        Step::Skipped
                    }
                    _ => {
                        tracing::warn!("tap {} read failed: {err}", tap.name());
                        DeviceCounters::add(&counters.errors, 1);
                        Step::Stop
                    }
                };
            }
        },
    };
    match active.rx.add_used(&active.memory, chain.head, written) {
        Ok(()) => Step::Done,
        Err(_) => Step::Broken,
    }
}

/// One frame through a host buffer: the one kept from before (a snapshot, or a frame the rate
/// limiter held back), or one read now so that the limiter can weigh it first.
pub(super) fn rx_one_copied(
    active: &mut Active,
    tap: &Tap,
    throttle: &mut Throttle,
    pending: &mut Option<Vec<u8>>,
    counters: &DeviceCounters,
) -> Step {
    let frame = match pending.take() {
        Some(frame) => frame,
        None => {
            let mut buf = vec![0u8; MAX_FRAME];
            match tap.read_frame(&mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    buf
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return Step::Stop,
                Err(err) => {
                    tracing::warn!("tap {} read failed: {err}", tap.name());
                    DeviceCounters::add(&counters.errors, 1);
                    return Step::Stop;
                }
            }
        }
    };
    if !throttle.admit(frame.len(), counters) {
        *pending = Some(frame);
        return Step::Stop;
    }
    let chain = match rx_chain(active) {
        Ok(Some(chain)) => chain,
        Ok(None) => {
            *pending = Some(frame);
            return Step::Stop;
        }
        Err(step) => {
            *pending = Some(frame);
            return step;
        }
    };
    let written = match copy_to_chain(&active.memory, &chain, &frame) {
        Some(n) => {
            DeviceCounters::add(&counters.requests, 1);
            DeviceCounters::add(&counters.ops_in, 1);
            DeviceCounters::add(
                &counters.bytes_in,
                frame.len().saturating_sub(VNET_HDR_LEN) as u64,
            );
            n
        }
        None => {
            // The buffers cannot hold the frame: drop it, return the buffers empty.
            DeviceCounters::add(&counters.errors, 1);
            0
        }
    };
    match active.rx.add_used(&active.memory, chain.head, written) {
        Ok(()) => Step::Done,
        Err(_) => Step::Broken,
    }
}

/// Sends the next tx chain straight from guest memory.
pub(super) fn tx_one(
    active: &mut Active,
    tap: &Tap,
    iov: &mut IoVecs,
    throttle: &mut Throttle,
    counters: &DeviceCounters,
) -> TxStep {
    let chain = match active.tx.pop(&active.memory) {
        Ok(Some(chain)) => chain,
        Ok(None) => return TxStep::Empty,
        Err(err) => {
            tracing::warn!("net tx queue malformed: {err}");
            return TxStep::Broken;
        }
    };
    match iov.fill(&active.memory, &chain, false, MAX_FRAME) {
        Ok(len) => {
            if throttle.limiter.is_active() && !throttle.admit(len, counters) {
                active.tx.undo_pop();
                return TxStep::Throttled;
            }
            match tap.write_frame_vectored(iov.as_slice(), len) {
                Ok(()) => {
                    DeviceCounters::add(&counters.requests, 1);
                    DeviceCounters::add(&counters.ops_out, 1);
                    DeviceCounters::add(&counters.bytes_out, (len - VNET_HDR_LEN) as u64);
                }
                Err(err) => {
                    // Includes frames whose virtio-net header the kernel refused.
                    tracing::debug!("tap {} write failed: {err}", tap.name());
                    DeviceCounters::add(&counters.errors, 1);
                }
            }
        }
        Err(_) => DeviceCounters::add(&counters.errors, 1),
    }
    match active.tx.add_used(&active.memory, chain.head, 0) {
        Ok(()) => TxStep::Sent,
        Err(_) => TxStep::Broken,
    }
}

/// Copies `frame` into the chain's writable buffers; `None` if they are too small or the chain
/// has a device-readable buffer.
pub(super) fn copy_to_chain(
    mem: &GuestMemoryMmap,
    chain: &DescriptorChain,
    frame: &[u8],
) -> Option<u32> {
    if chain.descriptors.iter().any(|d| !d.writable) || chain.writable_len() < frame.len() as u64 {
        return None;
    }
    let mut rest = frame;
    for d in &chain.descriptors {
        if rest.is_empty() {
            break;
        }
        let n = rest.len().min(d.len as usize);
        mem.write_slice(&rest[..n], d.addr).ok()?;
        rest = &rest[n..];
    }
    Some(frame.len() as u32)
}

/// `copy_to_chain`, for the hostile-guest tests.
#[cfg(test)]
pub fn copy_to_chain_for_tests(
    mem: &GuestMemoryMmap,
    chain: &DescriptorChain,
    frame: &[u8],
) -> Option<u32> {
    copy_to_chain(mem, chain, frame)
}
