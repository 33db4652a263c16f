//! The probe image: entry, runtime glue and the dispatch on `probe.mode=`.
//! The logic lives in the `probe` library; the contract with the vmm is docs/probe-abi.md.

#![no_std]
#![no_main]

extern crate alloc;

mod entry;

use alloc::vec::Vec;
use core::panic::PanicInfo;

use probe::bootinfo::{self, BootInfo};
use probe::burn::{self, Phase};
use probe::cmdline::{self, DiskMode, Mode, NetConfig, Options};
use probe::console::{self, ByteStr};
use probe::frames::{self, FramesMode};
use probe::heap::Heap;
use probe::keyboard::Keyboard;
use probe::netstack::{self, Stack};
use probe::power::{self, FAILURE, SUCCESS};
use probe::selftest::{self, Outcome, Range};
use probe::time::{Clock, FALLBACK_TSC_KHZ};
use probe::userdata::UserDataOptions;
use probe::virtio::blk::Blk;
use probe::virtio::mmio::InitError;
use probe::virtio::net::VirtioNet;
use probe::{count, disk, imds, say, userdata, vcpus, virtio};

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
    let clock = Clock::new(tsc_khz);
    if index != 0 {
        // Idle on the wait port, burning at the share vCPU 0 sets (`probe.burn=`).
        burn::serve_other_vcpu(clock);
    }

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

    let options = Options::from_cmdline(cmdline);
    let boot_burn = options.burn().unwrap_or_else(|value| {
        say!("bad probe.burn={}", ByteStr(value));
        power::power_off(FAILURE)
    });
    let answer_arp = options.answer_arp().unwrap_or_else(|value| {
        say!("bad probe.arp={}", ByteStr(value));
        power::power_off(FAILURE)
    });
    if let Some(share) = boot_burn {
        burn::SHARED.set(share);
    }
    // The other vCPUs look at the share now and then until no boot step can change it
    // without a device event (user-data comes with the metadata fetch).
    burn::SHARED.enter(if options.imds().is_some() {
        Phase::Pending
    } else {
        Phase::Settled
    });
    if let Some(value) = cmdline::param(cmdline, frames::FRAMES_KEY) {
        run_frames(value, &info, cmdline, clock);
    }
    if options.classic() {
        if boot_burn.is_some() && options.mode.is_none() {
            burn::run(clock, &mut keyboard);
        }
        run_mode(Mode::from_cmdline(cmdline), &info, clock, &mut keyboard);
    }

    // Disk and network work: buffers and rings come from the heap, which gets all free RAM
    // unless the self-test will run afterwards (it overwrites free RAM).
    let mode = options.mode.map(Mode::from_value);
    if options.wants_net() || mode != Some(Mode::Selftest) {
        selftest::free_ranges(info.e820.entries(), image_range(), |range| {
            // SAFETY: free RAM above 1 MiB outside the image is used by nothing else, and the
            // heap keeps it for good.
            unsafe { HEAP.add_region(range.start as *mut u8, (range.end - range.start) as usize) };
        });
    }
    let devices = virtio::discover(cmdline);
    let mut ok = true;
    if let Some(disk_mode) = options.disk {
        if let DiskMode::Unknown(value) = disk_mode {
            say!("unknown probe.disk={}", ByteStr(value));
            power::power_off(FAILURE);
        }
        match devices.block.first() {
            None => say!("disk none"),
            Some(&dev) => match Blk::init(dev, clock) {
                Ok(mut blk) => ok &= disk::run(&mut blk, disk_mode, clock),
                Err(InitError::NeedsReset) => {
                    say!("disk needs reset");
                    ok = false;
                }
                Err(e) => {
                    say!("disk init failed: {e}");
                    ok = false;
                }
            },
        }
    }
    if options.wants_net() {
        let net_value = options.net.unwrap_or(b"dhcp");
        let Some(config) = NetConfig::parse(net_value) else {
            say!("bad probe.net={}", ByteStr(net_value));
            power::power_off(FAILURE)
        };
        let Some(source_bytes) = options.source_bytes() else {
            say!(
                "bad probe.source_bytes={}",
                ByteStr(options.source_bytes.unwrap_or_default())
            );
            power::power_off(FAILURE)
        };
        let imds_version = match options.imds() {
            None => None,
            Some(Ok(version)) => Some(version),
            Some(Err(value)) => {
                say!("bad probe.imds={}", ByteStr(value));
                power::power_off(FAILURE)
            }
        };
        let imds_bench = options.imds_bench().unwrap_or_else(|value| {
            say!("bad probe.imds_bench={}", ByteStr(value));
            power::power_off(FAILURE)
        });
        let cmdline_ping = options.ping.unwrap_or_default();
        let Some(mut ping) = options
            .ping
            .map_or(Some(Vec::new()), cmdline::parse_ping_targets)
        else {
            say!("bad probe.ping={}", ByteStr(cmdline_ping));
            power::power_off(FAILURE)
        };
        let Some(&dev) = devices.net.first() else {
            say!("net none");
            power::power_off(FAILURE)
        };
        let net = match VirtioNet::init(dev) {
            Ok(net) => net,
            Err(InitError::NeedsReset) => {
                say!("net needs reset");
                power::power_off(FAILURE)
            }
            Err(e) => {
                say!("net init failed: {e}");
                power::power_off(FAILURE)
            }
        };
        let mut stack = Stack::new(
            net,
            config,
            options.http_name(),
            source_bytes,
            clock,
            keyboard,
        );
        if let Some(on) = answer_arp {
            stack.set_answer_arp(on);
        }
        let mut user_data = None;
        if let Some(version) = imds_version {
            while !stack.wait_for_address(1000) {}
            let metadata = imds::fetch(&mut stack, version);
            if options.http_from_imds() {
                let name = metadata.instance_id.as_deref();
                stack.set_http_name(name.unwrap_or(cmdline::IMDS_UNAVAILABLE_NAME));
            }
            if imds_bench > 0 {
                imds::bench(&mut stack, metadata.token.as_deref(), imds_bench);
            }
            user_data = metadata.user_data;
        }
        // Options in the user-data replace the command line's (as if appended to it).
        let mut fetch = options.fetch;
        if let Some(extra) = user_data.as_deref().and_then(userdata::parse) {
            apply_user_data(&extra, &mut stack, &mut ping, &mut fetch);
        }
        burn::SHARED.enter(Phase::Settled);
        if !ping.is_empty() {
            while !stack.wait_for_address(1000) {}
            netstack::ping_all(&mut stack, &ping);
        }
        if let Some(url) = fetch {
            while !stack.wait_for_address(1000) {}
            netstack::fetch(&mut stack, url);
        }
        stack.serve_forever()
    }
    match mode {
        Some(mode) => run_mode(mode, &info, clock, &mut keyboard),
        // `probe.burn=` keeps the probe running after the disk work.
        None if boot_burn.is_some() => burn::run(clock, &mut keyboard),
        None => power::power_off(if ok { SUCCESS } else { FAILURE }),
    }
}

/// `probe.frames=`: raw frames on the first net device, then power off.
fn run_frames(value: &[u8], info: &BootInfo, cmdline: &[u8], clock: Clock) -> ! {
    let Some(mode) = FramesMode::parse(value) else {
        say!("bad probe.frames={}", ByteStr(value));
        power::power_off(FAILURE)
    };
    selftest::free_ranges(info.e820.entries(), image_range(), |range| {
        // SAFETY: free RAM above 1 MiB outside the image is used by nothing else, and the
        // heap keeps it for good.
        unsafe { HEAP.add_region(range.start as *mut u8, (range.end - range.start) as usize) };
    });
    let Some(&dev) = virtio::discover(cmdline).net.first() else {
        say!("net none");
        power::power_off(FAILURE)
    };
    let ok = frames::run(dev, mode, clock);
    power::power_off(if ok { SUCCESS } else { FAILURE })
}

/// Applies the options in user-data that still apply after boot, replacing the command
/// line's: `probe.ping=` (into `ping`), `probe.fetch=` (into `fetch`), `probe.burn=` and
/// `probe.arp=`. A bad value is reported and changes nothing (no pings for a bad list).
fn apply_user_data<'a>(
    extra: &UserDataOptions<'a>,
    stack: &mut Stack,
    ping: &mut Vec<[u8; 4]>,
    fetch: &mut Option<&'a [u8]>,
) {
    extra.announce(console::print_line);
    if let Some(value) = extra.ping {
        match cmdline::parse_ping_targets(value) {
            Some(targets) => *ping = targets,
            None => {
                say!("bad probe.ping={}", ByteStr(value));
                ping.clear();
            }
        }
    }
    if let Some(url) = extra.fetch {
        *fetch = Some(url);
    }
    if let Some(value) = extra.burn {
        match cmdline::parse_percent(value) {
            Some(share) => {
                burn::SHARED.set(share);
            }
            None => say!("bad probe.burn={}", ByteStr(value)),
        }
    }
    if let Some(value) = extra.arp {
        match cmdline::parse_on_off(value) {
            Some(on) => stack.set_answer_arp(on),
            None => say!("bad probe.arp={}", ByteStr(value)),
        }
    }
}

/// What `probe.mode=` asks for (the classic behaviour).
fn run_mode(mode: Mode<'_>, info: &BootInfo, clock: Clock, keyboard: &mut Keyboard) -> ! {
    match mode {
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
        Mode::Count => count::run(clock, keyboard),
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
