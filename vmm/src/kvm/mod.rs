//! KVM: the VM, its memory, and the vCPU threads.

pub mod kick;
pub mod memory;
pub mod vcpu;
pub mod vcpu_state;
pub mod vm;
