//! The split virtqueue, as a device sees it: descriptor table, available ring, used ring.
//!
//! Everything the guest wrote is untrusted. Ring addresses must lie in guest memory and be
//! aligned; a chain must stay inside the table, must not loop or grow past the queue size, and
//! every buffer must lie in guest memory and be non-empty. A violation is an error the device
//! turns into DEVICE_NEEDS_RESET; the VMM never touches memory outside the guest.

use std::num::Wrapping;
use std::sync::atomic::{Ordering, fence};

use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

/// Descriptor flag: the chain continues at `next`.
pub const DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the device writes this buffer.
pub const DESC_F_WRITE: u16 = 2;
/// Descriptor flag: the buffer holds an indirect table (not offered).
pub const DESC_F_INDIRECT: u16 = 4;
/// Size of one descriptor.
const DESC_SIZE: u64 = 16;

/// What is wrong with a queue or a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The size is zero, not a power of two, or above the maximum.
    #[error("queue size {size} is invalid (must be a power of two up to {max})")]
    BadSize {
        /// The size the driver chose.
        size: u16,
        /// The device's maximum.
        max: u16,
    },
    /// A ring is misaligned or outside guest memory.
    #[error("the {ring} at {addr:#x} is misaligned or outside guest memory")]
    BadRing {
        /// "descriptor table", "available ring" or "used ring".
        ring: &'static str,
        /// Its address.
        addr: u64,
    },
    /// The available index ran more than a queue's worth ahead.
    #[error("available index {avail} is {ahead} ahead of the device, past the queue size")]
    AvailTooFarAhead {
        /// The driver's index.
        avail: u16,
        /// How far ahead.
        ahead: u16,
    },
    /// A descriptor index is outside the table.
    #[error("descriptor index {0} is outside the table")]
    BadIndex(u16),
    /// The chain is longer than the queue (a loop).
    #[error("descriptor chain is longer than the queue (a loop?)")]
    ChainTooLong,
    /// A buffer is empty or outside guest memory.
    #[error("buffer {addr:#x}+{len} is empty or outside guest memory")]
    BadBuffer {
        /// Buffer address.
        addr: u64,
        /// Buffer length.
        len: u32,
    },
    /// An indirect descriptor, which the device did not offer.
    #[error("indirect descriptors were not negotiated")]
    Indirect,
    /// Guest memory could not be read or written.
    #[error("guest memory access failed at {0:#x}")]
    Memory(u64),
}

/// One buffer of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// Guest address.
    pub addr: GuestAddress,
    /// Length in bytes.
    pub len: u32,
    /// Whether the device writes it.
    pub writable: bool,
}

/// A validated descriptor chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescriptorChain {
    /// Index of the head, returned in the used ring.
    pub head: u16,
    /// The buffers in order.
    pub descriptors: Vec<Descriptor>,
}

impl DescriptorChain {
    /// Total bytes of the device-writable buffers.
    pub fn writable_len(&self) -> u64 {
        self.descriptors
            .iter()
            .filter(|d| d.writable)
            .map(|d| u64::from(d.len))
            .sum()
    }
}

/// A queue's configuration (from the transport) and the device's position in it.
#[derive(Debug, Clone)]
pub struct Queue {
    /// Largest size the device supports.
    pub max_size: u16,
    /// Size the driver chose.
    pub size: u16,
    /// Whether the driver marked it ready.
    pub ready: bool,
    /// Descriptor table address.
    pub desc_table: GuestAddress,
    /// Available (driver) ring address.
    pub avail_ring: GuestAddress,
    /// Used (device) ring address.
    pub used_ring: GuestAddress,
    next_avail: Wrapping<u16>,
    next_used: Wrapping<u16>,
}

/// A queue's configuration and positions, as a snapshot keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueState {
    /// Largest size the device supports.
    pub max_size: u16,
    /// Size the driver chose.
    pub size: u16,
    /// Whether the driver marked it ready.
    pub ready: bool,
    /// Descriptor table address.
    pub desc_table: u64,
    /// Available ring address.
    pub avail_ring: u64,
    /// Used ring address.
    pub used_ring: u64,
    /// The next available-ring entry the device will take.
    pub next_avail: u16,
    /// The next used-ring entry the device will fill.
    pub next_used: u16,
}

fn read_u16(mem: &GuestMemoryMmap, addr: GuestAddress) -> Result<u16, QueueError> {
    mem.read_obj::<u16>(addr)
        .map_err(|_| QueueError::Memory(addr.0))
}

impl Queue {
    /// A queue the driver has not configured yet.
    pub fn new(max_size: u16) -> Self {
        Queue {
            max_size,
            size: max_size,
            ready: false,
            desc_table: GuestAddress(0),
            avail_ring: GuestAddress(0),
            used_ring: GuestAddress(0),
            next_avail: Wrapping(0),
            next_used: Wrapping(0),
        }
    }

    /// The configuration and positions, for a snapshot.
    pub fn state(&self) -> QueueState {
        QueueState {
            max_size: self.max_size,
            size: self.size,
            ready: self.ready,
            desc_table: self.desc_table.0,
            avail_ring: self.avail_ring.0,
            used_ring: self.used_ring.0,
            next_avail: self.next_avail.0,
            next_used: self.next_used.0,
        }
    }

    /// A queue where a snapshot left it.
    pub fn from_state(state: &QueueState) -> Self {
        Queue {
            max_size: state.max_size,
            size: state.size,
            ready: state.ready,
            desc_table: GuestAddress(state.desc_table),
            avail_ring: GuestAddress(state.avail_ring),
            used_ring: GuestAddress(state.used_ring),
            next_avail: Wrapping(state.next_avail),
            next_used: Wrapping(state.next_used),
        }
    }

    /// Checks the size and that the three rings lie, aligned, in guest memory.
    pub fn validate(&self, mem: &GuestMemoryMmap) -> Result<(), QueueError> {
        let size = self.size;
        if size == 0 || size > self.max_size || !size.is_power_of_two() {
            return Err(QueueError::BadSize {
                size,
                max: self.max_size,
            });
        }
        let n = u64::from(size);
        let rings = [
            ("descriptor table", self.desc_table, DESC_SIZE * n, 16),
            ("available ring", self.avail_ring, 6 + 2 * n, 2),
            ("used ring", self.used_ring, 6 + 8 * n, 4),
        ];
        for (ring, addr, len, align) in rings {
            if addr.0 % align != 0 || !mem.check_range(addr, len as usize) {
                return Err(QueueError::BadRing { ring, addr: addr.0 });
            }
        }
        Ok(())
    }

    /// Takes the next available chain, validated; `None` when the driver has offered nothing.
    pub fn pop(&mut self, mem: &GuestMemoryMmap) -> Result<Option<DescriptorChain>, QueueError> {
        let avail_idx = read_u16(mem, self.avail_ring.unchecked_add(2))?;
        // Read the ring entries only after the index that publishes them.
        fence(Ordering::Acquire);
        let ahead = (Wrapping(avail_idx) - self.next_avail).0;
        if ahead == 0 {
            return Ok(None);
        }
        if ahead > self.size {
            return Err(QueueError::AvailTooFarAhead {
                avail: avail_idx,
                ahead,
            });
        }
        let slot = u64::from(self.next_avail.0 % self.size);
        let head = read_u16(mem, self.avail_ring.unchecked_add(4 + 2 * slot))?;
        let chain = self.read_chain(mem, head)?;
        self.next_avail += Wrapping(1);
        Ok(Some(chain))
    }

    /// Puts the last popped chain back, to be popped again later (e.g. when rate limited).
    pub fn undo_pop(&mut self) {
        self.next_avail -= Wrapping(1);
    }

    fn read_chain(&self, mem: &GuestMemoryMmap, head: u16) -> Result<DescriptorChain, QueueError> {
        let mut descriptors = Vec::new();
        let mut index = head;
        loop {
            if index >= self.size {
                return Err(QueueError::BadIndex(index));
            }
            if descriptors.len() >= usize::from(self.size) {
                return Err(QueueError::ChainTooLong);
            }
            let at = self.desc_table.unchecked_add(DESC_SIZE * u64::from(index));
            let addr: u64 = mem.read_obj(at).map_err(|_| QueueError::Memory(at.0))?;
            let len: u32 = mem
                .read_obj(at.unchecked_add(8))
                .map_err(|_| QueueError::Memory(at.0))?;
            let flags = read_u16(mem, at.unchecked_add(12))?;
            let next = read_u16(mem, at.unchecked_add(14))?;
            if flags & DESC_F_INDIRECT != 0 {
                return Err(QueueError::Indirect);
            }
            if len == 0 || !mem.check_range(GuestAddress(addr), len as usize) {
                return Err(QueueError::BadBuffer { addr, len });
            }
            descriptors.push(Descriptor {
                addr: GuestAddress(addr),
                len,
                writable: flags & DESC_F_WRITE != 0,
            });
            if flags & DESC_F_NEXT == 0 {
                return Ok(DescriptorChain { head, descriptors });
            }
            index = next;
        }
    }

    /// Returns chain `head` to the driver with `len` bytes written.
    pub fn add_used(
        &mut self,
        mem: &GuestMemoryMmap,
        head: u16,
        len: u32,
    ) -> Result<(), QueueError> {
        let slot = u64::from(self.next_used.0 % self.size);
        let elem = self.used_ring.unchecked_add(4 + 8 * slot);
        mem.write_obj(u32::from(head), elem)
            .and_then(|_| mem.write_obj(len, elem.unchecked_add(4)))
            .map_err(|_| QueueError::Memory(elem.0))?;
        self.next_used += Wrapping(1);
        // The element must be visible before the index that publishes it.
        fence(Ordering::Release);
        mem.write_obj(self.next_used.0, self.used_ring.unchecked_add(2))
            .map_err(|_| QueueError::Memory(self.used_ring.0))
    }
}

/// Test support: a driver's side of a queue laid out in guest memory.
#[cfg(test)]
pub mod testing {
    use super::*;

    /// Lays out a queue of `size` at `base` (table, then avail, then used).
    pub fn queue_at(mem: &GuestMemoryMmap, base: u64, size: u16) -> Queue {
        let mut q = Queue::new(size);
        q.size = size;
        q.ready = true;
        q.desc_table = GuestAddress(base);
        q.avail_ring = GuestAddress(base + 16 * u64::from(size));
        q.used_ring = GuestAddress((q.avail_ring.0 + 6 + 2 * u64::from(size)).next_multiple_of(4));
        for off in (0..q.used_ring.0 + 6 + 8 * u64::from(size) - base).step_by(2) {
            mem.write_obj(0u16, GuestAddress(base + off)).unwrap();
        }
        q
    }

    /// Writes descriptor `index`.
    pub fn write_desc(
        mem: &GuestMemoryMmap,
        q: &Queue,
        index: u16,
        addr: u64,
        len: u32,
        flags: u16,
        next: u16,
    ) {
        let at = q.desc_table.unchecked_add(16 * u64::from(index));
        mem.write_obj(addr, at).unwrap();
        mem.write_obj(len, at.unchecked_add(8)).unwrap();
        mem.write_obj(flags, at.unchecked_add(12)).unwrap();
        mem.write_obj(next, at.unchecked_add(14)).unwrap();
    }

    /// Offers the chain starting at `head` in the available ring.
    pub fn offer(mem: &GuestMemoryMmap, q: &Queue, head: u16) {
        let idx: u16 = mem.read_obj(q.avail_ring.unchecked_add(2)).unwrap();
        let slot = u64::from(idx % q.size);
        mem.write_obj(head, q.avail_ring.unchecked_add(4 + 2 * slot))
            .unwrap();
        mem.write_obj(idx.wrapping_add(1), q.avail_ring.unchecked_add(2))
            .unwrap();
    }

    /// The used ring's index and its entries so far.
    pub fn used(mem: &GuestMemoryMmap, q: &Queue) -> (u16, Vec<(u32, u32)>) {
        let idx: u16 = mem.read_obj(q.used_ring.unchecked_add(2)).unwrap();
        let entries = (0..idx)
            .map(|i| {
                let at = q.used_ring.unchecked_add(4 + 8 * u64::from(i % q.size));
                (
                    mem.read_obj(at).unwrap(),
                    mem.read_obj(at.unchecked_add(4)).unwrap(),
                )
            })
            .collect();
        (idx, entries)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::kvm::memory::create_guest_memory;

    const MIB: u64 = 1 << 20;

    fn mem() -> GuestMemoryMmap {
        create_guest_memory(4 * MIB).unwrap()
    }

    #[test]
    fn pops_a_chain_and_returns_it_used() {
        let mem = mem();
        let mut q = queue_at(&mem, 0x1000, 8);
        q.validate(&mem).unwrap();
        write_desc(&mem, &q, 0, 0x10000, 16, DESC_F_NEXT, 1);
        write_desc(&mem, &q, 1, 0x20000, 512, DESC_F_WRITE, 0);
        offer(&mem, &q, 0);
        let chain = q.pop(&mem).unwrap().unwrap();
        assert_eq!(chain.head, 0);
        assert_eq!(chain.descriptors.len(), 2);
        assert!(!chain.descriptors[0].writable && chain.descriptors[1].writable);
        assert_eq!(chain.writable_len(), 512);
        assert_eq!(q.pop(&mem).unwrap(), None);
        q.add_used(&mem, chain.head, 512).unwrap();
        assert_eq!(used(&mem, &q), (1, vec![(0, 512)]));
    }

    #[test]
    fn undo_pop_offers_the_chain_again() {
        let mem = mem();
        let mut q = queue_at(&mem, 0x1000, 4);
        write_desc(&mem, &q, 2, 0x10000, 8, 0, 0);
        offer(&mem, &q, 2);
        let first = q.pop(&mem).unwrap().unwrap();
        q.undo_pop();
        assert_eq!(q.pop(&mem).unwrap().unwrap(), first);
    }

    #[test]
    fn rejects_bad_sizes_and_rings() {
        let mem = mem();
        let mut q = queue_at(&mem, 0x1000, 8);
        q.size = 6;
        assert!(matches!(
            q.validate(&mem),
            Err(QueueError::BadSize { size: 6, .. })
        ));
        q.size = 16;
        assert!(matches!(
            q.validate(&mem),
            Err(QueueError::BadSize { size: 16, max: 8 })
        ));
        q.size = 0;
        assert!(q.validate(&mem).is_err());
        let mut q = queue_at(&mem, 0x1000, 8);
        q.desc_table = GuestAddress(0x1008);
        assert!(matches!(
            q.validate(&mem),
            Err(QueueError::BadRing {
                ring: "descriptor table",
                ..
            })
        ));
        let mut q = queue_at(&mem, 0x1000, 8);
        q.used_ring = GuestAddress(4 * MIB - 8);
        assert!(matches!(
            q.validate(&mem),
            Err(QueueError::BadRing {
                ring: "used ring",
                ..
            })
        ));
        q.used_ring = GuestAddress(u64::MAX - 3);
        assert!(q.validate(&mem).is_err());
    }

    #[test]
    fn rejects_loops_and_bad_indexes() {
        let mem = mem();
        let mut q = queue_at(&mem, 0x1000, 4);
        write_desc(&mem, &q, 0, 0x10000, 8, DESC_F_NEXT, 1);
        write_desc(&mem, &q, 1, 0x10000, 8, DESC_F_NEXT, 0);
        offer(&mem, &q, 0);
        assert_eq!(q.pop(&mem), Err(QueueError::ChainTooLong));

        let mut q = queue_at(&mem, 0x1000, 4);
        write_desc(&mem, &q, 0, 0x10000, 8, DESC_F_NEXT, 9);
        offer(&mem, &q, 0);
        assert_eq!(q.pop(&mem), Err(QueueError::BadIndex(9)));

        let mut q = queue_at(&mem, 0x1000, 4);
        offer(&mem, &q, 7);
        assert_eq!(q.pop(&mem), Err(QueueError::BadIndex(7)));
    }

    #[test]
    fn rejects_buffers_outside_memory_empty_or_indirect() {
        let mem = mem();
        for (addr, len, flags) in [
            (4 * MIB - 4, 8u32, 0u16),
            (u64::MAX - 1, 8, 0),
            (0x10000, 0, 0),
            (0x10000, u32::MAX, 0),
            (0x10000, 16, DESC_F_INDIRECT),
        ] {
            let mut q = queue_at(&mem, 0x1000, 4);
            write_desc(&mem, &q, 0, addr, len, flags, 0);
            offer(&mem, &q, 0);
            assert!(q.pop(&mem).is_err(), "{addr:#x}+{len} flags {flags}");
        }
    }

    #[test]
    fn rejects_an_available_index_too_far_ahead() {
        let mem = mem();
        let mut q = queue_at(&mem, 0x1000, 4);
        mem.write_obj(9u16, q.avail_ring.unchecked_add(2)).unwrap();
        assert!(matches!(
            q.pop(&mem),
            Err(QueueError::AvailTooFarAhead { ahead: 9, .. })
        ));
    }

    #[test]
    fn indexes_wrap_around() {
        let mem = mem();
        let mut q = queue_at(&mem, 0x1000, 2);
        write_desc(&mem, &q, 0, 0x10000, 8, 0, 0);
        for round in 0..70_000u32 {
            offer(&mem, &q, 0);
            let chain = q.pop(&mem).unwrap().expect("a chain each round");
            q.add_used(&mem, chain.head, round).unwrap();
        }
        assert_eq!(used(&mem, &q).0, (70_000u32 % 65_536) as u16);
    }
}
