//! `_start`, the per-vCPU stacks and the ELF note that asks the vmm for a CPL3 start.
//!
//! At entry (docs/probe-abi.md): `rdi` = vCPU index, `rsi` = boot_params address, `rdx` =
//! vCPU count, `rcx` = TSC kHz, `rsp` = 0. These are already the first four System V argument
//! registers, so `_start` only points `rsp` at the vCPU's stack and calls `probe_main`.

use core::arch::global_asm;
use core::cell::UnsafeCell;

/// vCPUs that get a stack; any beyond idle in `_start` without running Rust code.
pub const MAX_VCPUS: usize = 64;
/// Stack size of each vCPU (a power of two: `_start` shifts by its log2).
pub const STACK_SIZE: usize = 64 * 1024;
const _: () = assert!(STACK_SIZE.is_power_of_two());

/// The vCPU stacks, in `.bss`; vCPU `i` uses `[i * STACK_SIZE, (i + 1) * STACK_SIZE)`.
#[repr(C, align(16))]
struct Stacks(UnsafeCell<[[u8; STACK_SIZE]; MAX_VCPUS]>);

// SAFETY: Rust code never touches the stacks as data; each vCPU uses only its own as a stack.
unsafe impl Sync for Stacks {}

static STACKS: Stacks = Stacks(UnsafeCell::new([[0; STACK_SIZE]; MAX_VCPUS]));

global_asm!(
    ".pushsection .text._start, \"ax\", @progbits",
    ".globl _start",
    ".type _start, @function",
    "_start:",
    // Indexes past the stacks get no stack: idle on the wait port for good.
    "    cmp rdi, {max_vcpus}",
    "    jae 2f",
    // rsp = top of this vCPU's stack = STACKS + (index + 1) * STACK_SIZE (16-byte aligned).
    "    lea rax, [rdi + 1]",
    "    shl rax, {stack_shift}",
    "    lea rsp, [rip + {stacks}]",
    "    add rsp, rax",
    "    xor ebp, ebp",
    // probe_main(rdi = index, rsi = boot_params, rdx = count, rcx = tsc_khz) -> !
    "    call {probe_main}",
    "    ud2",
    "2:",
    "    mov edx, {wait_port}",
    "3:",
    "    mov eax, 0xffffffff",
    "    out dx, eax",
    "    in eax, dx",
    "    jmp 3b",
    ".size _start, . - _start",
    ".popsection",
    // The entry-mode note: name "kec2", type 1, desc u32 1 (user, CPL3).
    ".pushsection .note.kec2, \"a\", @note",
    ".balign 4",
    "    .long 5",
    "    .long 4",
    "    .long 1",
    "    .asciz \"kec2\"",
    "    .balign 4",
    "    .long 1",
    "    .balign 4",
    ".popsection",
    max_vcpus = const MAX_VCPUS,
    stack_shift = const STACK_SIZE.trailing_zeros(),
    stacks = sym STACKS,
    probe_main = sym crate::probe_main,
    wait_port = const probe::ports::WAIT,
);
