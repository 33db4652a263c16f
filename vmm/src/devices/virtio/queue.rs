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
/// Feature bit `VIRTIO_F_RING_EVENT_IDX`: the driver's `used_event` and the device's
/// `avail_event` (after each ring) replace the ring flags for notification suppression.
pub const F_RING_EVENT_IDX: u64 = 1 << 29;
/// Used-ring flag: the device asks the driver not to notify it (without event indexes).
pub const USED_F_NO_NOTIFY: u16 = 1;

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
    /// `VIRTIO_F_RING_EVENT_IDX` was negotiated.
    event_idx: bool,
    /// `next_used` when the driver was last interrupted; `None` until then (and after a
    /// restore), which makes the next check say yes.
    signalled_used: Option<Wrapping<u16>>,
}

/// True when an index moving from `old` to `new` passed `event` (the spec's
/// `vring_need_event`): the other side asked to hear about entry `event`.
pub fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
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
            event_idx: false,
            signalled_used: None,
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
            event_idx: false,
            signalled_used: None,
        }
    }

    /// Uses the event indexes (`VIRTIO_F_RING_EVENT_IDX`) or the ring flags for notification
    /// suppression; the transport sets it from the accepted features before activation.
    pub fn set_event_idx(&mut self, on: bool) {
        self.event_idx = on;
    }

    /// Whether the event indexes are in use.
    pub fn event_idx(&self) -> bool {
        self.event_idx
    }

    /// Asks the driver not to notify while the device drains the queue: sets
    /// `VIRTQ_USED_F_NO_NOTIFY`; with event indexes nothing is written (`avail_event` stays
    /// behind the driver, which then does not notify).
    pub fn disable_notification(&mut self, mem: &GuestMemoryMmap) -> Result<(), QueueError> {
        if self.event_idx {
            return Ok(());
        }
        mem.write_obj(USED_F_NO_NOTIFY, self.used_ring)
            .map_err(|_| QueueError::Memory(self.used_ring.0))
    }

    /// Asks the driver to notify for its next available chain (clears the flag, or sets
    /// `avail_event` to the next entry) and returns whether a chain is already available, in
    /// which case the device must drain again rather than wait (the driver may have checked
    /// before the request was visible).
    pub fn enable_notification(&mut self, mem: &GuestMemoryMmap) -> Result<bool, QueueError> {
        if self.event_idx {
            let at = self.avail_event_addr();
            mem.write_obj(self.next_avail.0, at)
                .map_err(|_| QueueError::Memory(at.0))?;
        } else {
            mem.write_obj(0u16, self.used_ring)
                .map_err(|_| QueueError::Memory(self.used_ring.0))?;
        }
        // The request must be visible before the index is read again (the driver does the
        // mirror image: publish its index, then read ours).
        fence(Ordering::SeqCst);
        let avail_idx = read_u16(mem, self.avail_ring.unchecked_add(2))?;
        Ok(Wrapping(avail_idx) != self.next_avail)
    }

    /// Whether the driver wants an interrupt for the used entries added since the last one,
    /// and if so records that it gets one. Without event indexes always yes; with them when
    /// the entries passed the driver's `used_event`.
    pub fn needs_notification(&mut self, mem: &GuestMemoryMmap) -> Result<bool, QueueError> {
        let new = self.next_used;
        let old = self.signalled_used.replace(new);
        if !self.event_idx {
            return Ok(true);
        }
        let Some(old) = old else {
            return Ok(true);
        };
        // The used index written before must be visible before the driver's event is read.
        fence(Ordering::SeqCst);
        let at = self.avail_ring.unchecked_add(4 + 2 * u64::from(self.size));
        let used_event = read_u16(mem, at)?;
        Ok(need_event(used_event, new.0, old.0))
    }

    fn avail_event_addr(&self) -> GuestAddress {
        self.used_ring.unchecked_add(4 + 8 * u64::from(self.size))
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

    #[test]
    fn need_event_follows_the_spec_across_the_wrap() {
        // The driver asked to hear about entry 5: moving 3 -> 6 passes it, 6 -> 8 does not.
        assert!(need_event(5, 6, 3));
        assert!(!need_event(5, 8, 6));
        assert!(!need_event(5, 5, 3), "entry 5 itself is not used yet");
        assert!(!need_event(5, 3, 3), "nothing new");
        // Across 65535 -> 0.
        assert!(need_event(65_535, 2, 65_530));
        assert!(need_event(0, 1, 65_535));
        assert!(!need_event(10, 2, 65_530));
    }

    /// A queue with entry `0` offered `n` times (a one-descriptor chain).
    fn served(mem: &GuestMemoryMmap, q: &mut Queue, n: usize) {
        write_desc(mem, q, 0, 0x10000, 8, 0, 0);
        for _ in 0..n {
            offer(mem, q, 0);
            let chain = q.pop(mem).unwrap().unwrap();
            q.add_used(mem, chain.head, 0).unwrap();
        }
    }

    fn set_used_event(mem: &GuestMemoryMmap, q: &Queue, value: u16) {
        let at = q.avail_ring.unchecked_add(4 + 2 * u64::from(q.size));
        mem.write_obj(value, at).unwrap();
    }

    #[test]
    fn interrupts_follow_used_event() {
        let mem = mem();
        let mut q = queue_at(&mem, 0x1000, 8);
        q.set_event_idx(true);
        // The first check always says yes (nothing recorded yet).
        served(&mem, &mut q, 1);
        assert!(q.needs_notification(&mem).unwrap());
        // The driver wants to hear when entry 4 is used: entries 1..=3 do not reach it.
        set_used_event(&mem, &q, 4);
        served(&mem, &mut q, 3);
        assert!(!q.needs_notification(&mem).unwrap());
        served(&mem, &mut q, 1);
        assert!(q.needs_notification(&mem).unwrap(), "entry 4 is used");
        assert!(!q.needs_notification(&mem).unwrap(), "nothing new since");
        // Without event indexes every batch interrupts.
        q.set_event_idx(false);
        assert!(q.needs_notification(&mem).unwrap());
    }

    #[test]
    fn used_event_works_past_the_wrap() {
        let mem = mem();
        let mut q = queue_at(&mem, 0x1000, 2);
        q.set_event_idx(true);
        let mut interrupts = 0;
        for round in 0..70_000u32 {
            // The driver asks for every 100th entry.
            let next = round.div_ceil(100) * 100;
            set_used_event(&mem, &q, (next % 65_536) as u16);
            served(&mem, &mut q, 1);
            if q.needs_notification(&mem).unwrap() {
                interrupts += 1;
            }
        }
        // Once for the first entry, then once per hundred.
        assert!((700..=702).contains(&interrupts), "{interrupts}");
    }

    #[test]
    fn notification_requests_use_flags_or_avail_event() {
        let mem = mem();
        let mut q = queue_at(&mem, 0x1000, 4);
        let flags = |mem: &GuestMemoryMmap, q: &Queue| mem.read_obj::<u16>(q.used_ring).unwrap();
        q.disable_notification(&mem).unwrap();
        assert_eq!(flags(&mem, &q), USED_F_NO_NOTIFY);
        assert!(!q.enable_notification(&mem).unwrap(), "nothing offered");
        assert_eq!(flags(&mem, &q), 0);
        write_desc(&mem, &q, 0, 0x10000, 8, 0, 0);
        offer(&mem, &q, 0);
        assert!(q.enable_notification(&mem).unwrap(), "a chain is waiting");

        let mut q = queue_at(&mem, 0x1000, 4);
        q.set_event_idx(true);
        let avail_event = |mem: &GuestMemoryMmap, q: &Queue| {
            mem.read_obj::<u16>(q.used_ring.unchecked_add(4 + 8 * 4))
                .unwrap()
        };
        served(&mem, &mut q, 3);
        q.disable_notification(&mem).unwrap();
        assert_eq!(flags(&mem, &q), 0, "event indexes leave the flags alone");
        assert!(!q.enable_notification(&mem).unwrap());
        assert_eq!(
            avail_event(&mem, &q),
            3,
            "notify me when entry 3 is offered"
        );
    }
}
