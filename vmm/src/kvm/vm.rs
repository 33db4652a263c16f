//! The KVM VM: `/dev/kvm`, the VM file descriptor, the in-kernel interrupt controllers and PIT.

use kvm_bindings::{CpuId, KVM_MAX_CPUID_ENTRIES, KVM_PIT_SPEAKER_DUMMY, kvm_pit_config};
use kvm_ioctls::{Kvm, VmFd};

use crate::arch::x86_64::layout::KVM_TSS_ADDRESS;

/// Why the VM could not be created.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// `/dev/kvm` is missing or not accessible.
    #[error("cannot open /dev/kvm: this host needs KVM, and the vmm needs read-write access to it")]
    OpenKvm(#[source] kvm_ioctls::Error),
    /// KVM_CREATE_VM failed.
    #[error("KVM refused to create a VM")]
    CreateVm(#[source] kvm_ioctls::Error),
    /// KVM_SET_TSS_ADDR failed.
    #[error("KVM refused the TSS address")]
    TssAddress(#[source] kvm_ioctls::Error),
    /// KVM_CREATE_IRQCHIP failed.
    #[error("KVM refused to create the in-kernel interrupt controllers")]
    IrqChip(#[source] kvm_ioctls::Error),
    /// KVM_CREATE_PIT2 failed.
    #[error("KVM refused to create the in-kernel PIT")]
    Pit(#[source] kvm_ioctls::Error),
    /// KVM_GET_SUPPORTED_CPUID failed.
    #[error("KVM did not report its supported CPUID")]
    SupportedCpuid(#[source] kvm_ioctls::Error),
    /// An irqfd could not be registered.
    #[error("KVM refused an irqfd for GSI {gsi}")]
    Irqfd {
        /// The interrupt line.
        gsi: u32,
        /// The cause.
        #[source]
        source: kvm_ioctls::Error,
    },
}

/// One KVM virtual machine.
#[derive(Debug)]
pub struct Vm {
    kvm: Kvm,
    fd: VmFd,
}

impl Vm {
    /// Opens `/dev/kvm` and creates an empty VM.
    pub fn new() -> Result<Self, VmError> {
        let kvm = Kvm::new().map_err(VmError::OpenKvm)?;
        let fd = kvm.create_vm().map_err(VmError::CreateVm)?;
        fd.set_tss_address(KVM_TSS_ADDRESS as usize)
            .map_err(VmError::TssAddress)?;
        Ok(Vm { kvm, fd })
    }

    /// The VM's file descriptor.
    pub fn fd(&self) -> &VmFd {
        &self.fd
    }

    /// Most vCPUs KVM allows in one VM.
    pub fn max_vcpus(&self) -> u32 {
        self.kvm.get_max_vcpus() as u32
    }

    /// What CPUID KVM can present to a guest.
    pub fn supported_cpuid(&self) -> Result<CpuId, VmError> {
        self.kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(VmError::SupportedCpuid)
    }

    /// Creates the in-kernel PIC, IOAPIC, local APICs and PIT. Must come before the vCPUs.
    pub fn setup_irqchip(&self) -> Result<(), VmError> {
        self.fd.create_irq_chip().map_err(VmError::IrqChip)?;
        let pit = kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        self.fd.create_pit2(pit).map_err(VmError::Pit)
    }

    /// Routes writes to `fd` into interrupt line `gsi`.
    pub fn register_irqfd(
        &self,
        fd: &vmm_sys_util::eventfd::EventFd,
        gsi: u32,
    ) -> Result<(), VmError> {
        self.fd
            .register_irqfd(fd, gsi)
            .map_err(|source| VmError::Irqfd { gsi, source })
    }
}
