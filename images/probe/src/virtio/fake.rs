//! Host-test stand-ins for virtio-mmio devices: a register window in plain memory and a
//! device thread that serves the rings like the vmm's would (out of order, asynchronously).
//!
//! Plain memory cannot model per-queue registers (QueueSel), so only single-queue devices
//! (block) are faked; DeviceFeatures reads the same word for both halves.

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;
use std::vec::Vec;

use super::blk::{S_IOERR, S_OK, S_UNSUPP, T_FLUSH, T_IN, T_OUT};
use super::mmio::{MAGIC, MmioDevice, reg};
use super::queue::Virtqueue;
use super::{DEVICE_BLOCK, status};

const WORDS: usize = 0x200 / 4;

/// What the fake block device holds and does.
#[derive(Debug, Default)]
pub struct BlkState {
    /// The disk's bytes.
    pub disk: Vec<u8>,
    /// Requests touching this byte offset fail with IOERR.
    pub fail_at: Option<u64>,
    /// Requests served.
    pub requests: u64,
    /// Flushes served.
    pub flushes: u64,
}

/// A fake virtio block device on a thread.
pub struct FakeBlk {
    regs: &'static [AtomicU32; WORDS],
    /// The device's state, shared with its thread.
    pub state: Arc<Mutex<BlkState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeBlk {
    /// A device with a disk of `bytes` (zeroed), read-only if `read_only`.
    pub fn new(bytes: usize, read_only: bool) -> Self {
        let regs: &'static [AtomicU32; WORDS] =
            Box::leak(Box::new([const { AtomicU32::new(0) }; WORDS]));
        let set = |offset: usize, value: u32| regs[offset / 4].store(value, Ordering::SeqCst);
        set(reg::MAGIC, MAGIC);
        set(reg::VERSION, 2);
        set(reg::DEVICE_ID, DEVICE_BLOCK);
        // Read for both halves: bit 0 of the high half is VERSION_1; FLUSH (9), RO (5).
        set(
            reg::DEVICE_FEATURES,
            1 | (1 << 9) | if read_only { 1 << 5 } else { 0 },
        );
        set(reg::QUEUE_NUM_MAX, 256);
        let sectors = (bytes / 512) as u64;
        set(reg::CONFIG, sectors as u32);
        set(reg::CONFIG + 4, (sectors >> 32) as u32);
        let state = Arc::new(Mutex::new(BlkState {
            disk: vec![0; bytes],
            ..BlkState::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            thread::spawn(move || serve(regs, &state, &stop, read_only))
        };
        Self {
            regs,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The register window, for the driver.
    pub fn mmio(&self) -> MmioDevice {
        // SAFETY: the window is leaked memory that lives for good; the driver's accesses are
        // plain 32-bit reads and writes.
        unsafe { MmioDevice::new(self.regs.as_ptr() as u64) }
    }
}

impl Drop for FakeBlk {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read<T: Copy>(addr: u64) -> T {
    // SAFETY: addresses come from the driver's rings and buffers, live while in flight.
    unsafe { (addr as *const T).read_volatile() }
}

fn serve(regs: &[AtomicU32; WORDS], state: &Mutex<BlkState>, stop: &AtomicBool, ro: bool) {
    let get = |offset: usize| regs[offset / 4].load(Ordering::SeqCst);
    let addr = |low: usize, high: usize| u64::from(get(low)) | (u64::from(get(high)) << 32);
    let mut last_avail = 0u16;
    while !stop.load(Ordering::SeqCst) {
        if get(reg::STATUS) & status::DRIVER_OK == 0 || get(reg::QUEUE_READY) != 1 {
            last_avail = 0;
            thread::sleep(Duration::from_micros(50));
            continue;
        }
        let size = get(reg::QUEUE_NUM) as u16;
        let desc = addr(reg::QUEUE_DESC_LOW, reg::QUEUE_DESC_HIGH);
        let avail = addr(reg::QUEUE_DRIVER_LOW, reg::QUEUE_DRIVER_HIGH);
        let used = addr(reg::QUEUE_DEVICE_LOW, reg::QUEUE_DEVICE_HIGH);
        // SAFETY: the avail idx is a live, aligned u16 in the driver's ring.
        let avail_idx =
            unsafe { AtomicU16::from_ptr((avail + 2) as *mut u16) }.load(Ordering::Acquire);
        let mut heads = Vec::new();
        while last_avail != avail_idx && heads.len() < 8 {
            heads.push(read::<u16>(avail + 4 + 2 * u64::from(last_avail % size)));
            last_avail = last_avail.wrapping_add(1);
        }
        if heads.is_empty() {
            thread::sleep(Duration::from_micros(20));
            continue;
        }
        // Complete in reverse order, to exercise out-of-order completion.
        for &head in heads.iter().rev() {
            let mut chain = Vec::new();
            let mut i = head;
            loop {
                let d = desc + 16 * u64::from(i);
                let (a, l, f, n) = (
                    read::<u64>(d),
                    read::<u32>(d + 8),
                    read::<u16>(d + 12),
                    read::<u16>(d + 14),
                );
                chain.push((a, l));
                if f & 1 == 0 {
                    break;
                }
                i = n;
            }
            let (header, _) = chain[0];
            let (status_addr, _) = *chain.last().unwrap();
            let data = &chain[1..chain.len() - 1];
            let kind: u32 = read(header);
            let sector: u64 = read(header + 8);
            let mut st = state.lock().unwrap();
            st.requests += 1;
            let start = sector * 512;
            let total: u64 = data.iter().map(|&(_, l)| u64::from(l)).sum();
            let failing = st
                .fail_at
                .is_some_and(|f| f >= start && f < start + total.max(1));
            let in_range = start + total <= st.disk.len() as u64;
            let mut written = 0u32;
            let status = match kind {
                _ if failing => S_IOERR,
                T_IN | T_OUT if !in_range => S_IOERR,
                T_IN => {
                    let mut at = start as usize;
                    for &(a, l) in data {
                        let l = l as usize;
                        // SAFETY: a device-writable buffer of `l` bytes of the driver's.
                        unsafe {
                            std::ptr::copy_nonoverlapping(st.disk[at..].as_ptr(), a as *mut u8, l)
                        };
                        at += l;
                        written += l as u32;
                    }
                    S_OK
                }
                T_OUT if ro => S_IOERR,
                T_OUT => {
                    let mut at = start as usize;
                    for &(a, l) in data {
                        let l = l as usize;
                        // SAFETY: a device-readable buffer of `l` bytes of the driver's.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                a as *const u8,
                                st.disk[at..].as_mut_ptr(),
                                l,
                            )
                        };
                        at += l;
                    }
                    S_OK
                }
                T_FLUSH => {
                    st.flushes += 1;
                    S_OK
                }
                _ => S_UNSUPP,
            };
            drop(st);
            // SAFETY: the status byte is device-writable; the used ring is the driver's.
            unsafe {
                (status_addr as *mut u8).write_volatile(status);
                let idx = AtomicU16::from_ptr((used + 2) as *mut u16);
                let u = idx.load(Ordering::Relaxed);
                let elem = used + 4 + 8 * u64::from(u % size);
                (elem as *mut u32).write_volatile(u32::from(head));
                ((elem + 4) as *mut u32).write_volatile(written + 1);
                idx.store(u.wrapping_add(1), Ordering::Release);
            }
        }
    }
}

/// Where a queue's rings are, for a fake device.
#[derive(Clone, Copy, Debug)]
pub struct RingAddrs {
    desc: u64,
    avail: u64,
    used: u64,
    size: u16,
}

impl RingAddrs {
    /// The rings of `q`.
    pub fn of(q: &Virtqueue) -> Self {
        Self {
            desc: q.desc_addr(),
            avail: q.avail_addr(),
            used: q.used_addr(),
            size: q.size(),
        }
    }
}

/// A chain popped from an available ring: head and (addr, len) of each buffer.
type Chain = (u16, Vec<(u64, u32)>);

/// The device side of one queue.
pub struct DeviceRing {
    at: RingAddrs,
    last_avail: u16,
}

impl DeviceRing {
    /// The device side of the rings at `at`.
    pub fn new(at: RingAddrs) -> Self {
        Self { at, last_avail: 0 }
    }

    /// The next chain the driver made available: head and (addr, len) of each buffer.
    pub fn pop(&mut self) -> Option<Chain> {
        // SAFETY: the avail idx is a live, aligned u16 in the driver's ring.
        let idx =
            unsafe { AtomicU16::from_ptr((self.at.avail + 2) as *mut u16) }.load(Ordering::Acquire);
        if idx == self.last_avail {
            return None;
        }
        let head: u16 = read(self.at.avail + 4 + 2 * u64::from(self.last_avail % self.at.size));
        self.last_avail = self.last_avail.wrapping_add(1);
        let mut chain = Vec::new();
        let mut i = head;
        loop {
            let d = self.at.desc + 16 * u64::from(i);
            chain.push((read::<u64>(d), read::<u32>(d + 8)));
            if read::<u16>(d + 12) & 1 == 0 {
                break;
            }
            i = read(d + 14);
        }
        Some((head, chain))
    }

    /// Returns chain `head` with `len` bytes written.
    pub fn push(&mut self, head: u16, len: u32) {
        // SAFETY: the used ring is the driver's, live and aligned.
        unsafe {
            let idx = AtomicU16::from_ptr((self.at.used + 2) as *mut u16);
            let u = idx.load(Ordering::Relaxed);
            let elem = self.at.used + 4 + 8 * u64::from(u % self.at.size);
            (elem as *mut u32).write_volatile(u32::from(head));
            ((elem + 4) as *mut u32).write_volatile(len);
            idx.store(u.wrapping_add(1), Ordering::Release);
        }
    }
}

/// A zeroed register window that absorbs notifications (Status reads 0).
pub fn dummy_window() -> MmioDevice {
    let regs: &'static [AtomicU32; WORDS] =
        Box::leak(Box::new([const { AtomicU32::new(0) }; WORDS]));
    // SAFETY: leaked memory that lives for good.
    unsafe { MmioDevice::new(regs.as_ptr() as u64) }
}

/// A cable between two fake net devices, on a thread: frames sent on one side's transmit
/// queue arrive in the other side's receive buffers (virtio_net_hdr rewritten).
pub struct Wire {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Wire {
    /// Connects `a` and `b` (each the (rx, tx) rings of a device).
    pub fn connect(a: [RingAddrs; 2], b: [RingAddrs; 2]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut a_rx = DeviceRing::new(a[0]);
            let mut a_tx = DeviceRing::new(a[1]);
            let mut b_rx = DeviceRing::new(b[0]);
            let mut b_tx = DeviceRing::new(b[1]);
            let mut pending: [Option<Chain>; 2] = [None, None];
            while !flag.load(Ordering::SeqCst) {
                let mut moved = false;
                for (side, (tx, rx)) in [(&mut a_tx, &mut b_rx), (&mut b_tx, &mut a_rx)]
                    .into_iter()
                    .enumerate()
                {
                    if pending[side].is_none() {
                        pending[side] = tx.pop();
                    }
                    let Some((head, chain)) = pending[side].take() else {
                        continue;
                    };
                    let Some((rx_head, rx_chain)) = rx.pop() else {
                        pending[side] = Some((head, chain));
                        continue;
                    };
                    let mut frame = Vec::new();
                    for &(addr, len) in &chain {
                        // SAFETY: a device-readable buffer of the driver's.
                        frame.extend_from_slice(unsafe {
                            std::slice::from_raw_parts(addr as *const u8, len as usize)
                        });
                    }
                    let (dst, cap) = rx_chain[0];
                    let n = frame.len().min(cap as usize);
                    // SAFETY: a device-writable buffer of `cap` bytes of the driver's.
                    unsafe {
                        std::ptr::copy_nonoverlapping(frame.as_ptr(), dst as *mut u8, n);
                        std::ptr::write_bytes(dst as *mut u8, 0, 12.min(n));
                    }
                    rx.push(rx_head, n as u32);
                    tx.push(head, 0);
                    moved = true;
                }
                if !moved {
                    thread::sleep(Duration::from_micros(20));
                }
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
