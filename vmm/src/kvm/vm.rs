//! The KVM VM: `/dev/kvm`, the VM file descriptor, the in-kernel interrupt controllers and PIT.

use kvm_bindings::{
    CpuId, KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE,
    KVM_MAX_CPUID_ENTRIES, KVM_PIT_SPEAKER_DUMMY, kvm_clock_data, kvm_irqchip, kvm_pit_config,
    kvm_pit_state2,
};
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
    /// KVM_GET_IRQCHIP or KVM_SET_IRQCHIP failed on a PIC.
    #[error("KVM refused to set up the {0}")]
    Pic(&'static str, #[source] kvm_ioctls::Error),
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

/// The VM-wide state KVM holds: interrupt controllers, PIT and kvmclock.
#[derive(Debug, Clone)]
pub struct VmState {
    /// The master 8259 PIC.
    pub pic_master: kvm_irqchip,
    /// The slave 8259 PIC.
    pub pic_slave: kvm_irqchip,
    /// The IOAPIC.
    pub ioapic: kvm_irqchip,
    /// The 8254 PIT.
    pub pit: kvm_pit_state2,
    /// The kvmclock reference (KVM_GET_CLOCK).
    pub clock: kvm_clock_data,
}

/// Why the VM-wide state could not be read or written back.
#[derive(Debug, thiserror::Error)]
pub enum VmStateError {
    /// A KVM_GET_* ioctl failed.
    #[error("KVM could not read the VM's {0}")]
    Read(&'static str, #[source] kvm_ioctls::Error),
    /// A KVM_SET_* ioctl failed.
    #[error("KVM refused the saved {0}")]
    Write(&'static str, #[source] kvm_ioctls::Error),
}

const CHIPS: [(u32, &str); 3] = [
    (KVM_IRQCHIP_PIC_MASTER, "master PIC"),
    (KVM_IRQCHIP_PIC_SLAVE, "slave PIC"),
    (KVM_IRQCHIP_IOAPIC, "IOAPIC"),
];

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
        self.mask_pics()?;
        let pit = kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        self.fd.create_pit2(pit).map_err(VmError::Pit)
    }

    /// Leaves both 8259 PICs as PC firmware does: initialised (vectors 0x08 and 0x70) with
    /// every line masked. KVM creates them zeroed (vector base 0, nothing masked) and routes
    /// ISA lines 0-15 to them as well as to the IOAPIC, and the bootstrap vCPU's LINT0 takes
    /// ExtINT: a guest that never programs the PICs (under hardware-reduced ACPI Linux does
    /// not) would take each device interrupt a second time, as CPU exception vectors 0-15. A
    /// guest that uses the PICs programs them anyway.
    fn mask_pics(&self) -> Result<(), VmError> {
        for (chip_id, name, vector_base) in [
            (KVM_IRQCHIP_PIC_MASTER, "master PIC", 0x08),
            (KVM_IRQCHIP_PIC_SLAVE, "slave PIC", 0x70),
        ] {
            let mut chip = kvm_irqchip {
                chip_id,
                ..Default::default()
            };
            self.fd
                .get_irqchip(&mut chip)
                .map_err(|e| VmError::Pic(name, e))?;
            // SAFETY: `chip_id` names a PIC, so KVM filled the union's `pic` member, and every
            // bit pattern is a valid `kvm_pic_state` (plain bytes).
            let pic = unsafe { &mut chip.chip.pic };
            pic.imr = 0xff;
            pic.irq_base = vector_base;
            self.fd
                .set_irqchip(&chip)
                .map_err(|e| VmError::Pic(name, e))?;
        }
        Ok(())
    }

    /// Reads the interrupt controllers, PIT and clock (vCPUs paused).
    pub fn save_state(&self) -> Result<VmState, VmStateError> {
        let mut chips = CHIPS.map(|(chip_id, _)| kvm_irqchip {
            chip_id,
            ..Default::default()
        });
        for (chip, (_, name)) in chips.iter_mut().zip(CHIPS) {
            self.fd
                .get_irqchip(chip)
                .map_err(|e| VmStateError::Read(name, e))?;
        }
        let [pic_master, pic_slave, ioapic] = chips;
        Ok(VmState {
            pic_master,
            pic_slave,
            ioapic,
            pit: self
                .fd
                .get_pit2()
                .map_err(|e| VmStateError::Read("PIT", e))?,
            clock: self
                .fd
                .get_clock()
                .map_err(|e| VmStateError::Read("clock", e))?,
        })
    }

    /// Writes saved interrupt controllers, PIT and clock back (after `setup_irqchip`).
    pub fn restore_state(&self, state: &VmState) -> Result<(), VmStateError> {
        for (chip, (_, name)) in [&state.pic_master, &state.pic_slave, &state.ioapic]
            .into_iter()
            .zip(CHIPS)
        {
            self.fd
                .set_irqchip(chip)
                .map_err(|e| VmStateError::Write(name, e))?;
        }
        self.fd
            .set_pit2(&state.pit)
            .map_err(|e| VmStateError::Write("PIT", e))?;
        // Only the clock value is restored; the flags described the host that saved it.
        let clock = kvm_clock_data {
            clock: state.clock.clock,
            ..Default::default()
        };
        self.fd
            .set_clock(&clock)
            .map_err(|e| VmStateError::Write("clock", e))
    }

    /// The MSRs KVM can save and restore for a vCPU.
    pub fn msr_indices(&self) -> Vec<u32> {
        self.kvm
            .get_msr_index_list()
            .map(|list| list.as_slice().to_vec())
            .unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The interrupt mask and vector base of a saved PIC.
    fn mask_and_base(chip: &kvm_irqchip) -> (u8, u8) {
        // SAFETY: as in `mask_pics`.
        let pic = unsafe { chip.chip.pic };
        (pic.imr, pic.irq_base)
    }

    #[test]
    fn the_pics_start_masked_with_the_firmware_vectors() {
        let Ok(vm) = Vm::new() else {
            eprintln!("no /dev/kvm: skipped");
            return;
        };
        vm.setup_irqchip().unwrap();
        let state = vm.save_state().unwrap();
        assert_eq!(mask_and_base(&state.pic_master), (0xff, 0x08));
        assert_eq!(mask_and_base(&state.pic_slave), (0xff, 0x70));
    }
}
