//! x86_64: guest memory layout, boot structures, and the vCPU's initial state.

pub mod acpi;
pub mod boot_params;
pub mod cpuid;
pub mod dsdt;
pub mod gdt;
pub mod layout;
pub mod mptable;
pub mod msr;
pub mod paging;
pub mod regs;
pub mod sdt;
pub mod smbios;
