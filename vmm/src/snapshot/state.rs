//! What a snapshot holds besides guest memory, and its encoding: a header describing the VM,
//! then one section per vCPU, the VM-wide KVM state, and the devices (`docs/snapshot-format.md`).

use kvm_bindings::kvm_fpu;

use super::codec::{DecodeError, Decoder, Encoder};
use crate::arch::x86_64::regs::EntryMode;
use crate::devices::i8042::I8042State;
use crate::devices::serial::SerialState;
use crate::devices::virtio::mmio::TransportState;
use crate::devices::virtio::queue::QueueState;
use crate::kvm::vcpu_state::VcpuState;
use crate::kvm::vm::VmState;

/// Most bytes the serial input FIFO holds (the 8250's 64).
const SERIAL_FIFO: usize = 64;

/// One virtio device as the header lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDescriptor {
    /// The virtio device type (1 net, 2 block, 4 rng).
    pub kind: u32,
    /// What must match on restore (`VirtioDevice::identity`).
    pub identity: String,
}

/// The machine a snapshot was taken of; a restore must configure the same one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Number of vCPUs.
    pub vcpus: u32,
    /// How the guest was started.
    pub entry: EntryMode,
    /// The guest TSC frequency in kHz.
    pub tsc_khz: u32,
    /// Guest RAM regions `(guest address, size)`, in the order the memory image holds them.
    pub regions: Vec<(u64, u64)>,
    /// The virtio devices in MMIO order.
    pub devices: Vec<DeviceDescriptor>,
}

impl Header {
    /// Guest RAM in bytes.
    pub fn mem_size(&self) -> u64 {
        self.regions.iter().map(|(_, size)| size).sum()
    }
}

/// The legacy and virtio devices.
#[derive(Debug, Clone)]
pub struct DevicesState {
    /// The COM1 UART.
    pub serial: SerialState,
    /// The i8042 controller.
    pub i8042: I8042State,
    /// Each virtio-mmio transport, in MMIO order.
    pub transports: Vec<TransportState>,
}

/// Everything but guest memory.
#[derive(Debug)]
pub struct MachineState {
    /// The machine's description.
    pub header: Header,
    /// Each vCPU, in index order.
    pub vcpus: Vec<VcpuState>,
    /// Interrupt controllers, PIT, clock.
    pub vm: VmState,
    /// Devices.
    pub devices: DevicesState,
}

fn entry_code(entry: EntryMode) -> u8 {
    match entry {
        EntryMode::Kernel => 0,
        EntryMode::User => 1,
    }
}

impl MachineState {
    /// Encodes the sections in their fixed order.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.section(b"HEAD", |e| encode_header(e, &self.header));
        for (index, vcpu) in self.vcpus.iter().enumerate() {
            e.section(b"VCPU", |e| {
                e.u32(index as u32);
                encode_vcpu(e, vcpu);
            });
        }
        e.section(b"VMST", |e| {
            e.raw(&self.vm.pic_master);
            e.raw(&self.vm.pic_slave);
            e.raw(&self.vm.ioapic);
            e.raw(&self.vm.pit);
            e.raw(&self.vm.clock);
        });
        e.section(b"DEVS", |e| encode_devices(e, &self.devices));
        e.into_bytes()
    }

    /// Decodes what `encode` wrote; every section must be complete and in order.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(bytes, "state");
        let mut s = d.section(b"HEAD")?;
        let header = decode_header(&mut s)?;
        s.finish()?;
        let mut vcpus = Vec::with_capacity(header.vcpus as usize);
        for index in 0..header.vcpus {
            let mut s = d.section(b"VCPU")?;
            if s.u32("vCPU index")? != index {
                return Err(DecodeError::BadValue("vCPU index"));
            }
            vcpus.push(decode_vcpu(&mut s)?);
            s.finish()?;
        }
        let mut s = d.section(b"VMST")?;
        let vm = VmState {
            pic_master: s.raw("master PIC")?,
            pic_slave: s.raw("slave PIC")?,
            ioapic: s.raw("IOAPIC")?,
            pit: s.raw("PIT")?,
            clock: s.raw("clock")?,
        };
        s.finish()?;
        let mut s = d.section(b"DEVS")?;
        let devices = decode_devices(&mut s)?;
        s.finish()?;
        d.finish()?;
        if devices.transports.len() != header.devices.len() {
            return Err(DecodeError::BadValue("device count"));
        }
        Ok(MachineState {
            header,
            vcpus,
            vm,
            devices,
        })
    }
}

fn encode_header(e: &mut Encoder, h: &Header) {
    e.u32(h.vcpus);
    e.u8(entry_code(h.entry));
    e.u32(h.tsc_khz);
    e.u32(h.regions.len() as u32);
    for (start, size) in &h.regions {
        e.u64(*start);
        e.u64(*size);
    }
    e.u32(h.devices.len() as u32);
    for d in &h.devices {
        e.u32(d.kind);
        e.str(&d.identity);
    }
}

fn decode_header(d: &mut Decoder<'_>) -> Result<Header, DecodeError> {
    let vcpus = d.u32("vCPU count")?;
    let entry = match d.u8("entry mode")? {
        0 => EntryMode::Kernel,
        1 => EntryMode::User,
        _ => return Err(DecodeError::BadValue("entry mode")),
    };
    let tsc_khz = d.u32("TSC frequency")?;
    let count = d.u32("region count")?;
    let mut regions = Vec::new();
    for _ in 0..count {
        regions.push((d.u64("region start")?, d.u64("region size")?));
    }
    let count = d.u32("device count")?;
    let mut devices = Vec::new();
    for _ in 0..count {
        devices.push(DeviceDescriptor {
            kind: d.u32("device type")?,
            identity: d.string("device identity")?,
        });
    }
    if vcpus == 0 || vcpus > 256 {
        return Err(DecodeError::BadValue("vCPU count"));
    }
    Ok(Header {
        vcpus,
        entry,
        tsc_khz,
        regions,
        devices,
    })
}

fn encode_fpu(e: &mut Encoder, f: &kvm_fpu) {
    for reg in &f.fpr {
        e.fixed(reg);
    }
    e.u16(f.fcw);
    e.u16(f.fsw);
    e.u8(f.ftwx);
    e.u16(f.last_opcode);
    e.u64(f.last_ip);
    e.u64(f.last_dp);
    for reg in &f.xmm {
        e.fixed(reg);
    }
    e.u32(f.mxcsr);
}

fn decode_fpu(d: &mut Decoder<'_>) -> Result<kvm_fpu, DecodeError> {
    let mut f = kvm_fpu::default();
    for reg in &mut f.fpr {
        reg.copy_from_slice(d.take(16, "x87 register")?);
    }
    f.fcw = d.u16("FCW")?;
    f.fsw = d.u16("FSW")?;
    f.ftwx = d.u8("FTW")?;
    f.last_opcode = d.u16("FOP")?;
    f.last_ip = d.u64("FIP")?;
    f.last_dp = d.u64("FDP")?;
    for reg in &mut f.xmm {
        reg.copy_from_slice(d.take(16, "XMM register")?);
    }
    f.mxcsr = d.u32("MXCSR")?;
    Ok(f)
}

fn encode_vcpu(e: &mut Encoder, v: &VcpuState) {
    e.raw(&v.regs);
    e.raw(&v.sregs);
    encode_fpu(e, &v.fpu);
    e.bool(v.xsave.is_some());
    if let Some(xsave) = &v.xsave {
        e.raw(&xsave.region);
    }
    e.bool(v.xcrs.is_some());
    if let Some(xcrs) = &v.xcrs {
        e.raw(xcrs);
    }
    e.u32(v.msrs.len() as u32);
    for m in &v.msrs {
        e.u32(m.index);
        e.u64(m.data);
    }
    e.u32(v.cpuid.len() as u32);
    for entry in &v.cpuid {
        e.raw(entry);
    }
    e.raw(&v.lapic);
    e.u32(v.mp_state.mp_state);
    e.raw(&v.events);
    e.raw(&v.debugregs);
    e.opt_u64(v.wait_deadline_us);
}

fn decode_vcpu(d: &mut Decoder<'_>) -> Result<VcpuState, DecodeError> {
    let regs = d.raw("registers")?;
    let sregs = d.raw("special registers")?;
    let fpu = decode_fpu(d)?;
    let xsave = if d.bool("XSAVE flag")? {
        Some(kvm_bindings::kvm_xsave {
            region: d.raw("XSAVE area")?,
            ..Default::default()
        })
    } else {
        None
    };
    let xcrs = if d.bool("XCRS flag")? {
        Some(d.raw("XCRs")?)
    } else {
        None
    };
    let count = d.u32("MSR count")?;
    if count > 4096 {
        return Err(DecodeError::BadValue("MSR count"));
    }
    let mut msrs = Vec::with_capacity(count as usize);
    for _ in 0..count {
        msrs.push(kvm_bindings::kvm_msr_entry {
            index: d.u32("MSR index")?,
            data: d.u64("MSR value")?,
            ..Default::default()
        });
    }
    let count = d.u32("CPUID count")?;
    if count as usize > kvm_bindings::KVM_MAX_CPUID_ENTRIES {
        return Err(DecodeError::BadValue("CPUID count"));
    }
    let mut cpuid = Vec::with_capacity(count as usize);
    for _ in 0..count {
        cpuid.push(d.raw("CPUID entry")?);
    }
    Ok(VcpuState {
        cpuid,
        msrs,
        regs,
        sregs,
        fpu,
        xsave,
        xcrs,
        lapic: d.raw("local APIC")?,
        mp_state: kvm_bindings::kvm_mp_state {
            mp_state: d.u32("MP state")?,
        },
        events: d.raw("pending events")?,
        debugregs: d.raw("debug registers")?,
        wait_deadline_us: d.opt_u64("wait deadline")?,
    })
}

fn encode_devices(e: &mut Encoder, s: &DevicesState) {
    let serial = &s.serial;
    for b in [
        serial.baud_divisor_low,
        serial.baud_divisor_high,
        serial.interrupt_enable,
        serial.interrupt_identification,
        serial.line_control,
        serial.line_status,
        serial.modem_control,
        serial.modem_status,
        serial.scratch,
    ] {
        e.u8(b);
    }
    e.bytes(&serial.in_buffer);
    let kbd = &s.i8042;
    e.u8(kbd.status);
    e.u8(kbd.control);
    e.u8(kbd.output_port);
    e.bytes(&kbd.buffer);
    e.bool(kbd.pending.is_some());
    e.u8(kbd.pending.unwrap_or(0));
    e.u32(s.transports.len() as u32);
    for t in &s.transports {
        encode_transport(e, t);
    }
}

fn decode_devices(d: &mut Decoder<'_>) -> Result<DevicesState, DecodeError> {
    let mut regs = [0u8; 9];
    for r in &mut regs {
        *r = d.u8("serial register")?;
    }
    let in_buffer = d.bytes("serial input")?.to_vec();
    if in_buffer.len() > SERIAL_FIFO {
        return Err(DecodeError::BadValue("serial input"));
    }
    let serial = SerialState {
        baud_divisor_low: regs[0],
        baud_divisor_high: regs[1],
        interrupt_enable: regs[2],
        interrupt_identification: regs[3],
        line_control: regs[4],
        line_status: regs[5],
        modem_control: regs[6],
        modem_status: regs[7],
        scratch: regs[8],
        in_buffer,
    };
    let status = d.u8("i8042 status")?;
    let control = d.u8("i8042 control")?;
    let output_port = d.u8("i8042 output port")?;
    let buffer = d.bytes("i8042 buffer")?.to_vec();
    let has_pending = d.bool("i8042 pending flag")?;
    let pending = d.u8("i8042 pending command")?;
    let i8042 = I8042State {
        status,
        control,
        output_port,
        buffer,
        pending: has_pending.then_some(pending),
    };
    let count = d.u32("transport count")?;
    let mut transports = Vec::new();
    for _ in 0..count {
        transports.push(decode_transport(d)?);
    }
    Ok(DevicesState {
        serial,
        i8042,
        transports,
    })
}

/// One transport: registers, interrupt state, queues, then the device's own bytes.
pub fn encode_transport(e: &mut Encoder, t: &TransportState) {
    e.u32(t.status);
    e.u32(t.device_features_sel);
    e.u32(t.driver_features_sel);
    e.u64(t.driver_features);
    e.u32(t.queue_sel);
    e.u32(t.config_generation);
    e.bool(t.active);
    e.bool(t.device_live);
    e.u32(t.interrupt_status);
    e.bool(t.needs_reset);
    e.u32(t.queues.len() as u32);
    for q in &t.queues {
        e.u16(q.max_size);
        e.u16(q.size);
        e.bool(q.ready);
        e.u64(q.desc_table);
        e.u64(q.avail_ring);
        e.u64(q.used_ring);
        e.u16(q.next_avail);
        e.u16(q.next_used);
    }
    e.bytes(&t.device_extra);
}

/// Reads what `encode_transport` wrote.
pub fn decode_transport(d: &mut Decoder<'_>) -> Result<TransportState, DecodeError> {
    let status = d.u32("device status")?;
    let device_features_sel = d.u32("DeviceFeaturesSel")?;
    let driver_features_sel = d.u32("DriverFeaturesSel")?;
    let driver_features = d.u64("driver features")?;
    let queue_sel = d.u32("QueueSel")?;
    let config_generation = d.u32("ConfigGeneration")?;
    let active = d.bool("active flag")?;
    let device_live = d.bool("device live flag")?;
    let interrupt_status = d.u32("InterruptStatus")?;
    let needs_reset = d.bool("needs-reset flag")?;
    let count = d.u32("queue count")?;
    if count > 64 {
        return Err(DecodeError::BadValue("queue count"));
    }
    let mut queues = Vec::new();
    for _ in 0..count {
        queues.push(QueueState {
            max_size: d.u16("queue max size")?,
            size: d.u16("queue size")?,
            ready: d.bool("queue ready")?,
            desc_table: d.u64("descriptor table")?,
            avail_ring: d.u64("available ring")?,
            used_ring: d.u64("used ring")?,
            next_avail: d.u16("next available")?,
            next_used: d.u16("next used")?,
        });
    }
    Ok(TransportState {
        status,
        device_features_sel,
        driver_features_sel,
        driver_features,
        queue_sel,
        config_generation,
        active,
        device_live,
        interrupt_status,
        needs_reset,
        queues,
        device_extra: d.bytes("device state")?.to_vec(),
    })
}
