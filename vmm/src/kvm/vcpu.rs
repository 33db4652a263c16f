//! A vCPU: its initial state, its thread, and the loop that runs it and handles its exits.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use kvm_bindings::{
    CpuId, KVM_INTERNAL_ERROR_EMULATION, KVM_MP_STATE_RUNNABLE, KVM_SYSTEM_EVENT_RESET,
    KVM_SYSTEM_EVENT_SHUTDOWN, Msrs, kvm_mp_state,
};
use kvm_ioctls::{VcpuExit, VcpuFd};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::kick;
use super::vcpu_state::{CaptureSlots, VcpuState, VcpuStateError};
use super::vm::Vm;
use crate::arch::x86_64::regs::{EntryMode, EntryPoint, entry_fpu, entry_regs, entry_sregs};
use crate::arch::x86_64::{cpuid, msr};
use crate::control::{ExitReason, VcpuStep, VmControl};
use crate::devices::bus::Bus;
use crate::devices::pvport::PvPort;

/// Whether `/proc/cpuinfo` lists VT-x (`vmx`) or AMD-V (`svm`).
fn host_has_hardware_virtualization() -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|info| {
            info.lines()
                .filter(|l| l.starts_with("flags"))
                .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
        })
        .unwrap_or(false)
}

/// Offsets of the local APIC's LVT LINT0 and LINT1 registers.
const APIC_LVT0: usize = 0x350;
const APIC_LVT1: usize = 0x360;
/// LVT delivery modes.
const APIC_MODE_NMI: u32 = 0x4;
const APIC_MODE_EXTINT: u32 = 0x7;

/// Why a vCPU could not be created or given its initial state.
#[derive(Debug, thiserror::Error)]
pub enum VcpuError {
    /// KVM_CREATE_VCPU failed.
    #[error("KVM refused to create vCPU {index}")]
    Create {
        /// The vCPU.
        index: u32,
        /// The cause.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// One of the state-setting ioctls failed.
    #[error("KVM refused the {what} of vCPU {index}")]
    SetState {
        /// Which state: "CPUID", "registers", ...
        what: &'static str,
        /// The vCPU.
        index: u32,
        /// The cause.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// KVM took only some of the boot MSRs.
    #[error("KVM set {set} of the {wanted} boot MSRs of vCPU {index}")]
    PartialMsrs {
        /// How many were set.
        set: usize,
        /// How many were asked for.
        wanted: usize,
        /// The vCPU.
        index: u32,
    },
}

/// How many KVM_RUN calls a vCPU may need to finish its pending I/O before a capture.
const SETTLE_TRIES: usize = 8;

/// One vCPU, before its thread starts.
#[derive(Debug)]
pub struct Vcpu {
    fd: VcpuFd,
    index: u32,
    pvport: PvPort,
}

/// What a vCPU thread shares with the rest of the VMM.
#[derive(Debug, Clone)]
pub struct VcpuContext {
    /// Run state and counters.
    pub control: Arc<VmControl>,
    /// The port I/O devices.
    pub pio: Bus,
    /// The MMIO devices.
    pub mmio: Bus,
    /// Guest memory, to report the faulting instruction on a failure.
    pub memory: GuestMemoryMmap,
    /// Where captured states go for a snapshot.
    pub captures: Arc<CaptureSlots>,
    /// The MSRs a capture reads.
    pub msr_indices: Arc<[u32]>,
}

/// What one exit asks of the run loop.
enum Next {
    Continue,
    /// KVM_RUN returned at once because of a kick (immediate_exit) or a signal.
    Interrupted,
    Exit(ExitReason),
    DescribeInternalError,
    DescribeShutdown,
}

impl Vcpu {
    /// Creates vCPU `index` in `vm`.
    pub fn new(vm: &Vm, index: u32) -> Result<Self, VcpuError> {
        let fd = vm
            .fd()
            .create_vcpu(u64::from(index))
            .map_err(|source| VcpuError::Create { index, source })?;
        Ok(Vcpu {
            fd,
            index,
            pvport: PvPort::default(),
        })
    }

    /// Gives the vCPU the state a snapshot recorded, at `tsc_khz` when known.
    pub fn restore(
        &mut self,
        state: &VcpuState,
        tsc_khz: Option<u32>,
    ) -> Result<(), VcpuStateError> {
        let refused = state.apply(&self.fd, self.index, tsc_khz)?;
        if !refused.is_empty() {
            tracing::debug!(
                "vCPU {}: KVM did not take back MSRs {refused:#x?}",
                self.index
            );
        }
        self.pvport = PvPort::restored(state.wait_deadline_us);
        Ok(())
    }

    fn state_err(&self, what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VcpuError {
        let index = self.index;
        move |source| VcpuError::SetState {
            what,
            index,
            source,
        }
    }

    /// The guest TSC frequency in kHz.
    pub fn tsc_khz(&self) -> Result<u32, VcpuError> {
        self.fd
            .get_tsc_khz()
            .map_err(self.state_err("TSC frequency"))
    }

    /// Gives the vCPU its CPUID, MSRs, registers, FPU and LAPIC state for a start in `mode`.
    pub fn configure(
        &self,
        mode: EntryMode,
        entry: &EntryPoint,
        supported_cpuid: &CpuId,
    ) -> Result<(), VcpuError> {
        let mut cpuid = supported_cpuid.clone();
        cpuid::normalize(cpuid.as_mut_slice(), entry.index, entry.count);
        self.fd
            .set_cpuid2(&cpuid)
            .map_err(self.state_err("CPUID"))?;

        let entries = msr::boot_msrs();
        let msrs = Msrs::from_entries(&entries).expect("boot MSR list fits a KVM MSR array");
        let set = self.fd.set_msrs(&msrs).map_err(self.state_err("MSRs"))?;
        if set != entries.len() {
            return Err(VcpuError::PartialMsrs {
                set,
                wanted: entries.len(),
                index: self.index,
            });
        }

        let base = self
            .fd
            .get_sregs()
            .map_err(self.state_err("special registers"))?;
        self.fd
            .set_sregs(&entry_sregs(mode, base))
            .map_err(self.state_err("special registers"))?;
        // After the segments: the flags (IOPL) are checked against the CPL they imply.
        self.fd
            .set_regs(&entry_regs(mode, entry))
            .map_err(self.state_err("registers"))?;
        self.fd
            .set_fpu(&entry_fpu())
            .map_err(self.state_err("FPU state"))?;
        self.set_lint_pins()?;
        if mode == EntryMode::User && self.index > 0 {
            // Application processors normally wait for INIT/SIPI; a user start runs them all.
            let runnable = kvm_mp_state {
                mp_state: KVM_MP_STATE_RUNNABLE,
            };
            self.fd
                .set_mp_state(runnable)
                .map_err(self.state_err("MP state"))?;
        }
        Ok(())
    }

    /// LINT0 delivers the PIC's interrupts (ExtINT), LINT1 NMIs, as on a PC.
    fn set_lint_pins(&self) -> Result<(), VcpuError> {
        let mut lapic = self.fd.get_lapic().map_err(self.state_err("local APIC"))?;
        for (offset, mode) in [(APIC_LVT0, APIC_MODE_EXTINT), (APIC_LVT1, APIC_MODE_NMI)] {
            let reg = &mut lapic.regs[offset..offset + 4];
            let bytes: [u8; 4] = std::array::from_fn(|i| reg[i] as u8);
            let value = (u32::from_le_bytes(bytes) & !0x700) | (mode << 8);
            for (dst, src) in reg.iter_mut().zip(value.to_le_bytes()) {
                *dst = src as _;
            }
        }
        self.fd
            .set_lapic(&lapic)
            .map_err(self.state_err("local APIC"))
    }

    /// The thread body: runs the guest until the VM stops.
    pub fn run(mut self, ctx: VcpuContext) {
        kick::set_thread_kvm_run(self.fd.get_kvm_run());
        let mut pvport = std::mem::take(&mut self.pvport);
        let mut captured = 0;
        loop {
            match ctx.control.vcpu_step(&mut captured) {
                VcpuStep::Run => {}
                VcpuStep::Leave => break,
                VcpuStep::Capture => {
                    let state = self.capture(&ctx, &mut pvport);
                    ctx.captures.put(self.index, state);
                    ctx.control.vcpu_captured();
                    continue;
                }
            }
            match self.run_once(&ctx, &mut pvport) {
                Next::Continue | Next::Interrupted => {}
                Next::Exit(reason) => {
                    ctx.control.request_exit(reason);
                    break;
                }
                Next::DescribeInternalError => {
                    let reason = ExitReason::GuestFailure(self.describe_internal_error(&ctx));
                    ctx.control.request_exit(reason);
                    break;
                }
                Next::DescribeShutdown => {
                    let reason = ExitReason::GuestFailure(format!(
                        "vCPU {} triple-faulted (KVM shutdown exit){}",
                        self.index,
                        self.where_stopped()
                    ));
                    ctx.control.request_exit(reason);
                    break;
                }
            }
        }
        kick::set_thread_kvm_run(std::ptr::null_mut());
        ctx.control.vcpu_exited();
    }

    /// Finishes the I/O of the last exit (KVM completes it on the next KVM_RUN, which
    /// `immediate_exit` makes return before any guest instruction), then reads the state.
    fn capture(
        &mut self,
        ctx: &VcpuContext,
        pvport: &mut PvPort,
    ) -> Result<VcpuState, VcpuStateError> {
        let mut settled = false;
        for _ in 0..SETTLE_TRIES {
            self.fd.set_kvm_immediate_exit(1);
            match self.run_once(ctx, pvport) {
                Next::Interrupted => {
                    settled = true;
                    break;
                }
                Next::Continue => {}
                // The guest ended or failed instead: there is nothing consistent to save.
                _ => break,
            }
        }
        self.fd.set_kvm_immediate_exit(0);
        if !settled {
            return Err(VcpuStateError::NotSettled(self.index));
        }
        VcpuState::capture(
            &self.fd,
            self.index,
            &ctx.msr_indices,
            pvport.remaining_us(),
        )
    }

    fn run_once(&mut self, ctx: &VcpuContext, pvport: &mut PvPort) -> Next {
        let counters = &ctx.control.counters;
        let index = self.index;
        match self.fd.run() {
            Ok(VcpuExit::IoOut(port, data)) => {
                counters.io.fetch_add(1, Ordering::Relaxed);
                if PvPort::claims(port) {
                    pvport.write(port, data, &ctx.control);
                } else if !ctx.pio.write(u64::from(port), data) {
                    counters.unhandled.fetch_add(1, Ordering::Relaxed);
                }
                Next::Continue
            }
            Ok(VcpuExit::IoIn(port, data)) => {
                counters.io.fetch_add(1, Ordering::Relaxed);
                if PvPort::claims(port) {
                    pvport.read(port, data, &ctx.control);
                } else if !ctx.pio.read(u64::from(port), data) {
                    counters.unhandled.fetch_add(1, Ordering::Relaxed);
                    data.fill(0xff);
                }
                Next::Continue
            }
            Ok(VcpuExit::MmioRead(addr, data)) => {
                counters.mmio.fetch_add(1, Ordering::Relaxed);
                if !ctx.mmio.read(addr, data) {
                    counters.unhandled.fetch_add(1, Ordering::Relaxed);
                    data.fill(0xff);
                }
                Next::Continue
            }
            Ok(VcpuExit::MmioWrite(addr, data)) => {
                counters.mmio.fetch_add(1, Ordering::Relaxed);
                if !ctx.mmio.write(addr, data) {
                    counters.unhandled.fetch_add(1, Ordering::Relaxed);
                }
                Next::Continue
            }
            Ok(VcpuExit::Intr) | Ok(VcpuExit::Hlt) => Next::Continue,
            Ok(VcpuExit::Shutdown) => Next::DescribeShutdown,
            Ok(VcpuExit::SystemEvent(kind, _)) => Next::Exit(match kind {
                KVM_SYSTEM_EVENT_SHUTDOWN => ExitReason::PowerOff(0),
                KVM_SYSTEM_EVENT_RESET => ExitReason::Reset,
                other => {
                    ExitReason::GuestFailure(format!("vCPU {index} sent system event {other}"))
                }
            }),
            Ok(VcpuExit::InternalError) => Next::DescribeInternalError,
            Ok(VcpuExit::FailEntry(reason, cpu)) => Next::Exit(ExitReason::GuestFailure(format!(
                "KVM could not enter vCPU {index} (hardware entry failure reason {reason:#x} \
                 on host CPU {cpu})"
            ))),
            Ok(other) => Next::Exit(ExitReason::GuestFailure(format!(
                "vCPU {index} made an exit the vmm does not handle: {other:?}"
            ))),
            Err(err) if err.errno() == libc::EINTR => {
                counters.interrupted.fetch_add(1, Ordering::Relaxed);
                self.fd.set_kvm_immediate_exit(0);
                Next::Interrupted
            }
            Err(err) if err.errno() == libc::EAGAIN => Next::Continue,
            Err(err) => Next::Exit(ExitReason::VmmFailure(format!(
                "KVM_RUN failed on vCPU {index}: {err}"
            ))),
        }
    }

    /// " at rip X, CPL n", or nothing when the registers cannot be read.
    fn where_stopped(&self) -> String {
        match (self.fd.get_regs(), self.fd.get_sregs()) {
            (Ok(regs), Ok(sregs)) => format!(
                " at rip {:#x}, rsp {:#x}, rflags {:#x}, CPL {}",
                regs.rip,
                regs.rsp,
                regs.rflags,
                sregs.cs.selector & 3
            ),
            _ => String::new(),
        }
    }

    /// Names what failed for a KVM_EXIT_INTERNAL_ERROR: the instruction address and bytes.
    fn describe_internal_error(&mut self, ctx: &VcpuContext) -> String {
        // SAFETY: the last exit was KVM_EXIT_INTERNAL_ERROR, so `internal` is the union's
        // active member.
        let suberror = unsafe { self.fd.get_kvm_run().__bindgen_anon_1.internal.suberror };
        let (rip, cpl) = match (self.fd.get_regs(), self.fd.get_sregs()) {
            (Ok(regs), Ok(sregs)) => (regs.rip, sregs.cs.selector & 3),
            _ => return format!("KVM internal error {suberror} on vCPU {}", self.index),
        };
        let bytes = self
            .fd
            .translate_gva(rip)
            .ok()
            .filter(|t| t.valid != 0)
            .and_then(|t| {
                let mut buf = [0u8; 15];
                ctx.memory
                    .read_slice(&mut buf, GuestAddress(t.physical_address))
                    .ok()
                    .map(|_| buf)
            })
            .map(|buf| {
                let hex: Vec<String> = buf.iter().map(|b| format!("{b:02x}")).collect();
                format!(" (bytes {})", hex.join(" "))
            })
            .unwrap_or_default();
        let what = if suberror == KVM_INTERNAL_ERROR_EMULATION {
            "KVM could not emulate the instruction".to_string()
        } else {
            format!("KVM internal error (suberror {suberror})")
        };
        let why = if host_has_hardware_virtualization() {
            "The host CPU has VT-x/AMD-V, so this is a limit of KVM's instruction emulator."
        } else {
            "This host's KVM lacks hardware virtualization (VT-x/AMD-V) and emulates guest \
             kernel code, which stops at some instructions; on a host with hardware \
             virtualization this guest runs."
        };
        format!(
            "{what} at rip {rip:#x}{bytes} on vCPU {} at CPL {cpl}. {why}",
            self.index
        )
    }
}
