//! virtio-blk with many requests in flight: batches on the ring, flush ordering, a reset or a
//! drain while requests are in flight, bad buffers, and the log of written blocks. No KVM.

use std::sync::atomic::{AtomicU32, Ordering};

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::dirty::BLOCK_BYTES;
use super::request::{S_OK, T_DISCARD, T_FLUSH, T_IN, T_OUT};
use super::*;
use crate::devices::irq::CountingIrq;
use crate::devices::virtio::queue::{DESC_F_NEXT, DESC_F_WRITE, testing::*};
use crate::kvm::memory::create_guest_memory;

const MEM: u64 = 16 << 20;
/// Where request `i`'s header, status and data go.
const HDRS: u64 = 0x10000;
const STATUSES: u64 = 0x20000;
const DATA: u64 = 0x100000;
/// Bytes of data per request.
const CHUNK: u32 = 256 << 10;

struct Rig {
    mem: GuestMemoryMmap,
    queue: Queue,
    dev: Block,
    irqs: Arc<AtomicU32>,
    interrupt: VirtioInterrupt,
    file: tempfile::NamedTempFile,
}

fn rig(engine: Engine) -> Rig {
    let mem = create_guest_memory(MEM).unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    file.as_file().set_len(8 << 20).unwrap();
    let queue = queue_at(&mem, 0x1000, 64);
    let mut dev = Block::new(file.path(), false, "vol", RateLimiter::default(), engine).unwrap();
    assert_eq!(dev.engine(), engine);
    let irqs = Arc::new(AtomicU32::new(0));
    let interrupt = VirtioInterrupt::new(Box::new(CountingIrq(irqs.clone())), None);
    dev.activate(Activation {
        memory: mem.clone(),
        queues: vec![queue.clone()],
        acked_features: dev.features(),
        interrupt: interrupt.clone(),
    })
    .unwrap();
    Rig {
        mem,
        queue,
        dev,
        irqs,
        interrupt,
        file,
    }
}

impl Rig {
    /// Lays out request `i` (descriptors 3i..3i+2) without offering it; `data` is
    /// `(address, length)`.
    fn lay_out(&self, i: u16, kind: u32, sector: u64, data: Option<(u64, u32)>) {
        let hdr = HDRS + 16 * u64::from(i);
        let status = STATUSES + u64::from(i);
        self.mem.write_obj(kind, GuestAddress(hdr)).unwrap();
        self.mem.write_obj(sector, GuestAddress(hdr + 8)).unwrap();
        self.mem.write_obj(0xffu8, GuestAddress(status)).unwrap();
        let (q, d) = (&self.queue, 3 * i);
        write_desc(&self.mem, q, d, hdr, 16, DESC_F_NEXT, d + 1);
        match data {
            Some((addr, len)) => {
                let dir = if kind == T_IN { DESC_F_WRITE } else { 0 };
                write_desc(&self.mem, q, d + 1, addr, len, DESC_F_NEXT | dir, d + 2);
                write_desc(&self.mem, q, d + 2, status, 1, DESC_F_WRITE, 0);
            }
            None => write_desc(&self.mem, q, d + 1, status, 1, DESC_F_WRITE, 0),
        }
    }

    /// Offers requests `0..n`, laid out before, in one notification.
    fn offer_all(&mut self, n: u16) {
        for i in 0..n {
            offer(&self.mem, &self.queue, 3 * i);
        }
        self.dev.handle_event(DeviceEvent::Queue(0));
    }

    fn status(&self, i: u16) -> u8 {
        self.mem
            .read_obj(GuestAddress(STATUSES + u64::from(i)))
            .unwrap()
    }

    fn in_flight(&self) -> usize {
        self.dev.uring.as_ref().map_or(0, Uring::in_flight)
    }
}

fn writes_of_chunks(r: &mut Rig, n: u16) {
    for i in 0..n {
        let addr = DATA + u64::from(i) * u64::from(CHUNK);
        r.mem
            .write_slice(&vec![i as u8 + 1; CHUNK as usize], GuestAddress(addr))
            .unwrap();
        r.lay_out(
            i,
            T_OUT,
            u64::from(i) * u64::from(CHUNK) / 512,
            Some((addr, CHUNK)),
        );
    }
}

fn many_writes_then_a_flush_complete_in_order(engine: Engine) {
    let mut r = rig(engine);
    writes_of_chunks(&mut r, 8);
    r.lay_out(8, T_FLUSH, 0, None);
    r.offer_all(9);
    r.dev.drain();
    assert_eq!(r.in_flight(), 0);
    let (idx, entries) = used(&r.mem, &r.queue);
    assert_eq!(idx, 9);
    assert_eq!(
        entries.last().unwrap().0,
        24,
        "the flush completes after every write before it: {entries:?}"
    );
    assert!((0..9).all(|i| r.status(i) == S_OK));
    let flags: u16 = r.mem.read_obj(r.queue.used_ring).unwrap();
    assert_eq!(
        flags, 0,
        "the driver is asked to notify again once the queue is empty"
    );
    let file = std::fs::read(r.file.path()).unwrap();
    for i in 0..8usize {
        let chunk = &file[i * CHUNK as usize..(i + 1) * CHUNK as usize];
        assert!(chunk.iter().all(|&b| b == i as u8 + 1), "chunk {i}");
    }
    let c = r.dev.counters().snapshot(String::new());
    assert_eq!((c.ops_out, c.bytes_out), (8, 8 * u64::from(CHUNK)));
    assert!(r.irqs.load(Ordering::SeqCst) >= 1);
}

fn reads_land_in_guest_memory(engine: Engine) {
    let mut r = rig(engine);
    std::fs::write(r.file.path(), vec![0x5a; 8 << 20]).unwrap();
    for i in 0..16u16 {
        let addr = DATA + u64::from(i) * 4096;
        r.lay_out(i, T_IN, u64::from(i) * 97, Some((addr, 4096)));
    }
    r.offer_all(16);
    r.dev.drain();
    let (idx, entries) = used(&r.mem, &r.queue);
    assert_eq!(idx, 16);
    assert!(entries.iter().all(|&(_, len)| len == 4097));
    let mut back = vec![0u8; 16 * 4096];
    r.mem.read_slice(&mut back, GuestAddress(DATA)).unwrap();
    assert!(back.iter().all(|&b| b == 0x5a));
}

fn a_reset_waits_for_requests_in_flight(engine: Engine) {
    let mut r = rig(engine);
    writes_of_chunks(&mut r, 16);
    r.offer_all(16);
    r.dev.reset();
    assert_eq!(r.in_flight(), 0, "the kernel is done with the buffers");
    let before = used(&r.mem, &r.queue).0;
    // Nothing reaches the used ring of the reset queue afterwards.
    r.dev.handle_event(DeviceEvent::Fd(2));
    r.dev.drain();
    assert_eq!(used(&r.mem, &r.queue).0, before);
}

fn a_buffer_outside_guest_memory_fails_the_queue_not_the_vmm(engine: Engine) {
    let mut r = rig(engine);
    r.lay_out(0, T_OUT, 0, Some((MEM - 4096, 8192)));
    r.offer_all(1);
    r.dev.drain();
    assert!(r.interrupt.needs_reset());
    assert!(
        std::fs::read(r.file.path())
            .unwrap()
            .iter()
            .all(|&b| b == 0)
    );
}

fn the_log_records_writes_and_discards(engine: Engine) {
    let mut r = rig(engine);
    let log = r.dev.log();
    log.start();
    r.mem.write_slice(&[1; 4096], GuestAddress(DATA)).unwrap();
    r.lay_out(0, T_OUT, 3 * BLOCK_BYTES / 512 + 1, Some((DATA, 4096)));
    // A discard of 8 sectors at block 7.
    let seg = DATA + 0x10000;
    r.mem
        .write_obj(7 * BLOCK_BYTES / 512, GuestAddress(seg))
        .unwrap();
    r.mem.write_obj(8u32, GuestAddress(seg + 8)).unwrap();
    r.mem.write_obj(0u32, GuestAddress(seg + 12)).unwrap();
    r.lay_out(1, T_DISCARD, 0, Some((seg, 16)));
    r.lay_out(
        2,
        T_IN,
        20 * BLOCK_BYTES / 512,
        Some((DATA + 0x20000, 4096)),
    );
    r.offer_all(3);
    r.dev.drain();
    assert_eq!(
        log.take(true),
        Some(vec![
            (3 * BLOCK_BYTES, BLOCK_BYTES),
            (7 * BLOCK_BYTES, BLOCK_BYTES)
        ]),
        "reads are not recorded"
    );
}

fn drain_serves_requests_not_yet_noticed(engine: Engine) {
    let mut r = rig(engine);
    writes_of_chunks(&mut r, 4);
    // Offered, but the notification has not reached the device thread yet.
    for i in 0..4 {
        offer(&r.mem, &r.queue, 3 * i);
    }
    r.dev.drain();
    assert_eq!(used(&r.mem, &r.queue).0, 4);
    assert_eq!(r.in_flight(), 0);
}

macro_rules! with_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sync_engine {
            $(#[test] fn $name() { super::$name(super::Engine::Sync) })*
        }
        mod io_uring_engine {
            $(#[test] fn $name() { super::$name(super::Engine::IoUring) })*
        }
    };
}

with_both_engines!(
    many_writes_then_a_flush_complete_in_order,
    reads_land_in_guest_memory,
    a_reset_waits_for_requests_in_flight,
    a_buffer_outside_guest_memory_fails_the_queue_not_the_vmm,
    the_log_records_writes_and_discards,
    drain_serves_requests_not_yet_noticed,
);

#[test]
fn the_engine_flag_parses() {
    assert_eq!("sync".parse::<Engine>(), Ok(Engine::Sync));
    assert_eq!("io_uring".parse::<Engine>(), Ok(Engine::IoUring));
    assert!("aio".parse::<Engine>().is_err());
}
