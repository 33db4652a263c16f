//! A hostile guest must not hurt the host: random descriptor tables, rings and indexes are fed
//! to the devices, which must never panic, never report a used entry for a chain they did not
//! take, and never change the disk's size.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend};

use super::block::Block;
use super::block::Engine;
use super::interrupt::VirtioInterrupt;
use super::net::copy_to_chain_for_tests;
use super::net::io::IoVecs;
use super::queue::Queue;
use super::{Activation, DeviceEvent, VirtioDevice};
use crate::devices::irq::CountingIrq;
use crate::devices::rate_limiter::RateLimiter;
use crate::kvm::memory::create_guest_memory;

const MEM: u64 = 1 << 20;
const RING_BASE: u64 = 0x1000;

/// A descriptor as the guest may write it.
#[derive(Debug, Clone)]
struct RawDesc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

/// Mostly plausible descriptors (so requests do get served), with hostile values mixed in.
fn raw_desc(index: u16) -> impl Strategy<Value = RawDesc> {
    let addr = prop_oneof![
        6 => (0u64..8).prop_map(|i| 0x8000 + i * 0x1000),
        1 => 0x8000u64..MEM,
        1 => Just(MEM - 8),
        1 => Just(MEM),
        1 => any::<u64>(),
        1 => Just(RING_BASE),
    ];
    let len = prop_oneof![
        6 => prop::sample::select(vec![1u32, 16, 512, 1024, 4096]),
        1 => Just(0u32),
        1 => Just(u32::MAX),
        1 => 1u32..0x20000,
    ];
    let flags = prop_oneof![
        6 => prop::sample::select(vec![1u16, 3, 2, 0]),
        1 => 0u16..8,
    ];
    let next = prop_oneof![4 => Just(index.wrapping_add(1)), 1 => 0u16..40];
    (addr, len, flags, next).prop_map(|(addr, len, flags, next)| RawDesc {
        addr,
        len,
        flags,
        next,
    })
}

/// A whole queue as a hostile driver might leave it.
#[derive(Debug, Clone)]
struct RawQueue {
    size: u16,
    descs: Vec<RawDesc>,
    avail: Vec<u16>,
    avail_idx: u16,
    header_words: Vec<u64>,
}

fn raw_queue() -> impl Strategy<Value = RawQueue> {
    (0u32..6).prop_flat_map(|k| {
        let size = 1u16 << k;
        (
            Just(size),
            (0..size).map(raw_desc).collect::<Vec<_>>(),
            prop::collection::vec(prop_oneof![3 => 0u16..size, 1 => 0u16..40], size as usize),
            prop_oneof![4 => 0u16..(size + 1), 1 => any::<u16>()],
            prop::collection::vec(any::<u64>(), 4),
        )
            .prop_map(|(size, descs, avail, avail_idx, header_words)| RawQueue {
                size,
                descs,
                avail,
                avail_idx,
                header_words,
            })
    })
}

fn lay_out(mem: &vm_memory::GuestMemoryMmap, raw: &RawQueue) -> Queue {
    let mut q = Queue::new(raw.size);
    q.size = raw.size;
    q.ready = true;
    q.desc_table = GuestAddress(RING_BASE);
    q.avail_ring = GuestAddress(RING_BASE + 16 * u64::from(raw.size));
    q.used_ring = GuestAddress((q.avail_ring.0 + 6 + 2 * u64::from(raw.size)).next_multiple_of(4));
    for (i, d) in raw.descs.iter().enumerate() {
        let at = RING_BASE + 16 * i as u64;
        mem.write_obj(d.addr, GuestAddress(at)).unwrap();
        mem.write_obj(d.len, GuestAddress(at + 8)).unwrap();
        mem.write_obj(d.flags, GuestAddress(at + 12)).unwrap();
        mem.write_obj(d.next, GuestAddress(at + 14)).unwrap();
    }
    mem.write_obj(raw.avail_idx, q.avail_ring.unchecked_add_for_tests(2))
        .unwrap();
    for (i, head) in raw.avail.iter().enumerate() {
        mem.write_obj(
            *head,
            q.avail_ring.unchecked_add_for_tests(4 + 2 * i as u64),
        )
        .unwrap();
    }
    // Plausible request headers where descriptors may point.
    for (i, w) in raw.header_words.iter().enumerate() {
        mem.write_obj(*w % 32, GuestAddress(0x8000 + 8 * i as u64))
            .unwrap();
    }
    q
}

trait AddForTests {
    fn unchecked_add_for_tests(self, n: u64) -> GuestAddress;
}

impl AddForTests for GuestAddress {
    fn unchecked_add_for_tests(self, n: u64) -> GuestAddress {
        GuestAddress(self.0 + n)
    }
}

/// The generator must reach the devices' request paths, not only their error paths.
#[test]
fn the_generator_produces_servable_requests() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut served_chains = 0;
    for _ in 0..200 {
        let raw = raw_queue().new_tree(&mut runner).unwrap().current();
        let mem = create_guest_memory(MEM).unwrap();
        let mut q = lay_out(&mem, &raw);
        while let Ok(Some(_)) = q.pop(&mem) {
            served_chains += 1;
        }
    }
    assert!(
        served_chains >= 20,
        "only {served_chains} valid chains in 200 random queues"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn block_survives_random_queues(raw in raw_queue(), uring in any::<bool>()) {
        let mem = create_guest_memory(MEM).unwrap();
        let q = lay_out(&mem, &raw);
        let file = tempfile::NamedTempFile::new().unwrap();
        file.as_file().set_len(64 * 1024).unwrap();
        let engine = if uring { Engine::IoUring } else { Engine::Sync };
        let mut dev = Block::new(file.path(), false, "vol", RateLimiter::default(), engine).unwrap();
        let interrupt = VirtioInterrupt::new(Box::new(CountingIrq::default()), None);
        dev.activate(Activation {
            memory: mem.clone(),
            queues: vec![q.clone()],
            acked_features: dev.features(),
            interrupt: interrupt.clone(),
        }).unwrap();
        dev.handle_event(DeviceEvent::Queue(0));
        dev.drain();
        let used_idx: u16 = mem.read_obj(q.used_ring.unchecked_add_for_tests(2)).unwrap();
        let offered = raw.avail_idx;
        prop_assert!(used_idx <= offered.min(raw.size), "used {used_idx} of {offered} offered");
        for i in 0..used_idx {
            let id: u32 = mem.read_obj(q.used_ring.unchecked_add_for_tests(4 + 8 * u64::from(i))).unwrap();
            prop_assert!(id < u32::from(raw.size), "used id {id} outside the table");
        }
        prop_assert_eq!(file.as_file().metadata().unwrap().len(), 64 * 1024);
    }

    #[test]
    fn net_chains_from_random_queues_are_bounded(raw in raw_queue()) {
        let mem = create_guest_memory(MEM).unwrap();
        let mut q = lay_out(&mem, &raw);
        let frame = vec![0xa5u8; 1500];
        for _ in 0..raw.size {
            match q.pop(&mem) {
                Ok(Some(chain)) => {
                    for writable in [false, true] {
                        let mut iov = IoVecs::default();
                        if let Ok(len) = iov.fill(&mem, &chain, writable, 65_565) {
                            prop_assert!((12..=65_565).contains(&len));
                            // An rx list ends with the device's overflow byte.
                            let guest = &iov.as_slice()[..iov.as_slice().len() - usize::from(writable)];
                            let sum: usize = guest.iter().map(|v| v.iov_len).sum();
                            prop_assert_eq!(sum, len);
                            let base = mem.get_host_address(GuestAddress(0)).unwrap() as usize;
                            for v in guest {
                                let at = v.iov_base as usize;
                                prop_assert!(at >= base && at + v.iov_len <= base + MEM as usize);
                            }
                        }
                    }
                    if let Some(n) = copy_to_chain_for_tests(&mem, &chain, &frame) {
                        prop_assert_eq!(n as usize, frame.len());
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
    }

    #[test]
    fn event_indexes_from_a_hostile_driver(
        raw in raw_queue(),
        used_event in any::<u16>(),
        event_idx in any::<bool>(),
        rounds in 1usize..40,
    ) {
        let mem = create_guest_memory(MEM).unwrap();
        let mut q = lay_out(&mem, &raw);
        q.set_event_idx(event_idx);
        let size = u64::from(raw.size);
        let used_event_at = q.avail_ring.unchecked_add_for_tests(4 + 2 * size);
        mem.write_obj(used_event, used_event_at).unwrap();
        let mut served = 0u32;
        let mut interrupts = 0u32;
        for round in 0..rounds {
            if let Ok(Some(chain)) = q.pop(&mem) {
                q.add_used(&mem, chain.head, 0).unwrap();
                served += 1;
            }
            // The driver moves its event around at will, wrapping included.
            let moved = used_event.wrapping_add((round as u16).wrapping_mul(7919));
            mem.write_obj(moved, used_event_at).unwrap();
            if q.needs_notification(&mem).unwrap() {
                interrupts += 1;
            }
            q.disable_notification(&mem).unwrap();
            let _ = q.enable_notification(&mem).unwrap();
        }
        prop_assert!(served <= u32::from(raw.size), "served {served} of a queue of {}", raw.size);
        prop_assert!(interrupts <= rounds as u32);
        if event_idx {
            let avail_event: u16 = mem
                .read_obj(q.used_ring.unchecked_add_for_tests(4 + 8 * size))
                .unwrap();
            prop_assert_eq!(u32::from(avail_event), served, "avail_event is the device's position");
        }
    }
}
