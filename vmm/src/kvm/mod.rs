//! KVM: the VM, its memory, and the vCPU threads.

pub mod kick;
pub mod memory;
pub mod vcpu;
pub mod vm;
