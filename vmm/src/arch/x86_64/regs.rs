//! The registers a vCPU starts with: general-purpose, special (segments, control registers,
//! descriptor tables) and FPU, for a kernel start or a user (CPL3) start.

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_sregs};
use serde::{Deserialize, Serialize};

use super::gdt::{self, GDT_ENTRIES, KERNEL_CODE, KERNEL_DATA, TSS, USER_CODE, USER_DATA};
use super::layout::{BOOT_PARAMS_START, GDT_START, IDT_START, PML4_START};

/// How the guest's first instruction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryMode {
    /// Ring 0, the Linux 64-bit boot protocol; only vCPU 0 starts, the others wait for SIPI.
    Kernel,
    /// Ring 3 with IOPL 3, every vCPU at the entry at once (the probe ABI).
    User,
}

impl std::fmt::Display for EntryMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EntryMode::Kernel => "kernel",
            EntryMode::User => "user",
        })
    }
}

impl std::str::FromStr for EntryMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "kernel" => Ok(EntryMode::Kernel),
            "user" => Ok(EntryMode::User),
            other => Err(format!(
                "entry mode must be `user` or `kernel`, not `{other}`"
            )),
        }
    }
}

const CR0_PE: u64 = 1 << 0;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
/// RFLAGS bit 1 is always set.
const RFLAGS_RESERVED: u64 = 1 << 1;
/// RFLAGS IOPL = 3.
const RFLAGS_IOPL3: u64 = 3 << 12;
/// Where a kernel start's stack pointer begins (below the zero page).
pub const KERNEL_BOOT_STACK: u64 = 0x8ff0;

/// What the entry registers depend on.
#[derive(Debug, Clone, Copy)]
pub struct EntryPoint {
    /// Address of the first instruction.
    pub rip: u64,
    /// This vCPU's index.
    pub index: u32,
    /// Number of vCPUs.
    pub count: u32,
    /// TSC frequency in kHz.
    pub tsc_khz: u32,
}

/// General-purpose registers at entry.
pub fn entry_regs(mode: EntryMode, entry: &EntryPoint) -> kvm_regs {
    match mode {
        EntryMode::Kernel => kvm_regs {
            rip: entry.rip,
            rsp: KERNEL_BOOT_STACK,
            rbp: KERNEL_BOOT_STACK,
            rsi: BOOT_PARAMS_START,
            rflags: RFLAGS_RESERVED,
            ..Default::default()
        },
        EntryMode::User => kvm_regs {
            rip: entry.rip,
            rdi: u64::from(entry.index),
            rsi: BOOT_PARAMS_START,
            rdx: u64::from(entry.count),
            rcx: u64::from(entry.tsc_khz),
            rsp: 0,
            rflags: RFLAGS_RESERVED | RFLAGS_IOPL3,
            ..Default::default()
        },
    }
}

/// Segment, control and descriptor-table registers at entry, applied over `base` (what KVM
/// reports for a fresh vCPU, which keeps its APIC base and interrupt bitmap).
pub fn entry_sregs(mode: EntryMode, base: kvm_sregs) -> kvm_sregs {
    let table = gdt::gdt_table();
    let (code, data, rpl) = match mode {
        EntryMode::Kernel => (KERNEL_CODE, KERNEL_DATA, 0),
        EntryMode::User => (USER_CODE, USER_DATA, 3),
    };
    let mut sregs = base;
    sregs.cs = gdt::segment(&table, code, rpl);
    let data_seg = gdt::segment(&table, data, rpl);
    sregs.ds = data_seg;
    sregs.es = data_seg;
    sregs.fs = data_seg;
    sregs.gs = data_seg;
    sregs.ss = data_seg;
    sregs.tr = gdt::segment(&table, TSS, 0);
    sregs.ldt = gdt::null_ldt();
    sregs.gdt.base = GDT_START;
    sregs.gdt.limit = (GDT_ENTRIES * 8 - 1) as u16;
    sregs.idt.base = IDT_START;
    sregs.idt.limit = match mode {
        EntryMode::Kernel => 7,
        // No IDT at all: any exception at CPL3 becomes a triple fault the VMM reports.
        EntryMode::User => 0,
    };
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    sregs.cr3 = PML4_START;
    sregs.cr4 = match mode {
        EntryMode::Kernel => CR4_PAE,
        EntryMode::User => CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT,
    };
    sregs.efer = EFER_LME | EFER_LMA;
    sregs
}

/// FPU state at entry: x87 control word and MXCSR at their reset values.
pub fn entry_fpu() -> kvm_fpu {
    kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: EntryPoint = EntryPoint {
        rip: 0x20_1000,
        index: 2,
        count: 4,
        tsc_khz: 2_000_000,
    };

    #[test]
    fn user_start_passes_the_probe_abi() {
        let regs = entry_regs(EntryMode::User, &ENTRY);
        assert_eq!(regs.rip, 0x20_1000);
        assert_eq!(
            (regs.rdi, regs.rsi, regs.rdx, regs.rcx),
            (2, 0x7000, 4, 2_000_000)
        );
        assert_eq!(regs.rflags, 0x3002);
    }

    #[test]
    fn kernel_start_follows_the_boot_protocol() {
        let regs = entry_regs(EntryMode::Kernel, &ENTRY);
        assert_eq!(regs.rsi, BOOT_PARAMS_START);
        assert_eq!(regs.rflags, 2);
        let sregs = entry_sregs(EntryMode::Kernel, kvm_sregs::default());
        assert_eq!((sregs.cs.selector, sregs.ds.selector), (0x10, 0x18));
        assert_eq!(sregs.cs.dpl, 0);
    }

    #[test]
    fn user_start_satisfies_entry_checks() {
        let sregs = entry_sregs(EntryMode::User, kvm_sregs::default());
        assert_eq!((sregs.cs.dpl, sregs.ss.dpl), (3, 3));
        assert_eq!((sregs.cs.selector & 3, sregs.ss.selector & 3), (3, 3));
        assert_eq!((sregs.tr.type_, sregs.tr.present), (0xb, 1));
        assert_eq!(sregs.ldt.unusable, 1);
        assert_ne!(sregs.cr0 & CR0_PE, 0);
        assert_ne!(sregs.cr0 & CR0_PG, 0);
        assert_ne!(sregs.cr4 & CR4_PAE, 0);
        assert_ne!(sregs.cr4 & CR4_OSFXSR, 0);
        assert_eq!(sregs.efer & (EFER_LME | EFER_LMA), EFER_LME | EFER_LMA);
        assert_eq!(sregs.cr3, PML4_START);
    }

    #[test]
    fn entry_mode_parses() {
        assert_eq!("user".parse::<EntryMode>(), Ok(EntryMode::User));
        assert!("ring0".parse::<EntryMode>().unwrap_err().contains("user"));
    }
}
