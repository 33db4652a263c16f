//! virtio-blk against crafted queues in guest memory, with a real disk file and no KVM.

use std::sync::atomic::Ordering;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::request::{S_IOERR, S_OK, S_UNSUPP, T_DISCARD, T_FLUSH, T_GET_ID, T_IN, T_OUT};
use super::*;
use crate::devices::irq::CountingIrq;
use crate::devices::rate_limiter::BucketConfig;
use crate::devices::virtio::queue::{DESC_F_NEXT, DESC_F_WRITE, testing::*};
use crate::kvm::memory::create_guest_memory;

const HDR: u64 = 0x10000;
const DATA: u64 = 0x20000;
const STATUS: u64 = 0x30000;

struct Rig {
    mem: GuestMemoryMmap,
    queue: Queue,
    dev: Block,
    interrupt: VirtioInterrupt,
    file: tempfile::NamedTempFile,
}

fn rig_with(engine: Engine, read_only: bool, limiter: RateLimiter) -> Rig {
    let mem = create_guest_memory(4 << 20).unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    file.as_file().set_len(1 << 20).unwrap();
    let queue = queue_at(&mem, 0x1000, 16);
    let mut dev = Block::new(
        file.path(),
        read_only,
        "vol-0123456789abcdef0",
        limiter,
        engine,
    )
    .unwrap();
    assert_eq!(dev.engine(), engine, "this host must offer io_uring");
    let interrupt = VirtioInterrupt::new(Box::new(CountingIrq::default()), None);
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
        interrupt,
        file,
    }
}

fn rig(engine: Engine) -> Rig {
    rig_with(engine, false, RateLimiter::default())
}

impl Rig {
    /// Submits header + optional data + status as descriptors 0, 1, 2 (or 0, 1).
    fn submit(
        &mut self,
        kind: u32,
        sector: u64,
        data: Option<(u32, bool)>,
    ) -> (u16, Vec<(u32, u32)>) {
        self.mem.write_obj(kind, GuestAddress(HDR)).unwrap();
        self.mem.write_obj(sector, GuestAddress(HDR + 8)).unwrap();
        self.mem.write_obj(0xffu8, GuestAddress(STATUS)).unwrap();
        let q = &self.queue;
        match data {
            Some((len, writable)) => {
                write_desc(&self.mem, q, 0, HDR, 16, DESC_F_NEXT, 1);
                let flags = DESC_F_NEXT | if writable { DESC_F_WRITE } else { 0 };
                write_desc(&self.mem, q, 1, DATA, len, flags, 2);
                write_desc(&self.mem, q, 2, STATUS, 1, DESC_F_WRITE, 0);
            }
            None => {
                write_desc(&self.mem, q, 0, HDR, 16, DESC_F_NEXT, 1);
                write_desc(&self.mem, q, 1, STATUS, 1, DESC_F_WRITE, 0);
            }
        }
        offer(&self.mem, q, 0);
        self.dev.handle_event(DeviceEvent::Queue(0));
        self.wait_in_flight();
        used(&self.mem, &self.queue)
    }

    /// Lets requests on the ring finish, as the device thread would on their eventfd.
    fn wait_in_flight(&mut self) {
        while self.dev.uring.as_ref().is_some_and(|r| r.in_flight() > 0) {
            std::thread::sleep(std::time::Duration::from_millis(1));
            self.dev.handle_event(DeviceEvent::Fd(2));
        }
    }

    fn status(&self) -> u8 {
        self.mem.read_obj(GuestAddress(STATUS)).unwrap()
    }

    fn file_bytes(&self) -> Vec<u8> {
        std::fs::read(self.file.path()).unwrap()
    }
}

fn write_lands_in_the_file_and_reads_back(engine: Engine) {
    let mut r = rig(engine);
    r.mem
        .write_slice(&[0xab; 1024], GuestAddress(DATA))
        .unwrap();
    let (idx, entries) = r.submit(T_OUT, 3, Some((1024, false)));
    assert_eq!((idx, r.status()), (1, S_OK));
    assert_eq!(entries[0], (0, 1));
    let file = r.file_bytes();
    assert!(file[3 * 512..3 * 512 + 1024].iter().all(|b| *b == 0xab));
    assert!(file[..3 * 512].iter().all(|b| *b == 0));

    r.mem.write_slice(&[0u8; 1024], GuestAddress(DATA)).unwrap();
    let (_, entries) = r.submit(T_IN, 3, Some((1024, true)));
    assert_eq!(r.status(), S_OK);
    assert_eq!(entries[1], (0, 1025), "data plus status byte written");
    let mut back = [0u8; 1024];
    r.mem.read_slice(&mut back, GuestAddress(DATA)).unwrap();
    assert!(back.iter().all(|b| *b == 0xab));
    let c = r.dev.counters().snapshot("x".into());
    assert_eq!((c.requests, c.bytes_in, c.bytes_out), (2, 1024, 1024));
    assert_eq!((c.ops_in, c.ops_out), (1, 1), "one read and one write");
    assert_ne!(r.interrupt.status() & USED_BUFFER, 0);
}

fn flush_and_get_id(engine: Engine) {
    let mut r = rig(engine);
    r.submit(T_FLUSH, 0, None);
    assert_eq!(r.status(), S_OK);
    let (_, entries) = r.submit(T_GET_ID, 0, Some((20, true)));
    assert_eq!(r.status(), S_OK);
    assert_eq!(entries[1].1, 21);
    let mut id = [0u8; 20];
    r.mem.read_slice(&mut id, GuestAddress(DATA)).unwrap();
    assert_eq!(&id, b"vol-0123456789abcdef");
}

fn discard_punches_zeros(engine: Engine) {
    let mut r = rig(engine);
    std::fs::write(r.file.path(), vec![0x55u8; 1 << 20]).unwrap();
    r.mem.write_obj(2u64, GuestAddress(DATA)).unwrap();
    r.mem.write_obj(4u32, GuestAddress(DATA + 8)).unwrap();
    r.mem.write_obj(0u32, GuestAddress(DATA + 12)).unwrap();
    r.submit(T_DISCARD, 0, Some((16, false)));
    assert_eq!(r.status(), S_OK);
    let file = r.file_bytes();
    assert_eq!(file.len(), 1 << 20, "the file keeps its size");
    assert!(file[1024..3072].iter().all(|b| *b == 0));
    assert!(file[..1024].iter().all(|b| *b == 0x55));
    assert!(file[3072..4096].iter().all(|b| *b == 0x55));
}

fn read_only_disk_refuses_writes_and_keeps_the_file(engine: Engine) {
    let mut r = rig_with(engine, true, RateLimiter::default());
    assert_ne!(r.dev.features() & F_RO, 0);
    r.mem.write_slice(&[0xab; 512], GuestAddress(DATA)).unwrap();
    r.submit(T_OUT, 0, Some((512, false)));
    assert_eq!(r.status(), S_IOERR);
    assert!(r.file_bytes().iter().all(|b| *b == 0));
}

fn out_of_range_wrong_direction_and_unknown_types(engine: Engine) {
    let mut r = rig(engine);
    r.submit(T_IN, 2047, Some((1024, true)));
    assert_eq!(r.status(), S_IOERR, "reaches past the 1 MiB disk");
    r.submit(T_IN, u64::MAX / 256, Some((512, true)));
    assert_eq!(r.status(), S_IOERR, "sector overflow");
    r.submit(T_IN, 0, Some((512, false)));
    assert_eq!(r.status(), S_IOERR, "read into a device-readable buffer");
    r.submit(T_OUT, 0, Some((512, true)));
    assert_eq!(r.status(), S_IOERR, "write from a device-writable buffer");
    r.submit(77, 0, None);
    assert_eq!(r.status(), S_UNSUPP);
    assert!(r.interrupt.status() & USED_BUFFER != 0);
    assert!(
        !r.interrupt.needs_reset(),
        "bad requests are answered, not fatal"
    );
}

fn chain_without_status_or_header_is_consumed_with_nothing_written(engine: Engine) {
    let mut r = rig(engine);
    let q = r.queue.clone();
    // A writable header and no status buffer.
    write_desc(&r.mem, &q, 0, HDR, 16, DESC_F_WRITE, 0);
    offer(&r.mem, &q, 0);
    r.dev.handle_event(DeviceEvent::Queue(0));
    assert_eq!(used(&r.mem, &q), (1, vec![(0, 0)]));
    // A short header with a status buffer: the status says IOERR.
    write_desc(&r.mem, &q, 0, HDR, 8, DESC_F_NEXT, 1);
    write_desc(&r.mem, &q, 1, STATUS, 1, DESC_F_WRITE, 0);
    offer(&r.mem, &q, 0);
    r.dev.handle_event(DeviceEvent::Queue(0));
    assert_eq!(r.status(), S_IOERR);
    assert_eq!(r.dev.counters().errors.load(Ordering::Relaxed), 2);
}

fn a_malformed_queue_puts_the_device_in_error_state(engine: Engine) {
    let mut r = rig(engine);
    let q = r.queue.clone();
    write_desc(&r.mem, &q, 0, 0x7fff_0000, 512, 0, 0); // outside the 4 MiB of guest memory
    offer(&r.mem, &q, 0);
    r.dev.handle_event(DeviceEvent::Queue(0));
    assert!(r.interrupt.needs_reset());
    // Further notifications do nothing until a reset.
    offer(&r.mem, &q, 0);
    r.dev.handle_event(DeviceEvent::Queue(0));
    assert_eq!(used(&r.mem, &q).0, 0);
}

fn rate_limit_holds_requests_until_the_timer(engine: Engine) {
    let limiter = RateLimiter::new(Some(BucketConfig { rate: 10, burst: 1 }), None);
    let mut r = rig_with(engine, false, limiter);
    r.submit(T_FLUSH, 0, None);
    assert_eq!(used(&r.mem, &r.queue).0, 1);
    let (idx, _) = r.submit(T_FLUSH, 0, None);
    assert_eq!(idx, 1, "the second request waits for a token");
    std::thread::sleep(std::time::Duration::from_millis(120));
    r.dev.handle_event(DeviceEvent::Fd(0));
    r.wait_in_flight();
    assert_eq!(used(&r.mem, &r.queue).0, 2);
    assert!(r.dev.counters().throttled_us.load(Ordering::Relaxed) >= 50_000);
}

/// Runs each test above with both engines.
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
    write_lands_in_the_file_and_reads_back,
    flush_and_get_id,
    discard_punches_zeros,
    read_only_disk_refuses_writes_and_keeps_the_file,
    out_of_range_wrong_direction_and_unknown_types,
    chain_without_status_or_header_is_consumed_with_nothing_written,
    a_malformed_queue_puts_the_device_in_error_state,
    rate_limit_holds_requests_until_the_timer
);
