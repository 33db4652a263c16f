//! A vCPU's whole architectural state, read from KVM for a snapshot and written back on restore.

use kvm_bindings::{
    CpuId, KVM_MAX_CPUID_ENTRIES, Msrs, kvm_cpuid_entry2, kvm_debugregs, kvm_fpu, kvm_lapic_state,
    kvm_mp_state, kvm_msr_entry, kvm_regs, kvm_sregs, kvm_vcpu_events, kvm_xcrs, kvm_xsave,
};
use kvm_ioctls::VcpuFd;

/// Most MSRs KVM takes in one KVM_GET_MSRS / KVM_SET_MSRS call.
const MSR_CHUNK: usize = 256;

/// Everything KVM holds about one vCPU, plus the VMM's own per-vCPU state.
#[derive(Debug)]
pub struct VcpuState {
    /// The CPUID the guest sees.
    pub cpuid: Vec<kvm_cpuid_entry2>,
    /// Every MSR KVM could read, the TSC included.
    pub msrs: Vec<kvm_msr_entry>,
    /// General-purpose registers.
    pub regs: kvm_regs,
    /// Segments, control registers, descriptor tables, EFER, APIC base.
    pub sregs: kvm_sregs,
    /// x87 and SSE state (used when the host has no XSAVE).
    pub fpu: kvm_fpu,
    /// The XSAVE area, when the host supports it.
    pub xsave: Option<kvm_xsave>,
    /// Extended control registers (XCR0), when the host supports them.
    pub xcrs: Option<kvm_xcrs>,
    /// The local APIC's registers.
    pub lapic: kvm_lapic_state,
    /// Runnable, halted, waiting for SIPI, ...
    pub mp_state: kvm_mp_state,
    /// Pending exceptions, interrupts, NMIs and SMIs.
    pub events: kvm_vcpu_events,
    /// Debug registers.
    pub debugregs: kvm_debugregs,
    /// The probe's wait-port deadline, in microseconds from the snapshot, if one is armed.
    pub wait_deadline_us: Option<u64>,
}

/// Why a vCPU's state could not be read or written back.
#[derive(Debug, thiserror::Error)]
pub enum VcpuStateError {
    /// A KVM_GET_* ioctl failed.
    #[error("KVM could not read the {what} of vCPU {index}")]
    Read {
        /// The state: "registers", "local APIC", ...
        what: &'static str,
        /// The vCPU.
        index: u32,
        /// The cause.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// A KVM_SET_* ioctl failed.
    #[error("KVM refused the saved {what} of vCPU {index}")]
    Write {
        /// The state.
        what: &'static str,
        /// The vCPU.
        index: u32,
        /// The cause.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// The saved CPUID has more entries than KVM takes.
    #[error("the saved CPUID of vCPU {0} has too many entries")]
    CpuidTooLarge(u32),
    /// The vCPU did not stop cleanly at an instruction boundary.
    #[error("vCPU {0} could not finish its pending I/O before the snapshot")]
    NotSettled(u32),
}

fn read_err(what: &'static str, index: u32) -> impl FnOnce(kvm_ioctls::Error) -> VcpuStateError {
    move |source| VcpuStateError::Read {
        what,
        index,
        source,
    }
}

fn write_err(what: &'static str, index: u32) -> impl FnOnce(kvm_ioctls::Error) -> VcpuStateError {
    move |source| VcpuStateError::Write {
        what,
        index,
        source,
    }
}

/// Reads MSRs `indices` in chunks; an MSR KVM lists but cannot read is left out.
fn read_msrs(fd: &VcpuFd, indices: &[u32]) -> Result<Vec<kvm_msr_entry>, kvm_ioctls::Error> {
    let mut out = Vec::with_capacity(indices.len());
    let mut rest = indices;
    while !rest.is_empty() {
        let chunk = &rest[..rest.len().min(MSR_CHUNK)];
        let entries: Vec<kvm_msr_entry> = chunk
            .iter()
            .map(|&index| kvm_msr_entry {
                index,
                ..Default::default()
            })
            .collect();
        let mut msrs = Msrs::from_entries(&entries).expect("a chunk fits a KVM MSR array");
        let read = fd.get_msrs(&mut msrs)?;
        out.extend_from_slice(&msrs.as_slice()[..read]);
        // KVM stops at the first MSR it cannot read: skip that one and go on.
        let consumed = if read < chunk.len() { read + 1 } else { read };
        rest = &rest[consumed..];
    }
    Ok(out)
}

/// Writes `entries` in chunks; returns the indexes of MSRs KVM refused.
fn write_msrs(fd: &VcpuFd, entries: &[kvm_msr_entry]) -> Result<Vec<u32>, kvm_ioctls::Error> {
    let mut refused = Vec::new();
    let mut rest = entries;
    while !rest.is_empty() {
        let chunk = &rest[..rest.len().min(MSR_CHUNK)];
        let msrs = Msrs::from_entries(chunk).expect("a chunk fits a KVM MSR array");
        let set = fd.set_msrs(&msrs)?;
        if set < chunk.len() {
            refused.push(chunk[set].index);
            rest = &rest[set + 1..];
        } else {
            rest = &rest[set..];
        }
    }
    Ok(refused)
}

impl VcpuState {
    /// Reads vCPU `index`'s state. The vCPU must be out of KVM_RUN with no I/O pending (see
    /// the vCPU thread's capture step).
    pub fn capture(
        fd: &VcpuFd,
        index: u32,
        msr_indices: &[u32],
        wait_deadline_us: Option<u64>,
    ) -> Result<Self, VcpuStateError> {
        let cpuid = fd
            .get_cpuid2(KVM_MAX_CPUID_ENTRIES)
            .map_err(read_err("CPUID", index))?;
        Ok(VcpuState {
            cpuid: cpuid.as_slice().to_vec(),
            msrs: read_msrs(fd, msr_indices).map_err(read_err("MSRs", index))?,
            regs: fd.get_regs().map_err(read_err("registers", index))?,
            sregs: fd
                .get_sregs()
                .map_err(read_err("special registers", index))?,
            fpu: fd.get_fpu().map_err(read_err("FPU state", index))?,
            xsave: fd.get_xsave().ok(),
            xcrs: fd.get_xcrs().ok(),
            lapic: fd.get_lapic().map_err(read_err("local APIC", index))?,
            mp_state: fd.get_mp_state().map_err(read_err("MP state", index))?,
            events: fd
                .get_vcpu_events()
                .map_err(read_err("pending events", index))?,
            debugregs: fd
                .get_debug_regs()
                .map_err(read_err("debug registers", index))?,
            wait_deadline_us,
        })
    }

    /// Gives a fresh vCPU this state, running at `tsc_khz` when that is known. Returns the
    /// MSRs KVM refused to take back (logged; KVM lists some it does not accept from
    /// userspace).
    pub fn apply(
        &self,
        fd: &VcpuFd,
        index: u32,
        tsc_khz: Option<u32>,
    ) -> Result<Vec<u32>, VcpuStateError> {
        if let Some(khz) = tsc_khz {
            let current = fd.get_tsc_khz().map_err(read_err("TSC frequency", index))?;
            if current != khz {
                fd.set_tsc_khz(khz)
                    .map_err(write_err("TSC frequency", index))?;
            }
        }
        let cpuid =
            CpuId::from_entries(&self.cpuid).map_err(|_| VcpuStateError::CpuidTooLarge(index))?;
        fd.set_cpuid2(&cpuid).map_err(write_err("CPUID", index))?;
        // Segments before the flags: KVM checks IOPL against the CPL the segments imply.
        fd.set_sregs(&self.sregs)
            .map_err(write_err("special registers", index))?;
        fd.set_regs(&self.regs)
            .map_err(write_err("registers", index))?;
        fd.set_fpu(&self.fpu)
            .map_err(write_err("FPU state", index))?;
        if let Some(xsave) = &self.xsave {
            // SAFETY: the VM never enables KVM_CAP_XSAVE2, so KVM reads exactly the 4 KiB
            // `kvm_xsave` this reference points at.
            unsafe { fd.set_xsave(xsave) }.map_err(write_err("XSAVE area", index))?;
        }
        if let Some(xcrs) = &self.xcrs {
            fd.set_xcrs(xcrs)
                .map_err(write_err("extended control registers", index))?;
        }
        fd.set_debug_regs(&self.debugregs)
            .map_err(write_err("debug registers", index))?;
        fd.set_lapic(&self.lapic)
            .map_err(write_err("local APIC", index))?;
        let refused = write_msrs(fd, &self.msrs).map_err(write_err("MSRs", index))?;
        fd.set_vcpu_events(&self.events)
            .map_err(write_err("pending events", index))?;
        fd.set_mp_state(self.mp_state)
            .map_err(write_err("MP state", index))?;
        Ok(refused)
    }
}

/// Where vCPU threads leave their captured state for the snapshot writer, one slot per vCPU.
#[derive(Debug)]
pub struct CaptureSlots {
    slots: std::sync::Mutex<Vec<Option<Result<VcpuState, VcpuStateError>>>>,
}

impl CaptureSlots {
    /// Empty slots for `vcpus` vCPUs.
    pub fn new(vcpus: u32) -> Self {
        CaptureSlots {
            slots: std::sync::Mutex::new((0..vcpus).map(|_| None).collect()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Option<Result<VcpuState, VcpuStateError>>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Empties every slot before a capture.
    pub fn clear(&self) {
        self.lock().iter_mut().for_each(|s| *s = None);
    }

    /// Records vCPU `index`'s capture.
    pub fn put(&self, index: u32, state: Result<VcpuState, VcpuStateError>) {
        if let Some(slot) = self.lock().get_mut(index as usize) {
            *slot = Some(state);
        }
    }

    /// Takes every slot, in vCPU order.
    pub fn take_all(&self) -> Vec<Option<Result<VcpuState, VcpuStateError>>> {
        self.lock().iter_mut().map(Option::take).collect()
    }
}
