//! The global allocator: an address-ordered, first-fit free list over a fixed region, with
//! coalescing on free, behind a spinlock.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr::{self, NonNull};

use crate::spin::SpinLock;

/// Block granularity and smallest alignment; a free block must hold a [`Node`].
const UNIT: usize = 16;

/// The header written at the start of every free block.
#[repr(C)]
struct Node {
    size: usize,
    next: Option<NonNull<Node>>,
}

const _: () = assert!(size_of::<Node>() <= UNIT && align_of::<Node>() <= UNIT);

/// Free blocks in address order, each a multiple of [`UNIT`] bytes at a [`UNIT`]-aligned address.
#[derive(Debug)]
pub struct FreeList {
    head: Option<NonNull<Node>>,
}

// SAFETY: a `FreeList` owns the free memory it links; moving the list to another vCPU moves
// that ownership with it.
unsafe impl Send for FreeList {}

impl Default for FreeList {
    fn default() -> Self {
        Self::new()
    }
}

impl FreeList {
    /// An empty list.
    pub const fn new() -> Self {
        Self { head: None }
    }

    /// Adds the `size` bytes at `start` (trimmed to [`UNIT`] alignment) to the free memory.
    ///
    /// # Safety
    /// The bytes must be valid for reads and writes, used by nothing else, and outlive the list.
    pub unsafe fn add_region(&mut self, start: *mut u8, size: usize) {
        let Some(aligned) = start.addr().checked_next_multiple_of(UNIT) else {
            return;
        };
        let skip = aligned - start.addr();
        let len = size.saturating_sub(skip) & !(UNIT - 1);
        if len > 0 {
            // SAFETY: `skip + len <= size`, so the block lies in the region the caller gave us.
            unsafe { self.insert(start.add(skip), len) };
        }
    }

    /// Allocates a block for `layout`; null when no free block fits.
    pub fn allocate(&mut self, layout: Layout) -> *mut u8 {
        let Some(size) = block_size(layout) else {
            return ptr::null_mut();
        };
        let align = layout.align().max(UNIT);
        let mut prev: Option<NonNull<Node>> = None;
        let mut cur = self.head;
        while let Some(node) = cur {
            // SAFETY: every node in the list is a free block this list owns.
            let Node { size: len, next } = unsafe { node.as_ptr().read() };
            let start = node.as_ptr().cast::<u8>();
            if let Some(aligned) = start.addr().checked_next_multiple_of(align)
                && let Some(used_end) = (aligned - start.addr()).checked_add(size)
                && used_end <= len
            {
                let front = aligned - start.addr();
                let back = len - used_end;
                let mut link = next;
                // SAFETY: `front`, `front + size` and the pieces below lie inside this free
                // block, at UNIT-aligned offsets, so each piece can hold a `Node`.
                unsafe {
                    if back > 0 {
                        let piece = start.add(used_end).cast::<Node>();
                        piece.write(Node {
                            size: back,
                            next: link,
                        });
                        link = NonNull::new(piece);
                    }
                    if front > 0 {
                        node.as_ptr().write(Node {
                            size: front,
                            next: link,
                        });
                        link = Some(node);
                    }
                    self.set_next(prev, link);
                    return start.add(front);
                }
            }
            prev = cur;
            cur = next;
        }
        ptr::null_mut()
    }

    /// Returns a block from [`FreeList::allocate`] to the list.
    ///
    /// # Safety
    /// `ptr` must come from `allocate` on this list with the same `layout`, and not be freed yet.
    pub unsafe fn deallocate(&mut self, ptr: *mut u8, layout: Layout) {
        if let Some(size) = block_size(layout) {
            // SAFETY: per the caller, these bytes were a free block of this list before.
            unsafe { self.insert(ptr, size) };
        }
    }

    /// Total free bytes.
    pub fn free_bytes(&self) -> usize {
        self.nodes().map(|(_, size)| size).sum()
    }

    /// Number of free blocks.
    pub fn blocks(&self) -> usize {
        self.nodes().count()
    }

    /// (address, size) of each free block, in address order.
    fn nodes(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let mut cur = self.head;
        core::iter::from_fn(move || {
            let node = cur?;
            // SAFETY: every node in the list is a free block this list owns.
            let Node { size, next } = unsafe { node.as_ptr().read() };
            cur = next;
            Some((node.as_ptr().addr(), size))
        })
    }

    /// Links `prev` (or the head, for `None`) to `next`.
    ///
    /// # Safety
    /// `prev` must be a node of this list.
    unsafe fn set_next(&mut self, prev: Option<NonNull<Node>>, next: Option<NonNull<Node>>) {
        match prev {
            // SAFETY: per the caller, `p` is a node of this list.
            Some(p) => unsafe { (*p.as_ptr()).next = next },
            None => self.head = next,
        }
    }

    /// Inserts the free block at `ptr` of `size` bytes in address order, merging it with
    /// adjacent free blocks.
    ///
    /// # Safety
    /// The block must be UNIT-aligned, a multiple of UNIT bytes, owned by the caller and
    /// overlap no free block.
    unsafe fn insert(&mut self, ptr: *mut u8, size: usize) {
        let addr = ptr.addr();
        let mut prev: Option<NonNull<Node>> = None;
        let mut cur = self.head;
        while let Some(node) = cur
            && node.as_ptr().addr() < addr
        {
            prev = cur;
            // SAFETY: every node in the list is a free block this list owns.
            cur = unsafe { (*node.as_ptr()).next };
        }
        let new = ptr.cast::<Node>();
        // SAFETY: `new` is the caller's block, aligned and large enough for a `Node`; `prev`
        // and `cur` are nodes of this list.
        unsafe {
            new.write(Node { size, next: cur });
            if let Some(next) = cur
                && addr + size == next.as_ptr().addr()
            {
                let Node {
                    size: next_size,
                    next: after,
                } = next.as_ptr().read();
                new.write(Node {
                    size: size + next_size,
                    next: after,
                });
            }
            if let Some(p) = prev
                && p.as_ptr().addr() + (*p.as_ptr()).size == addr
            {
                (*p.as_ptr()).size += (*new).size;
                (*p.as_ptr()).next = (*new).next;
            } else {
                self.set_next(prev, NonNull::new(new));
            }
        }
    }
}

/// The bytes a block for `layout` takes: its size rounded up to [`UNIT`] (at least one UNIT).
fn block_size(layout: Layout) -> Option<usize> {
    layout.size().max(1).checked_next_multiple_of(UNIT)
}

/// A global allocator over an `N`-byte region inside itself (in `.bss` when used as a static).
///
/// It must not move after its first allocation: use it as a `static`.
#[repr(C, align(16))]
pub struct Heap<const N: usize> {
    memory: UnsafeCell<[u8; N]>,
    state: SpinLock<HeapState>,
}

#[derive(Debug, Default)]
struct HeapState {
    list: FreeList,
    ready: bool,
}

// SAFETY: `memory` is only reached through the free list, and the list only under `state`'s lock.
unsafe impl<const N: usize> Sync for Heap<N> {}

impl<const N: usize> Default for Heap<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Heap<N> {
    /// An allocator whose region is not yet handed to the free list (that happens at first use).
    pub const fn new() -> Self {
        Self {
            memory: UnsafeCell::new([0; N]),
            state: SpinLock::new(HeapState {
                list: FreeList::new(),
                ready: false,
            }),
        }
    }

    /// Hands `size` more bytes at `start` to the allocator (for example free RAM from the
    /// e820 map, when nothing else will use it).
    ///
    /// # Safety
    /// The bytes must be valid for reads and writes, used by nothing else, and never freed.
    pub unsafe fn add_region(&self, start: *mut u8, size: usize) {
        let mut state = self.state.lock();
        if !state.ready {
            // SAFETY: `memory` belongs to this heap alone, which lives (as a static) for good.
            unsafe { state.list.add_region(self.memory.get().cast(), N) };
            state.ready = true;
        }
        // SAFETY: per this function's contract.
        unsafe { state.list.add_region(start, size) };
    }

    /// Free bytes left (the whole region before first use).
    pub fn free_bytes(&self) -> usize {
        let state = self.state.lock();
        if state.ready {
            state.list.free_bytes()
        } else {
            N
        }
    }
}

// SAFETY: blocks come from the free list under the lock, so no two live allocations overlap,
// and each honours its layout's size and alignment (`FreeList::allocate`).
unsafe impl<const N: usize> GlobalAlloc for Heap<N> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut state = self.state.lock();
        if !state.ready {
            // SAFETY: `memory` belongs to this heap alone, which lives (as a static) for good.
            unsafe { state.list.add_region(self.memory.get().cast(), N) };
            state.ready = true;
        }
        state.list.allocate(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the `GlobalAlloc` contract: `ptr` came from `alloc` with this `layout`.
        unsafe { self.state.lock().list.deallocate(ptr, layout) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(align(4096))]
    struct Arena([u8; 4096]);

    fn list_over(arena: &mut Arena) -> FreeList {
        let mut list = FreeList::new();
        // SAFETY: the arena outlives the list in each test and is used by nothing else.
        unsafe { list.add_region(arena.0.as_mut_ptr(), arena.0.len()) };
        list
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn allocates_aligned_disjoint_blocks_and_coalesces() {
        let mut arena = Arena([0; 4096]);
        let mut list = list_over(&mut arena);
        assert_eq!((list.free_bytes(), list.blocks()), (4096, 1));
        let requests = [(1, 1), (24, 8), (100, 64), (16, 16), (300, 256), (8, 4)];
        let mut blocks = Vec::new();
        for &(size, align) in &requests {
            let l = layout(size, align);
            let p = list.allocate(l);
            assert!(!p.is_null());
            assert_eq!(p.addr() % align, 0);
            // SAFETY: `p` is a fresh block of at least `size` bytes.
            unsafe { p.write_bytes(0xa5, size) };
            blocks.push((p.addr(), size, l, p));
        }
        let mut spans: Vec<_> = blocks.iter().map(|&(a, s, _, _)| (a, a + s)).collect();
        spans.sort();
        assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0));
        // Free in a scattered order: everything merges back into one block.
        for i in [3, 0, 5, 1, 4, 2] {
            let (_, _, l, p) = blocks[i];
            // SAFETY: each block is freed once, with its layout.
            unsafe { list.deallocate(p, l) };
        }
        assert_eq!((list.free_bytes(), list.blocks()), (4096, 1));
    }

    #[test]
    fn exhaustion_returns_null_and_space_is_reused() {
        let mut arena = Arena([0; 4096]);
        let mut list = list_over(&mut arena);
        let l = layout(1024, 16);
        let ps: Vec<_> = (0..4).map(|_| list.allocate(l)).collect();
        assert!(ps.iter().all(|p| !p.is_null()));
        assert!(list.allocate(layout(1, 1)).is_null());
        // SAFETY: freed once, with its layout.
        unsafe { list.deallocate(ps[2], l) };
        assert_eq!(list.allocate(l), ps[2]);
        assert!(list.allocate(layout(4097, 16)).is_null());
        assert!(list.allocate(layout(16, 8192)).is_null());
    }

    #[test]
    fn unaligned_region_is_trimmed() {
        let mut arena = Arena([0; 4096]);
        let mut list = FreeList::new();
        // SAFETY: the arena outlives the list and is used by nothing else.
        unsafe { list.add_region(arena.0.as_mut_ptr().add(3), 100) };
        // 13 bytes up to the next 16-byte boundary, then 87 rounded down to whole units.
        assert_eq!(list.free_bytes(), 80);
        assert_eq!(list.nodes().next().unwrap().0 % UNIT, 0);
    }

    #[test]
    fn heap_as_global_allocator() {
        static HEAP: Heap<8192> = Heap::new();
        assert_eq!(HEAP.free_bytes(), 8192);
        let l = layout(1000, 32);
        // SAFETY: non-zero size; freed below with the same layout.
        let p = unsafe { HEAP.alloc(l) };
        assert!(!p.is_null() && p.addr() % 32 == 0);
        assert_eq!(HEAP.free_bytes(), 8192 - 1008);
        // SAFETY: `p` came from `alloc` with `l`.
        unsafe { HEAP.dealloc(p, l) };
        assert_eq!(HEAP.free_bytes(), 8192);
    }

    #[test]
    fn heap_grows_with_added_regions() {
        static HEAP: Heap<4096> = Heap::new();
        let extra: &'static mut [u8] = Box::leak(vec![0u8; 64 * 1024].into_boxed_slice());
        // SAFETY: leaked, so never used by anything else or freed.
        unsafe { HEAP.add_region(extra.as_mut_ptr(), extra.len()) };
        assert!(HEAP.free_bytes() >= 4096 + 64 * 1024 - 16);
        let l = layout(32 * 1024, 4096);
        // SAFETY: non-zero size; freed below with the same layout.
        let p = unsafe { HEAP.alloc(l) };
        assert!(!p.is_null() && p.addr() % 4096 == 0);
        // SAFETY: `p` came from `alloc` with `l`.
        unsafe { HEAP.dealloc(p, l) };
    }
}
