//! The probe image: entry, runtime glue and the dispatch on `probe.mode=`.
//! The logic lives in the `probe` library; the contract with the vmm is docs/probe-abi.md.

#![no_std]
#![no_main]

mod entry;

use core::panic::PanicInfo;

use probe::bootinfo::{self, BootInfo};
use probe::cmdline::Mode;
use probe::console::{self, ByteStr};
use probe::heap::Heap;
use probe::keyboard::Keyboard;
use probe::power::{self, FAILURE, SUCCESS};
use probe::selftest::{self, Outcome, Range};
use probe::time::{Clock, FALLBACK_TSC_KHZ};
use probe::{count, say, vcpus, wait};

/// Size of the heap behind the global allocator, in `.bss`.
const HEAP_SIZE: usize = 4 << 20;

#[global_allocator]
static HEAP: Heap<HEAP_SIZE> = Heap::new();

unsafe extern "C" {
    /// First byte of the loaded image (linker script).
    static __image_start: u8;
    /// One past the last byte of the loaded image, `.bss` included (linker script).
    static __image_end: u8;
}

/// Where every vCPU lands from `_start`, on its own stack, with the ABI's entry registers.
extern "C" fn probe_main(index: u64, boot_params: u64, count: u64, tsc_khz: u64) -> ! {
    say!("vcpu {index} of {count} up");
    vcpus::report_up();
    if index != 0 {
        wait::idle_forever();
    }

    let clock = Clock::new(tsc_khz);
    if tsc_khz == 0 {
        say!("tsc frequency unknown, assuming {FALLBACK_TSC_KHZ} kHz");
    }
    let mut keyboard = Keyboard::new();
    if let Err(up) = vcpus::wait_for_all(count, clock, &mut keyboard) {
        say!("only {up} of {count} vcpus came up");
    }

    // SAFETY: `rsi` at entry is the address of the identity-mapped boot_params page.
    let info = unsafe { BootInfo::from_address(boot_params) };
    // SAFETY: `cmd_line_ptr` is the vmm's command line, below 1 MiB, never written.
    let cmdline = unsafe { bootinfo::cmdline_at(info.cmd_line_ptr) };
    let memory = info.e820.highest_usable_end().unwrap_or(0);
    say!("memory {} MiB", bootinfo::to_mib_rounded(memory));
    say!("cmdline {}", ByteStr(cmdline));

    match Mode::from_cmdline(cmdline) {
        Mode::Selftest => {
            // SAFETY: the e820 table is the vmm's, and the image range (linker symbols) covers
            // all the probe's code, data, stacks and heap; the rest above 1 MiB is free RAM.
            match unsafe { selftest::run(info.e820.entries(), image_range()) } {
                Outcome::Passed { checksum } => {
                    say!("selftest ok {checksum:016x}");
                    power::power_off(SUCCESS)
                }
                Outcome::Failed { address } => {
                    say!("selftest FAILED at {address:#x}");
                    power::power_off(FAILURE)
                }
            }
        }
        Mode::Count => count::run(clock, &mut keyboard),
        Mode::Poweroff => power::power_off(SUCCESS),
        Mode::Unknown(value) => {
            say!("unknown probe.mode={}", ByteStr(value));
            power::power_off(FAILURE)
        }
    }
}

/// The loaded image, `.bss` (stacks and heap) included.
fn image_range() -> Range {
    Range {
        start: (&raw const __image_start).addr() as u64,
        end: (&raw const __image_end).addr() as u64,
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    // Unlocked: this vCPU may hold the console lock. (`PanicInfo`'s own Display spans two
    // lines; the location and message are printed on one.)
    match info.location() {
        Some(at) => console::print_line_unlocked(format_args!(
            "panic at {}:{}: {}",
            at.file(),
            at.line(),
            info.message()
        )),
        None => console::print_line_unlocked(format_args!("panic: {}", info.message())),
    }
    console::print_line_unlocked(format_args!("power off {FAILURE}"));
    power::power_off_quietly(FAILURE)
}

/// Referenced by the prebuilt `alloc`, which is compiled for unwinding; never called with
/// `panic = "abort"`.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}
