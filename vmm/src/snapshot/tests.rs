//! The snapshot format without KVM: state encoding, the file's checks, sparse memory, and a
//! virtio transport that continues its queue after a round trip.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use kvm_bindings::{kvm_msr_entry, kvm_regs, kvm_xsave};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

use super::codec::{Decoder, Encoder};
use super::file::{self, ReadError, SnapshotFile};
use super::state::{
    DeviceDescriptor, DevicesState, Header, MachineState, decode_transport, encode_transport,
};
use crate::arch::x86_64::regs::EntryMode;
use crate::devices::bus::BusDevice;
use crate::devices::i8042::I8042State;
use crate::devices::irq::CountingIrq;
use crate::devices::serial::SerialState;
use crate::devices::virtio::interrupt::VirtioInterrupt;
use crate::devices::virtio::mmio::MmioTransport;
use crate::devices::virtio::queue::DESC_F_WRITE;
use crate::devices::virtio::queue::testing::{offer, queue_at, used, write_desc};
use crate::devices::virtio::rng::Rng;
use crate::devices::virtio::{DeviceEvent, VirtioDevice};
use crate::kvm::memory::create_guest_memory;
use crate::kvm::vcpu_state::VcpuState;
use crate::kvm::vm::VmState;

const MIB: u64 = 1 << 20;

fn vcpu(index: u64) -> VcpuState {
    let mut xsave = kvm_xsave::default();
    xsave.region[7] = 0xabcd;
    VcpuState {
        cpuid: vec![kvm_bindings::kvm_cpuid_entry2 {
            function: 1,
            eax: 0x806f8,
            ..Default::default()
        }],
        msrs: vec![kvm_msr_entry {
            index: 0x10,
            data: 123_456_789 + index,
            ..Default::default()
        }],
        regs: kvm_regs {
            rip: 0x20_1000 + index,
            rax: 1,
            rflags: 0x3002,
            ..Default::default()
        },
        sregs: Default::default(),
        fpu: kvm_bindings::kvm_fpu {
            fcw: 0x37f,
            mxcsr: 0x1f80,
            ..Default::default()
        },
        xsave: Some(xsave),
        xcrs: None,
        lapic: Default::default(),
        mp_state: Default::default(),
        events: Default::default(),
        debugregs: Default::default(),
        wait_deadline_us: Some(250_000),
    }
}

fn machine(vcpus: u32) -> MachineState {
    MachineState {
        header: Header {
            vcpus,
            entry: EntryMode::User,
            tsc_khz: 2_500_000,
            regions: vec![(0, 64 * MIB)],
            devices: vec![DeviceDescriptor {
                kind: 4,
                identity: "rng".into(),
            }],
        },
        vcpus: (0..vcpus).map(|i| vcpu(i.into())).collect(),
        vm: VmState {
            pic_master: Default::default(),
            pic_slave: kvm_bindings::kvm_irqchip {
                chip_id: 1,
                ..Default::default()
            },
            ioapic: kvm_bindings::kvm_irqchip {
                chip_id: 2,
                ..Default::default()
            },
            pit: Default::default(),
            clock: kvm_bindings::kvm_clock_data {
                clock: 987_654_321,
                ..Default::default()
            },
        },
        devices: DevicesState {
            serial: SerialState {
                baud_divisor_low: 12,
                baud_divisor_high: 0,
                interrupt_enable: 0,
                interrupt_identification: 1,
                line_control: 3,
                line_status: 0x60,
                modem_control: 8,
                modem_status: 0xb0,
                scratch: 0,
                in_buffer: b"ab".to_vec(),
            },
            i8042: I8042State {
                status: 5,
                control: 0x47,
                output_port: 1,
                buffer: vec![0x14, 0x11],
                pending: Some(0x60),
            },
            transports: vec![inactive_transport_state()],
        },
    }
}

/// A transport state as an inactive rng leaves it.
fn inactive_transport_state() -> crate::devices::virtio::mmio::TransportState {
    let memory = create_guest_memory(MIB).unwrap();
    let (transport, _) = transport(&memory);
    transport.save_state()
}

#[test]
fn machine_state_round_trips() {
    let state = machine(2);
    let bytes = state.encode();
    let back = MachineState::decode(&bytes).unwrap();
    assert_eq!(back.header, state.header);
    assert_eq!(back.vcpus.len(), 2);
    assert_eq!(back.vcpus[1].regs, state.vcpus[1].regs);
    assert_eq!(back.vcpus[1].msrs[0].data, 123_456_790);
    assert_eq!(back.vcpus[0].xsave.as_ref().unwrap().region[7], 0xabcd);
    assert_eq!(back.vcpus[0].fpu.mxcsr, 0x1f80);
    assert_eq!(back.vcpus[0].wait_deadline_us, Some(250_000));
    assert_eq!(back.vm.clock.clock, 987_654_321);
    assert_eq!(back.vm.ioapic.chip_id, 2);
    assert_eq!(back.devices.serial, state.devices.serial);
    assert_eq!(back.devices.i8042, state.devices.i8042);
    assert_eq!(back.devices.transports, state.devices.transports);
    assert_eq!(back.encode(), bytes, "a second round gives the same bytes");
}

#[test]
fn a_truncated_or_extended_state_does_not_decode() {
    let bytes = machine(1).encode();
    assert!(MachineState::decode(&bytes[..bytes.len() - 1]).is_err());
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(MachineState::decode(&longer).is_err());
}

/// Guest memory with a few pages written, far apart.
fn memory_with_data() -> GuestMemoryMmap {
    let memory = create_guest_memory(16 * MIB).unwrap();
    memory
        .write_obj(0x1122_3344u32, GuestAddress(0x1000))
        .unwrap();
    memory
        .write_slice(b"probe", GuestAddress(8 * MIB + 5))
        .unwrap();
    memory
        .write_obj(0xffu8, GuestAddress(16 * MIB - 1))
        .unwrap();
    memory
}

fn write_snapshot(dir: &std::path::Path) -> (std::path::PathBuf, Vec<u8>) {
    let path = dir.join("vm.snap");
    let state = machine(1).encode();
    let len = file::write(&path, &state, &memory_with_data(), &[(0, 16 * MIB)]).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    assert!(!file::tmp_path(&path).exists(), "no temporary file is left");
    (path, state)
}

#[test]
fn a_file_round_trips_sparse() {
    let dir = tempfile::tempdir().unwrap();
    let (path, state) = write_snapshot(dir.path());
    let blocks = std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&path).unwrap());
    assert!(blocks * 512 < MIB, "zero pages are holes ({blocks} blocks)");
    let snapshot = SnapshotFile::open(&path).unwrap();
    assert_eq!(snapshot.state(), &state[..]);
    assert_eq!(snapshot.memory_len(), 16 * MIB);
    let memory = create_guest_memory(16 * MIB).unwrap();
    snapshot.load_memory(&memory, &[(0, 16 * MIB)]).unwrap();
    assert_eq!(
        memory.read_obj::<u32>(GuestAddress(0x1000)).unwrap(),
        0x1122_3344
    );
    let mut word = [0u8; 5];
    memory
        .read_slice(&mut word, GuestAddress(8 * MIB + 5))
        .unwrap();
    assert_eq!(&word, b"probe");
    assert_eq!(
        memory.read_obj::<u8>(GuestAddress(16 * MIB - 1)).unwrap(),
        0xff
    );
}

fn patch(path: &std::path::Path, offset: u64, bytes: &[u8]) {
    std::os::unix::fs::FileExt::write_all_at(
        &std::fs::OpenOptions::new().write(true).open(path).unwrap(),
        bytes,
        offset,
    )
    .unwrap();
}

#[test]
fn a_byte_changed_anywhere_is_caught_by_the_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_snapshot(dir.path());
    let len = std::fs::metadata(&path).unwrap().len();
    let mut field = [0u8; 8];
    std::os::unix::fs::FileExt::read_exact_at(&std::fs::File::open(&path).unwrap(), &mut field, 24)
        .unwrap();
    let memory_offset = u64::from_le_bytes(field);
    // In the state, in a data page of the memory image, in a hole of it.
    for offset in [100, memory_offset + 0x1000 + 1, len / 2] {
        let (path, _) = write_snapshot(dir.path());
        let mut byte = [0u8];
        std::os::unix::fs::FileExt::read_exact_at(
            &std::fs::File::open(&path).unwrap(),
            &mut byte,
            offset,
        )
        .unwrap();
        patch(&path, offset, &[byte[0] ^ 0x40]);
        let err = SnapshotFile::open(&path).unwrap_err();
        assert!(
            matches!(&err, ReadError::Corrupt { why, .. } if why.contains("checksum mismatch")),
            "offset {offset}: {err}"
        );
    }
}

#[test]
fn version_magic_and_length_are_checked_first() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_snapshot(dir.path());
    patch(&path, 8, &2u32.to_le_bytes());
    let err = SnapshotFile::open(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "snapshot {} has format version 2; this vmm reads version 1",
            path.display()
        )
    );

    let (path, _) = write_snapshot(dir.path());
    patch(&path, 0, b"NOTASNAP");
    assert!(matches!(
        SnapshotFile::open(&path),
        Err(ReadError::WrongMagic(_))
    ));

    let (path, _) = write_snapshot(dir.path());
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 4096).unwrap();
    let err = SnapshotFile::open(&path).unwrap_err();
    assert!(
        matches!(err, ReadError::Truncated { got, expected, .. } if got == len - 4096 && expected == len),
        "{err}"
    );
    file.set_len(30).unwrap();
    assert!(matches!(
        SnapshotFile::open(&path),
        Err(ReadError::Truncated { .. })
    ));

    let err = SnapshotFile::open(&dir.path().join("missing.snap")).unwrap_err();
    assert!(matches!(err, ReadError::Io { .. }), "{err}");
}

/// An rng behind a transport on `memory`.
fn transport(memory: &GuestMemoryMmap) -> (MmioTransport, Arc<Mutex<dyn VirtioDevice>>) {
    let device: Arc<Mutex<dyn VirtioDevice>> = Arc::new(Mutex::new(Rng::new()));
    let interrupt = VirtioInterrupt::new(Box::new(CountingIrq::default()), None);
    let events = vec![Arc::new(EventFd::new(libc::EFD_NONBLOCK).unwrap())];
    (
        MmioTransport::new(device.clone(), memory.clone(), interrupt, events),
        device,
    )
}

fn write_reg(t: &mut MmioTransport, offset: u64, value: u32) {
    t.write(0, offset, &value.to_le_bytes());
}

fn read_reg(t: &mut MmioTransport, offset: u64) -> u32 {
    let mut data = [0u8; 4];
    t.read(0, offset, &mut data);
    u32::from_le_bytes(data)
}

/// Offers one 16-byte writable buffer in descriptor `index` and lets the device serve it.
fn serve_one(
    memory: &GuestMemoryMmap,
    q: &crate::devices::virtio::queue::Queue,
    device: &Arc<Mutex<dyn VirtioDevice>>,
    index: u16,
) {
    write_desc(
        memory,
        q,
        index,
        0x80000 + 64 * u64::from(index),
        16,
        DESC_F_WRITE,
        0,
    );
    offer(memory, q, index);
    device.lock().unwrap().handle_event(DeviceEvent::Queue(0));
}

#[test]
fn a_restored_transport_continues_its_queue_at_the_saved_indices() {
    let memory = create_guest_memory(MIB).unwrap();
    let (mut t, device) = transport(&memory);
    let q = queue_at(&memory, 0x4000, 16);
    // The driver's side (virtio-mmio v2 register offsets).
    for status in [0, 1, 3] {
        write_reg(&mut t, 0x070, status);
    }
    write_reg(&mut t, 0x024, 1); // DriverFeaturesSel: high half
    write_reg(&mut t, 0x020, 1); // VIRTIO_F_VERSION_1
    write_reg(&mut t, 0x070, 11); // FEATURES_OK
    write_reg(&mut t, 0x030, 0); // QueueSel
    write_reg(&mut t, 0x038, 16); // QueueNum
    write_reg(&mut t, 0x080, q.desc_table.0 as u32);
    write_reg(&mut t, 0x090, q.avail_ring.0 as u32);
    write_reg(&mut t, 0x0a0, q.used_ring.0 as u32);
    write_reg(&mut t, 0x044, 1); // QueueReady
    write_reg(&mut t, 0x070, 15); // DRIVER_OK
    for index in 0..3 {
        serve_one(&memory, &q, &device, index);
    }
    assert_eq!(used(&memory, &q).0, 3);

    let saved = t.save_state();
    assert!(saved.active && saved.device_live);
    assert_eq!(
        (saved.queues[0].next_avail, saved.queues[0].next_used),
        (3, 3)
    );
    let mut e = Encoder::new();
    encode_transport(&mut e, &saved);
    let bytes = e.into_bytes();
    let mut d = Decoder::new(&bytes, "transport");
    let decoded = decode_transport(&mut d).unwrap();
    d.finish().unwrap();
    assert_eq!(decoded, saved);

    // A new device and transport on the same memory, as after a restore.
    let (mut restored, new_device) = transport(&memory);
    restored.restore_state(&decoded).unwrap();
    assert_eq!(read_reg(&mut restored, 0x070), 15, "status survives");
    assert_eq!(read_reg(&mut restored, 0x044), 1, "queue still ready");
    assert_eq!(
        read_reg(&mut restored, 0x060) & 1,
        1,
        "the used-buffer interrupt is still pending"
    );
    for index in 3..5 {
        serve_one(&memory, &q, &new_device, index);
    }
    let (idx, entries) = used(&memory, &q);
    assert_eq!(idx, 5, "the used index continues from 3");
    let heads: Vec<u32> = entries.iter().map(|(head, _)| *head).collect();
    assert_eq!(heads, vec![0, 1, 2, 3, 4]);
    assert!(entries.iter().all(|(_, len)| *len == 16));
    assert_eq!(
        new_device
            .lock()
            .unwrap()
            .counters()
            .requests
            .load(Ordering::Relaxed),
        2,
        "only the new buffers were served after the restore"
    );
}

#[test]
fn a_transport_with_other_queues_is_refused() {
    let memory = create_guest_memory(MIB).unwrap();
    let (t, _) = transport(&memory);
    let mut saved = t.save_state();
    saved.queues[0].max_size = 128;
    let (mut other, _) = transport(&memory);
    let err = other.restore_state(&saved).unwrap_err();
    assert!(err.to_string().contains("queues of sizes [128]"), "{err}");
}
