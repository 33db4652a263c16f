//! The seccomp-BPF allowlist of a running VMM: the system calls its vCPU, device and API
//! threads make once the VM is built, and for `ioctl` only the KVM and tap requests they send
//! to descriptors opened before. Anything else kills the whole process with SIGSYS.
//!
//! Not on the list, among others: `execve`, `socket`, `connect`, `bind`, `mount`, `ptrace`,
//! `setuid`, `kill` (only `tgkill` on its own threads), `open` of device nodes (no `/dev` in
//! the jail) and every KVM request that creates a VM, a vCPU or a memory slot.

use std::collections::BTreeMap;

use kvm_bindings::{
    KVMIO, kvm_clock_data, kvm_cpuid2, kvm_debugregs, kvm_fpu, kvm_irqchip, kvm_lapic_state,
    kvm_mp_state, kvm_msrs, kvm_pit_state2, kvm_regs, kvm_sregs, kvm_translation, kvm_vcpu_events,
    kvm_xcrs, kvm_xsave,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use vmm_sys_util::{ioctl_io_nr, ioctl_ior_nr, ioctl_iow_nr, ioctl_iowr_nr};

/// Why the filter could not be built or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The rules did not compile to BPF.
    #[error("the seccomp rules do not compile")]
    Compile(#[source] seccompiler::BackendError),
    /// The kernel refused the filter.
    #[error("the kernel refused the seccomp filter")]
    Install(#[source] seccompiler::Error),
}

ioctl_io_nr!(KVM_RUN, KVMIO, 0x80);
ioctl_ior_nr!(KVM_GET_REGS, KVMIO, 0x81, kvm_regs);
ioctl_iow_nr!(KVM_SET_REGS, KVMIO, 0x82, kvm_regs);
ioctl_ior_nr!(KVM_GET_SREGS, KVMIO, 0x83, kvm_sregs);
ioctl_iow_nr!(KVM_SET_SREGS, KVMIO, 0x84, kvm_sregs);
ioctl_iowr_nr!(KVM_GET_MSRS, KVMIO, 0x88, kvm_msrs);
ioctl_iow_nr!(KVM_SET_MSRS, KVMIO, 0x89, kvm_msrs);
ioctl_ior_nr!(KVM_GET_FPU, KVMIO, 0x8c, kvm_fpu);
ioctl_iow_nr!(KVM_SET_FPU, KVMIO, 0x8d, kvm_fpu);
ioctl_ior_nr!(KVM_GET_LAPIC, KVMIO, 0x8e, kvm_lapic_state);
ioctl_iow_nr!(KVM_SET_LAPIC, KVMIO, 0x8f, kvm_lapic_state);
ioctl_iowr_nr!(KVM_GET_CPUID2, KVMIO, 0x91, kvm_cpuid2);
ioctl_ior_nr!(KVM_GET_MP_STATE, KVMIO, 0x98, kvm_mp_state);
ioctl_iow_nr!(KVM_SET_MP_STATE, KVMIO, 0x99, kvm_mp_state);
ioctl_ior_nr!(KVM_GET_VCPU_EVENTS, KVMIO, 0x9f, kvm_vcpu_events);
ioctl_iow_nr!(KVM_SET_VCPU_EVENTS, KVMIO, 0xa0, kvm_vcpu_events);
ioctl_ior_nr!(KVM_GET_DEBUGREGS, KVMIO, 0xa1, kvm_debugregs);
ioctl_iow_nr!(KVM_SET_DEBUGREGS, KVMIO, 0xa2, kvm_debugregs);
ioctl_ior_nr!(KVM_GET_XSAVE, KVMIO, 0xa4, kvm_xsave);
ioctl_ior_nr!(KVM_GET_XSAVE2, KVMIO, 0xcf, kvm_xsave);
ioctl_iow_nr!(KVM_SET_XSAVE, KVMIO, 0xa5, kvm_xsave);
ioctl_ior_nr!(KVM_GET_XCRS, KVMIO, 0xa6, kvm_xcrs);
ioctl_iow_nr!(KVM_SET_XCRS, KVMIO, 0xa7, kvm_xcrs);
ioctl_io_nr!(KVM_KVMCLOCK_CTRL, KVMIO, 0xad);
ioctl_io_nr!(KVM_GET_TSC_KHZ, KVMIO, 0xa3);
ioctl_iowr_nr!(KVM_TRANSLATE, KVMIO, 0x85, kvm_translation);
ioctl_iowr_nr!(KVM_GET_IRQCHIP, KVMIO, 0x62, kvm_irqchip);
ioctl_ior_nr!(KVM_SET_IRQCHIP, KVMIO, 0x63, kvm_irqchip);
ioctl_iow_nr!(KVM_SET_CLOCK, KVMIO, 0x7b, kvm_clock_data);
ioctl_ior_nr!(KVM_GET_CLOCK, KVMIO, 0x7c, kvm_clock_data);
ioctl_ior_nr!(KVM_GET_PIT2, KVMIO, 0x9f, kvm_pit_state2);
ioctl_iow_nr!(KVM_SET_PIT2, KVMIO, 0xa0, kvm_pit_state2);

/// The tap requests a running virtio-net card sends when the guest negotiates offloads.
const TUNSETOFFLOAD: u64 = 0x4004_54d0;
const TUNSETVNETHDRSZ: u64 = 0x4004_54d8;
/// `ioctl(FIONBIO)`, which the standard library uses to make a descriptor non-blocking.
const FIONBIO: u64 = 0x5421;

/// The `ioctl` requests a running VMM sends.
fn ioctl_requests() -> Vec<u64> {
    let kvm = [
        KVM_RUN(),
        KVM_GET_REGS(),
        KVM_SET_REGS(),
        KVM_GET_SREGS(),
        KVM_SET_SREGS(),
        KVM_GET_MSRS(),
        KVM_SET_MSRS(),
        KVM_GET_FPU(),
        KVM_SET_FPU(),
        KVM_GET_LAPIC(),
        KVM_SET_LAPIC(),
        KVM_GET_CPUID2(),
        KVM_GET_MP_STATE(),
        KVM_SET_MP_STATE(),
        KVM_GET_VCPU_EVENTS(),
        KVM_SET_VCPU_EVENTS(),
        KVM_GET_DEBUGREGS(),
        KVM_SET_DEBUGREGS(),
        KVM_GET_XSAVE(),
        KVM_GET_XSAVE2(),
        KVM_SET_XSAVE(),
        KVM_GET_XCRS(),
        KVM_SET_XCRS(),
        KVM_KVMCLOCK_CTRL(),
        KVM_GET_TSC_KHZ(),
        KVM_TRANSLATE(),
        KVM_GET_IRQCHIP(),
        KVM_SET_IRQCHIP(),
        KVM_SET_CLOCK(),
        KVM_GET_CLOCK(),
        KVM_GET_PIT2(),
        KVM_SET_PIT2(),
    ];
    let mut all: Vec<u64> = kvm.to_vec();
    all.extend([TUNSETOFFLOAD, TUNSETVNETHDRSZ, FIONBIO]);
    all.sort_unstable();
    all.dedup();
    all
}

/// System calls allowed with any arguments.
const ALLOWED: &[i64] = &[
    // Memory: the allocator, thread stacks.
    libc::SYS_brk,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    // Threads, their signals and their locks.
    libc::SYS_clone,
    libc::SYS_clone3,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_futex,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_gettid,
    libc::SYS_getpid,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    // A sleep or wait interrupted by a stop signal or a debugger resumes through this.
    libc::SYS_restart_syscall,
    libc::SYS_sigaltstack,
    libc::SYS_exit,
    libc::SYS_exit_group,
    // Time and waiting.
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_timerfd_create,
    libc::SYS_timerfd_settime,
    libc::SYS_timerfd_gettime,
    libc::SYS_epoll_create1,
    libc::SYS_epoll_ctl,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_eventfd2,
    libc::SYS_poll,
    libc::SYS_ppoll,
    // I/O on descriptors opened before the jail: disks, tap, console, eventfds.
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_preadv2,
    libc::SYS_pwritev2,
    libc::SYS_lseek,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_fallocate,
    libc::SYS_ftruncate,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_fcntl,
    libc::SYS_close,
    libc::SYS_getrandom,
    // virtio-blk's io_uring engine: submitting and waiting (the ring is set up and its
    // eventfd registered before the jail, so neither io_uring_setup nor io_uring_register).
    libc::SYS_io_uring_enter,
    // Snapshot files, inside the jail only: create, rename over, sync the directory.
    libc::SYS_openat,
    libc::SYS_rename,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_unlink,
    libc::SYS_unlinkat,
    // The control socket (bound before the jail) and its connections.
    libc::SYS_accept4,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    libc::SYS_shutdown,
];

/// `prctl` options a running VMM uses: naming its threads.
const PRCTL_OPTIONS: &[u64] = &[libc::PR_SET_NAME as u64];

/// A rule matching calls whose argument `arg` (below 6) equals `value`.
fn arg_equals(arg: u8, value: u64) -> SeccompRule {
    let condition = SeccompCondition::new(arg, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, value)
        .expect("argument indices below 6 are valid");
    SeccompRule::new(vec![condition]).expect("a rule with one condition is valid")
}

/// The rules: every allowed call, `ioctl` by request, `prctl` by option, and `tgkill` (which
/// kicks vCPU threads) to this process's own threads only.
fn rules() -> BTreeMap<i64, Vec<SeccompRule>> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        ALLOWED.iter().map(|&nr| (nr, Vec::new())).collect();
    let own = u64::from(std::process::id());
    rules.insert(libc::SYS_tgkill, vec![arg_equals(0, own)]);
    let ioctls = ioctl_requests().into_iter().map(|r| arg_equals(1, r));
    rules.insert(libc::SYS_ioctl, ioctls.collect());
    let prctls = PRCTL_OPTIONS.iter().map(|&o| arg_equals(0, o));
    rules.insert(libc::SYS_prctl, prctls.collect());
    rules
}

/// The compiled filter: allowed calls proceed, anything else kills the process with SIGSYS.
pub fn program() -> Result<BpfProgram, SeccompError> {
    let filter = SeccompFilter::new(
        rules(),
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(SeccompError::Compile)?;
    BpfProgram::try_from(filter).map_err(SeccompError::Compile)
}

/// Installs the filter on the calling thread (and the threads it spawns afterwards).
pub fn install() -> Result<(), SeccompError> {
    let program = program()?;
    seccompiler::apply_filter(&program).map_err(SeccompError::Install)
}

#[cfg(test)]
mod tests;
