//! A split virtqueue (virtio 1.x, section 2.7) on the driver side: the descriptor table, the
//! available ring and the used ring in one page-aligned, zeroed allocation that the device
//! reaches at the same (identity-mapped) addresses.
//!
//! The queue only does the bookkeeping: it never touches device registers. The driver
//! notifies the device (a register write) after [`Virtqueue::add`] when
//! [`Virtqueue::should_notify`] says so, and polls [`Virtqueue::pop_used`].

use alloc::alloc::{alloc_zeroed, dealloc};
use alloc::vec;
use alloc::vec::Vec;
use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU16, Ordering, fence};

/// Descriptor flag: the chain continues at `next`.
pub const DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the device writes this buffer (otherwise it reads it).
pub const DESC_F_WRITE: u16 = 2;
/// Used-ring flag: the device asks not to be notified.
pub const USED_F_NO_NOTIFY: u16 = 1;
/// `VIRTIO_F_RING_EVENT_IDX`: `used_event` (after the available ring) and `avail_event`
/// (after the used ring) say when each side wants to hear from the other.
pub const F_RING_EVENT_IDX: u64 = 1 << 29;

/// True when an index moving from `old` to `new` passed `event` (the spec's
/// `vring_need_event`).
pub fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}
/// Bytes of one descriptor.
pub const DESC_SIZE: usize = 16;
/// Bytes of one used-ring element.
pub const USED_ELEM_SIZE: usize = 8;
/// Alignment of the allocation (and of the used ring inside it).
const PAGE: usize = 4096;
/// Largest queue size the virtio spec allows.
pub const MAX_QUEUE_SIZE: u16 = 32768;

/// One buffer of a request: its guest physical address, length and direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffer {
    /// Guest physical address (= the probe's virtual address).
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// True if the device writes it.
    pub device_writes: bool,
}

impl Buffer {
    /// A buffer the device reads.
    pub const fn readable(addr: u64, len: u32) -> Self {
        Self {
            addr,
            len,
            device_writes: false,
        }
    }

    /// A buffer the device writes.
    pub const fn writable(addr: u64, len: u32) -> Self {
        Self {
            addr,
            len,
            device_writes: true,
        }
    }
}

/// One completed chain from the used ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Used {
    /// The head descriptor index that [`Virtqueue::add`] returned for the chain.
    pub head: u16,
    /// Bytes the device wrote into the chain's writable buffers.
    pub len: u32,
}

/// Why [`Virtqueue::add`] refused a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddError {
    /// Not enough free descriptors right now (wait for completions).
    Full,
    /// The chain is empty or longer than the queue.
    BadChain,
}

/// What the device did wrong in the used ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadUsed {
    /// The id the device returned.
    pub id: u32,
}

/// Byte offsets of the three parts inside the allocation, for a queue of `size` entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingLayout {
    /// Offset of the available ring (the descriptor table is at 0).
    pub avail: usize,
    /// Offset of the used ring.
    pub used: usize,
    /// Total bytes (a multiple of the page size).
    pub total: usize,
}

impl RingLayout {
    /// The layout of a queue of `size` entries: descriptors, then the available ring
    /// (flags, idx, ring, used_event), then the used ring on the next page.
    pub const fn new(size: u16) -> Self {
        let n = size as usize;
        let avail = n * DESC_SIZE;
        let avail_end = avail + 6 + 2 * n;
        let used = avail_end.next_multiple_of(PAGE);
        let used_end = used + 6 + USED_ELEM_SIZE * n;
        Self {
            avail,
            used,
            total: used_end.next_multiple_of(PAGE),
        }
    }
}

/// The driver side of one split virtqueue.
#[derive(Debug)]
pub struct Virtqueue {
    base: NonNull<u8>,
    layout: RingLayout,
    size: u16,
    /// Free descriptor indices (a stack).
    free: Vec<u16>,
    /// The driver's own copy of each descriptor's `next` link (never read back from the
    /// shared table, which the device could scribble on).
    next: Vec<u16>,
    /// Descriptors in the chain whose head is the index; 0 when not in flight.
    chain_len: Vec<u16>,
    /// The next available-ring index to publish.
    avail_idx: u16,
    /// The next used-ring index to consume.
    last_used: u16,
    /// Event indexes are in use (negotiated `F_RING_EVENT_IDX`).
    event_idx: bool,
    /// `avail_idx` at the last [`Virtqueue::should_notify`].
    kicked_idx: u16,
}

// SAFETY: the queue owns its ring memory; moving it to another vCPU moves that ownership.
unsafe impl Send for Virtqueue {}

impl Virtqueue {
    /// A queue of `size` entries (a power of two, 1 to 32768) with zeroed rings.
    /// Returns `None` if the size is invalid or the allocation fails.
    pub fn new(size: u16) -> Option<Self> {
        if size == 0 || !size.is_power_of_two() || size > MAX_QUEUE_SIZE {
            return None;
        }
        let layout = RingLayout::new(size);
        let alloc_layout = Layout::from_size_align(layout.total, PAGE).ok()?;
        // SAFETY: the layout has a non-zero size.
        let base = NonNull::new(unsafe { alloc_zeroed(alloc_layout) })?;
        Some(Self {
            base,
            layout,
            size,
            free: (0..size).rev().collect(),
            next: vec![0; usize::from(size)],
            chain_len: vec![0; usize::from(size)],
            avail_idx: 0,
            last_used: 0,
            event_idx: false,
            kicked_idx: 0,
        })
    }

    /// Entries in the queue.
    pub fn size(&self) -> u16 {
        self.size
    }

    /// Address of the descriptor table (QueueDesc).
    pub fn desc_addr(&self) -> u64 {
        self.base.as_ptr() as u64
    }

    /// Address of the available ring (QueueDriver).
    pub fn avail_addr(&self) -> u64 {
        self.desc_addr() + self.layout.avail as u64
    }

    /// Address of the used ring (QueueDevice).
    pub fn used_addr(&self) -> u64 {
        self.desc_addr() + self.layout.used as u64
    }

    /// Descriptors not in flight.
    pub fn free_descriptors(&self) -> usize {
        self.free.len()
    }

    /// The head index the next [`Virtqueue::add`] will return, if a descriptor is free (so a
    /// driver can place per-request data, such as a block header, by head index).
    pub fn next_head(&self) -> Option<u16> {
        self.free.last().copied()
    }

    /// Chains added and not yet returned by [`Virtqueue::pop_used`].
    pub fn in_flight(&self) -> u16 {
        self.avail_idx.wrapping_sub(self.last_used)
    }

    /// Adds a chain of `buffers` and publishes it in the available ring; returns its head
    /// descriptor index (unique among chains in flight).
    ///
    /// The buffers must stay valid (and, for device-written ones, unused) until the chain
    /// comes back from [`Virtqueue::pop_used`]; the drivers uphold that.
    pub fn add(&mut self, buffers: &[Buffer]) -> Result<u16, AddError> {
        if buffers.is_empty() || buffers.len() > usize::from(self.size) {
            return Err(AddError::BadChain);
        }
        if buffers.len() > self.free.len() {
            return Err(AddError::Full);
        }
        // Descriptors are taken in order (the head first, as `next_head` predicts); each one
        // is written once the next one's index is known, so no list is built.
        let mut head = None;
        let mut prev: Option<(u16, &Buffer)> = None;
        for buffer in buffers {
            let id = self.free.pop().unwrap_or_default();
            head.get_or_insert(id);
            if let Some((prev_id, prev_buffer)) = prev {
                self.link(prev_id, prev_buffer, Some(id));
            }
            prev = Some((id, buffer));
        }
        if let Some((last_id, last_buffer)) = prev {
            self.link(last_id, last_buffer, None);
        }
        let head = head.unwrap_or_default();
        self.chain_len[usize::from(head)] = buffers.len() as u16;
        let slot = usize::from(self.avail_idx % self.size);
        // SAFETY: the ring element lies inside the allocation (slot < size).
        unsafe {
            self.ptr(self.layout.avail + 4 + 2 * slot)
                .cast::<u16>()
                .write_volatile(head.to_le());
        }
        self.avail_idx = self.avail_idx.wrapping_add(1);
        // The release store publishes the descriptors and ring element written above.
        self.avail_idx_atomic()
            .store(self.avail_idx.to_le(), Ordering::Release);
        Ok(head)
    }

    /// Uses event indexes (after negotiating `F_RING_EVENT_IDX`) instead of the ring flags.
    pub fn set_event_idx(&mut self, on: bool) {
        self.event_idx = on;
    }

    /// Whether the device wants to hear of the chains added since the last call: unless it
    /// set `VIRTQ_USED_F_NO_NOTIFY`, or with event indexes when they passed its
    /// `avail_event`. Call after [`Virtqueue::add`], before writing QueueNotify.
    pub fn should_notify(&mut self) -> bool {
        // The published index must be visible before the flag is read (spec 2.7.13.3.1).
        fence(Ordering::SeqCst);
        let old = core::mem::replace(&mut self.kicked_idx, self.avail_idx);
        if self.event_idx {
            let at = self.layout.used + 4 + USED_ELEM_SIZE * usize::from(self.size);
            // SAFETY: `avail_event` is inside the allocation (the layout reserves it).
            let event = unsafe { self.ptr(at).cast::<u16>().read_volatile() };
            return need_event(u16::from_le(event), self.avail_idx, old);
        }
        // SAFETY: the used ring's flags field is inside the allocation.
        let flags = unsafe { self.ptr(self.layout.used).cast::<u16>().read_volatile() };
        u16::from_le(flags) & USED_F_NO_NOTIFY == 0
    }

    /// With event indexes, asks the device to report (interrupt, or wake a waiting vCPU) only
    /// once the used index passes `last_used + ahead`: a driver waiting for room lets several
    /// chains complete per wake-up. [`Virtqueue::pop_used`] sets it back to the next entry
    /// when it finds the ring empty.
    pub fn delay_used_event(&mut self, ahead: u16) {
        self.write_used_event(self.last_used.wrapping_add(ahead));
    }

    fn write_used_event(&mut self, value: u16) {
        if !self.event_idx {
            return;
        }
        let at = self.layout.avail + 4 + 2 * usize::from(self.size);
        // SAFETY: `used_event` is inside the allocation (the layout reserves it).
        unsafe { self.ptr(at).cast::<u16>().write_volatile(value.to_le()) };
        // Visible before the used index is read again (the device does the mirror image).
        fence(Ordering::SeqCst);
    }

    /// True if the device has returned a chain that [`Virtqueue::pop_used`] has not taken.
    pub fn has_used(&self) -> bool {
        u16::from_le(self.used_idx_atomic().load(Ordering::Acquire)) != self.last_used
    }

    /// Takes the next completed chain from the used ring and frees its descriptors.
    /// `Err` if the device returned an id that is not the head of a chain in flight (the
    /// entry is skipped).
    pub fn pop_used(&mut self) -> Option<Result<Used, BadUsed>> {
        if !self.has_used() {
            if !self.event_idx {
                return None;
            }
            // Empty: ask to hear of the next completion (the spec's default, which a waiting
            // driver may delay), then look again in case it came meanwhile.
            self.write_used_event(self.last_used);
            if !self.has_used() {
                return None;
            }
        }
        let slot = usize::from(self.last_used % self.size);
        let offset = self.layout.used + 4 + USED_ELEM_SIZE * slot;
        // SAFETY: the element lies inside the allocation (slot < size).
        let (id, len) = unsafe {
            (
                u32::from_le(self.ptr(offset).cast::<u32>().read_volatile()),
                u32::from_le(self.ptr(offset + 4).cast::<u32>().read_volatile()),
            )
        };
        self.last_used = self.last_used.wrapping_add(1);
        let Some(count) = usize::try_from(id)
            .ok()
            .and_then(|i| self.chain_len.get(i).copied())
            .filter(|&c| c != 0)
        else {
            return Some(Err(BadUsed { id }));
        };
        let head = id as u16;
        self.chain_len[usize::from(head)] = 0;
        let mut desc = head;
        for _ in 0..count {
            self.free.push(desc);
            desc = self.next[usize::from(desc)];
        }
        Some(Ok(Used { head, len }))
    }

    fn ptr(&self, offset: usize) -> *mut u8 {
        debug_assert!(offset < self.layout.total);
        // SAFETY: callers pass offsets inside the allocation.
        unsafe { self.base.as_ptr().add(offset) }
    }

    /// Writes descriptor `id` for `buffer`, chained to `next` if any.
    fn link(&mut self, id: u16, buffer: &Buffer, next: Option<u16>) {
        let mut flags = if buffer.device_writes {
            DESC_F_WRITE
        } else {
            0
        };
        if next.is_some() {
            flags |= DESC_F_NEXT;
        }
        let next = next.unwrap_or(0);
        self.next[usize::from(id)] = next;
        self.write_desc(id, buffer.addr, buffer.len, flags, next);
    }

    fn write_desc(&mut self, id: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let p = self.ptr(usize::from(id) * DESC_SIZE);
        // SAFETY: descriptor `id < size` lies inside the allocation; fields are naturally aligned.
        unsafe {
            p.cast::<u64>().write_volatile(addr.to_le());
            p.add(8).cast::<u32>().write_volatile(len.to_le());
            p.add(12).cast::<u16>().write_volatile(flags.to_le());
            p.add(14).cast::<u16>().write_volatile(next.to_le());
        }
    }

    fn avail_idx_atomic(&self) -> &AtomicU16 {
        // SAFETY: the avail idx field is 2-byte aligned inside the allocation, lives as long as
        // `self`, and is only accessed atomically (by us and the device).
        unsafe { AtomicU16::from_ptr(self.ptr(self.layout.avail + 2).cast()) }
    }

    fn used_idx_atomic(&self) -> &AtomicU16 {
        // SAFETY: as for the avail idx; the device writes this field.
        unsafe { AtomicU16::from_ptr(self.ptr(self.layout.used + 2).cast()) }
    }
}

impl Drop for Virtqueue {
    fn drop(&mut self) {
        // The driver resets the device before dropping its queues, so the device no longer
        // touches the rings.
        let layout = Layout::from_size_align(self.layout.total, PAGE)
            .expect("the layout was valid at allocation");
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.base.as_ptr(), layout) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device acting on the rings through their addresses, as the vmm would.
    struct FakeDevice {
        desc: u64,
        avail: u64,
        used: u64,
        size: u16,
        last_avail: u16,
    }

    #[derive(Debug, PartialEq, Eq)]
    struct Desc {
        addr: u64,
        len: u32,
        flags: u16,
        next: u16,
    }

    impl FakeDevice {
        fn new(q: &Virtqueue) -> Self {
            Self {
                desc: q.desc_addr(),
                avail: q.avail_addr(),
                used: q.used_addr(),
                size: q.size(),
                last_avail: 0,
            }
        }

        fn read<T: Copy>(addr: u64) -> T {
            unsafe { (addr as *const T).read_volatile() }
        }

        fn desc(&self, i: u16) -> Desc {
            let p = self.desc + 16 * u64::from(i);
            Desc {
                addr: Self::read(p),
                len: Self::read(p + 8),
                flags: Self::read(p + 12),
                next: Self::read(p + 14),
            }
        }

        /// The next available chain: head and descriptors.
        fn pop_avail(&mut self) -> Option<(u16, Vec<Desc>)> {
            let idx: u16 = Self::read(self.avail + 2);
            if idx == self.last_avail {
                return None;
            }
            let slot = u64::from(self.last_avail % self.size);
            let head: u16 = Self::read(self.avail + 4 + 2 * slot);
            self.last_avail = self.last_avail.wrapping_add(1);
            let mut chain = Vec::new();
            let mut i = head;
            loop {
                let d = self.desc(i);
                let more = d.flags & DESC_F_NEXT != 0;
                i = d.next;
                chain.push(d);
                if !more {
                    break;
                }
            }
            Some((head, chain))
        }

        fn push_used(&mut self, id: u32, len: u32) {
            let idx: u16 = Self::read(self.used + 2);
            let slot = u64::from(idx % self.size);
            unsafe {
                ((self.used + 4 + 8 * slot) as *mut u32).write_volatile(id);
                ((self.used + 8 + 8 * slot) as *mut u32).write_volatile(len);
                ((self.used + 2) as *mut u16).write_volatile(idx.wrapping_add(1));
            }
        }

        fn set_avail_event(&self, value: u16) {
            let at = self.used + 4 + 8 * u64::from(self.size);
            unsafe { (at as *mut u16).write_volatile(value) };
        }

        fn used_event(&self) -> u16 {
            Self::read(self.avail + 4 + 2 * u64::from(self.size))
        }

        fn set_no_notify(&self, on: bool) {
            unsafe { (self.used as *mut u16).write_volatile(u16::from(on)) };
        }
    }

    #[test]
    fn layout_is_aligned() {
        let l = RingLayout::new(256);
        assert_eq!(l.avail, 4096);
        assert_eq!(l.used, 8192);
        assert_eq!(l.total, 8192 + 4096);
        let l = RingLayout::new(8);
        assert_eq!((l.avail, l.used, l.total), (128, 4096, 8192));
        let q = Virtqueue::new(256).unwrap();
        assert_eq!(q.desc_addr() % 4096, 0);
        assert_eq!(q.avail_addr() - q.desc_addr(), 4096);
        assert_eq!(q.used_addr() % 4096, 0);
    }

    #[test]
    fn rejects_bad_sizes() {
        assert!(Virtqueue::new(0).is_none());
        assert!(Virtqueue::new(3).is_none());
        assert!(Virtqueue::new(65535).is_none());
        assert!(Virtqueue::new(1).is_some());
    }

    #[test]
    fn chains_round_trip_through_a_device() {
        let mut q = Virtqueue::new(8).unwrap();
        let mut dev = FakeDevice::new(&q);
        assert!(q.pop_used().is_none());
        assert!(dev.pop_avail().is_none());

        let a = q
            .add(&[
                Buffer::readable(0x1000, 16),
                Buffer::writable(0x2000, 512),
                Buffer::writable(0x3000, 1),
            ])
            .unwrap();
        let b = q.add(&[Buffer::readable(0x4000, 100)]).unwrap();
        assert_ne!(a, b);
        assert_eq!(q.free_descriptors(), 4);
        assert_eq!(q.in_flight(), 2);

        let (head, chain) = dev.pop_avail().unwrap();
        assert_eq!(head, a);
        assert_eq!(chain.len(), 3);
        assert_eq!(
            (chain[0].addr, chain[0].len, chain[0].flags),
            (0x1000, 16, 1)
        );
        assert_eq!(
            (chain[1].addr, chain[1].len, chain[1].flags),
            (0x2000, 512, 3)
        );
        assert_eq!(
            (chain[2].addr, chain[2].len, chain[2].flags),
            (0x3000, 1, 2)
        );
        let (head_b, chain_b) = dev.pop_avail().unwrap();
        assert_eq!(head_b, b);
        assert_eq!(
            chain_b,
            [Desc {
                addr: 0x4000,
                len: 100,
                flags: 0,
                next: 0
            }]
        );
        assert!(dev.pop_avail().is_none());

        // Completed out of order.
        dev.push_used(u32::from(b), 0);
        assert!(q.has_used());
        assert_eq!(q.pop_used(), Some(Ok(Used { head: b, len: 0 })));
        assert_eq!(q.free_descriptors(), 5);
        dev.push_used(u32::from(a), 513);
        assert_eq!(q.pop_used(), Some(Ok(Used { head: a, len: 513 })));
        assert_eq!(q.free_descriptors(), 8);
        assert_eq!(q.in_flight(), 0);
        assert!(q.pop_used().is_none());
        assert!(!q.has_used());
    }

    #[test]
    fn full_queue_and_bad_chains() {
        let mut q = Virtqueue::new(4).unwrap();
        let mut dev = FakeDevice::new(&q);
        assert_eq!(q.add(&[]), Err(AddError::BadChain));
        assert_eq!(q.add(&[Buffer::readable(0, 1); 5]), Err(AddError::BadChain));
        let predicted = q.next_head();
        let h = q.add(&[Buffer::readable(0, 1); 3]).unwrap();
        assert_eq!(predicted, Some(h));
        assert_eq!(q.add(&[Buffer::readable(0, 1); 2]), Err(AddError::Full));
        let h2 = q.add(&[Buffer::readable(0, 1)]).unwrap();
        assert_eq!(q.free_descriptors(), 0);
        assert_eq!(q.next_head(), None);
        dev.pop_avail().unwrap();
        dev.pop_avail().unwrap();
        // A bogus id: reported and skipped; nothing freed.
        dev.push_used(99, 0);
        assert_eq!(q.pop_used(), Some(Err(BadUsed { id: 99 })));
        // The same chain returned twice: the second time it is not in flight.
        dev.push_used(u32::from(h2), 0);
        dev.push_used(u32::from(h2), 0);
        assert_eq!(q.pop_used(), Some(Ok(Used { head: h2, len: 0 })));
        assert_eq!(q.pop_used(), Some(Err(BadUsed { id: u32::from(h2) })));
        dev.push_used(u32::from(h), 7);
        assert_eq!(q.pop_used(), Some(Ok(Used { head: h, len: 7 })));
        assert_eq!(q.free_descriptors(), 4);
    }

    #[test]
    fn indices_wrap_past_u16() {
        let mut q = Virtqueue::new(2).unwrap();
        let mut dev = FakeDevice::new(&q);
        for i in 0..70_000u32 {
            let h = q.add(&[Buffer::writable(u64::from(i), 4)]).unwrap();
            let (head, chain) = dev.pop_avail().unwrap();
            assert_eq!(head, h);
            assert_eq!(chain[0].addr, u64::from(i));
            dev.push_used(u32::from(head), i);
            assert_eq!(q.pop_used(), Some(Ok(Used { head: h, len: i })));
        }
        assert_eq!(q.free_descriptors(), 2);
    }

    #[test]
    fn honours_no_notify() {
        let mut q = Virtqueue::new(4).unwrap();
        let dev = FakeDevice::new(&q);
        q.add(&[Buffer::readable(0, 1)]).unwrap();
        assert!(q.should_notify());
        dev.set_no_notify(true);
        assert!(!q.should_notify());
        dev.set_no_notify(false);
        assert!(q.should_notify());
    }

    #[test]
    fn event_indexes_decide_notifications() {
        let mut q = Virtqueue::new(8).unwrap();
        q.set_event_idx(true);
        let dev = FakeDevice::new(&q);
        // The device's avail_event is 0: the first chain (entry 0) is of interest.
        q.add(&[Buffer::readable(0, 1)]).unwrap();
        assert!(q.should_notify());
        q.add(&[Buffer::readable(0, 1)]).unwrap();
        assert!(!q.should_notify(), "the device is still busy with entry 0");
        // The device drained and asks about entry 2; the flags no longer matter.
        dev.set_no_notify(true);
        dev.set_avail_event(2);
        q.add(&[Buffer::readable(0, 1)]).unwrap();
        q.add(&[Buffer::readable(0, 1)]).unwrap();
        assert!(q.should_notify(), "entries 2 and 3 passed avail_event 2");
        assert!(!q.should_notify(), "nothing new");
    }

    #[test]
    fn used_event_asks_for_the_next_completion_or_later() {
        let mut q = Virtqueue::new(8).unwrap();
        q.set_event_idx(true);
        let mut dev = FakeDevice::new(&q);
        for _ in 0..4 {
            q.add(&[Buffer::readable(0, 1)]).unwrap();
        }
        let (head, _) = dev.pop_avail().unwrap();
        dev.push_used(u32::from(head), 0);
        assert!(q.pop_used().is_some());
        assert!(q.pop_used().is_none());
        assert_eq!(dev.used_event(), 1, "found empty: report entry 1");
        q.delay_used_event(3);
        assert_eq!(dev.used_event(), 4);
        // Without event indexes the field is never written.
        let mut plain = Virtqueue::new(8).unwrap();
        let plain_dev = FakeDevice::new(&plain);
        plain.delay_used_event(3);
        assert!(plain.pop_used().is_none());
        assert_eq!(plain_dev.used_event(), 0);
    }

    #[test]
    fn need_event_wraps() {
        assert!(need_event(65_535, 1, 65_534));
        assert!(need_event(0, 1, 65_535));
        assert!(!need_event(3, 3, 1));
        assert!(need_event(3, 4, 1));
    }
}
