//! The boot recipe: from a validated configuration to running vCPUs, one small step each.
//!
//! KVM and memory, kernel and initrd, virtio backends, command line and boot structures,
//! interrupt controllers, legacy and virtio devices, vCPUs, the control socket, then the
//! device and vCPU threads.

mod restore;
mod virtio;

use std::fs::OpenOptions;
use std::os::unix::thread::JoinHandleExt;
use std::sync::{Arc, Mutex};

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::api::{ApiError, ApiHandler, ApiListener};
use crate::arch::x86_64::boot_params::{self, BootParamsInput};
use crate::arch::x86_64::dsdt::MmioWindow;
use crate::arch::x86_64::layout::{
    ACPI_START, BOOT_PARAMS_START, CMDLINE_MAX_SIZE, CMDLINE_START, GDT_START, IDT_START, MIB,
    MPTABLE_START, SMBIOS_START, TSS_START, ram_end, ram_regions,
};
use crate::arch::x86_64::paging::{self, PagingError};
use crate::arch::x86_64::regs::{EntryMode, EntryPoint};
use crate::arch::x86_64::smbios::{self, SmbiosIdentity};
use crate::arch::x86_64::{acpi, gdt, mptable};
use crate::config::{ConfigError, HostLimits, VmConfig, host_mem_mib};
use crate::control::VmControl;
use crate::devices::acpi::{self as acpi_dev, Ged, SleepControl};
use crate::devices::bus::{Bus, BusError};
use crate::devices::event_loop::{EventLoop, EventLoopError, SharedVirtioDevice};
use crate::devices::i8042::{self, I8042};
use crate::devices::irq::EventFdIrq;
use crate::devices::serial::{self, ConsoleSink, SerialConsole};
use crate::devices::virtio::block::BlockError;
use crate::devices::virtio::mmio::MmioTransport;
use crate::devices::virtio::net::NetError;
use crate::jail::{self, JailError};
use crate::kvm::kick;
use crate::kvm::memory::{self, MemoryError};
use crate::kvm::vcpu::{Vcpu, VcpuContext, VcpuError};
use crate::kvm::vcpu_state::CaptureSlots;
use crate::kvm::vm::{Vm, VmError};
use crate::loader::{self, LoadError, LoadedKernel};
use crate::microvm::{Microvm, VcpuThreads};
use crate::snapshot::state::DevicesState;
use crate::snapshot::{RestoreError, SnapshotSources, Snapshotter};

/// Why a microVM could not be built. Nothing is left running or on disk when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The host's memory size could not be read.
    #[error("cannot read the host's memory size")]
    HostMemory(#[source] std::io::Error),
    /// KVM refused the VM.
    #[error(transparent)]
    Vm(#[from] VmError),
    /// Guest memory could not be set up.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// The kernel, initrd or command line could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The page tables could not be built.
    #[error(transparent)]
    Paging(#[from] PagingError),
    /// A boot structure could not be written.
    #[error("cannot write the {0} into guest memory")]
    BootStructure(&'static str, #[source] vm_memory::GuestMemoryError),
    /// The serial log could not be opened.
    #[error("cannot open serial log {path}")]
    SerialLog {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An eventfd could not be made.
    #[error("cannot create an eventfd")]
    EventFd(#[source] std::io::Error),
    /// A device could not be placed on the bus.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A vCPU could not be set up.
    #[error(transparent)]
    Vcpu(#[from] VcpuError),
    /// The kick signal handler could not be installed.
    #[error("cannot install the vCPU kick signal handler")]
    Signal(#[source] std::io::Error),
    /// The control socket could not be opened.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A vCPU or device thread could not be started.
    #[error("cannot start a vCPU or device thread")]
    Thread(#[source] std::io::Error),
    /// A disk could not be opened.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// A network card could not be set up.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The device event loop could not be set up.
    #[error(transparent)]
    EventLoop(#[from] EventLoopError),
    /// The snapshot could not be restored.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// The VMM could not enter its jail.
    #[error(transparent)]
    Jail(#[from] JailError),
    /// The command line with the device parameters is too long.
    #[error("the command line with the virtio device parameters is longer than {max} bytes")]
    CmdlineTooLong {
        /// The limit.
        max: usize,
    },
}

/// Removes a file the build is about to create if the build then fails, so that bad input
/// leaves nothing behind.
struct CreatedFileGuard(Option<std::path::PathBuf>);

impl CreatedFileGuard {
    fn new(path: Option<&std::path::Path>) -> Self {
        CreatedFileGuard(path.filter(|p| !p.exists()).map(|p| p.to_owned()))
    }

    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for CreatedFileGuard {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Builds the microVM `config` describes (booted, or restored from `config.restore`) and
/// starts its vCPUs.
pub fn build_microvm(config: &VmConfig) -> Result<Microvm, BuildError> {
    let serial_log = CreatedFileGuard::new(config.serial_log.as_deref());
    let microvm = match &config.restore {
        Some(path) => restore::restore_microvm(config, path)?,
        None => boot_microvm(config)?,
    };
    serial_log.keep();
    Ok(microvm)
}

/// Boots a fresh VM from the kernel.
fn boot_microvm(config: &VmConfig) -> Result<Microvm, BuildError> {
    let vm = Vm::new()?;
    validate(config, &vm)?;
    let mem_size = config.mem_mib * MIB;
    let memory = create_memory(&vm, mem_size)?;
    let kernel = loader::load_kernel(&memory, &config.kernel)?;
    loader::check_memory(&kernel, mem_size)?;
    let mode = config
        .entry
        .or(kernel.requested_mode)
        .unwrap_or(EntryMode::Kernel);
    let initrd = match &config.initrd {
        Some(path) => Some(loader::load_initrd(&memory, path, &kernel, mem_size)?),
        None => None,
    };
    let virtio_devices = virtio::create_virtio_devices(config)?;
    // A kernel that reads ACPI finds the devices in the DSDT; a user-mode guest (the probe
    // ABI) or a kernel booted with acpi=off reads them from the command line.
    let cmdline = if mode == EntryMode::User || acpi::acpi_off(&config.cmdline) {
        format!("{}{}", config.cmdline, virtio_devices.cmdline_params())
    } else {
        config.cmdline.clone()
    };
    if cmdline.len() >= CMDLINE_MAX_SIZE {
        return Err(BuildError::CmdlineTooLong {
            max: CMDLINE_MAX_SIZE - 1,
        });
    }
    let cmdline_size = loader::load_cmdline(&memory, cmdline.trim_start())?;
    let boot = BootStructures {
        mode,
        kernel: &kernel,
        initrd,
        cmdline_size,
        virtio: virtio_devices.mmio_windows(),
    };
    write_boot_structures(&memory, config, &boot)?;
    vm.setup_irqchip()?;
    let control = Arc::new(VmControl::new(config.vcpus));
    let legacy = attach_legacy_devices(&vm, config, &control, None)?;
    let mut mmio = Bus::default();
    let (event_loop, virtio) = virtio_devices.attach(&vm, &memory, &control, &mut mmio)?;
    let (vcpus, tsc_khz) = create_vcpus(&vm, config.vcpus, mode, kernel.entry)?;
    launch(
        config,
        Parts {
            vm,
            memory,
            control,
            legacy,
            mmio,
            event_loop,
            virtio,
            vcpus,
            mode,
            tsc_khz,
        },
    )
}

/// A VM whose memory, devices and vCPUs are ready, before anything runs.
struct Parts {
    vm: Vm,
    memory: GuestMemoryMmap,
    control: Arc<VmControl>,
    legacy: LegacyDevices,
    mmio: Bus,
    event_loop: EventLoop,
    virtio: Vec<(SharedVirtioDevice, Arc<Mutex<MmioTransport>>)>,
    vcpus: Vec<Vcpu>,
    mode: EntryMode,
    tsc_khz: u32,
}

/// Opens the control socket, enters the jail, then starts the API, device and vCPU threads.
fn launch(config: &VmConfig, parts: Parts) -> Result<Microvm, BuildError> {
    let Parts {
        vm,
        memory,
        control,
        legacy,
        mmio,
        event_loop,
        virtio,
        vcpus,
        mode,
        tsc_khz,
    } = parts;
    kick::install_handler().map_err(BuildError::Signal)?;
    let vm = Arc::new(vm);
    let threads = Arc::new(VcpuThreads::default());
    let captures = Arc::new(CaptureSlots::new(config.vcpus));
    let mem_size = config.mem_mib * MIB;
    let snapshotter = Arc::new(Snapshotter::new(SnapshotSources {
        control: control.clone(),
        threads: threads.clone(),
        captures: captures.clone(),
        vm: vm.clone(),
        memory: memory.clone(),
        regions: ram_regions(mem_size),
        serial: legacy.serial.clone(),
        keyboard: legacy.keyboard.clone(),
        virtio: virtio.clone(),
        gate: event_loop.gate(),
        entry: mode,
        tsc_khz,
    }));
    let listener = match &config.api_sock {
        Some(path) => Some(ApiListener::bind(path)?),
        None => None,
    };
    let msr_indices = vm.msr_indices().into();
    // Every file is open: from here on the VMM runs jailed, and every thread it starts too.
    jail::enter(config.jail.as_ref(), config.seccomp)?;
    let api = match listener {
        Some(listener) => Some(listener.serve(ApiHandler {
            control: control.clone(),
            threads: threads.clone(),
            keyboard: legacy.keyboard.clone(),
            ged: legacy.ged.clone(),
            devices: virtio.iter().map(|(d, _)| d.clone()).collect(),
            mode,
            memory_mib: config.mem_mib,
            snapshotter: Some(snapshotter),
            jail: config.jail.clone(),
        })?),
        None => None,
    };
    let context = VcpuContext {
        control: control.clone(),
        pio: legacy.pio,
        mmio,
        memory: memory.clone(),
        captures,
        msr_indices,
    };
    let devices_exit = event_loop.exit_event();
    event_loop.start().map_err(BuildError::Thread)?;
    start_vcpus(vcpus, &context, &threads)?;
    Ok(Microvm::new(
        vm,
        memory,
        control,
        threads,
        api,
        mode,
        devices_exit,
    ))
}

/// Checks the configuration against this host: KVM's vCPU limit and the host's memory.
fn validate(config: &VmConfig, vm: &Vm) -> Result<(), BuildError> {
    let limits = HostLimits {
        max_vcpus: vm.max_vcpus(),
        host_mem_mib: host_mem_mib().map_err(BuildError::HostMemory)?,
    };
    config.validate(&limits)?;
    Ok(())
}

/// Maps guest RAM and hands it to KVM.
fn create_memory(vm: &Vm, mem_size: u64) -> Result<GuestMemoryMmap, BuildError> {
    let memory = memory::create_guest_memory(mem_size)?;
    memory::register_with_kvm(vm.fd(), &memory)?;
    Ok(memory)
}

/// What the boot structures describe besides the config: the entry mode, the loaded kernel
/// and initrd, the command line's length and the virtio-mmio windows.
struct BootStructures<'a> {
    mode: EntryMode,
    kernel: &'a LoadedKernel,
    initrd: Option<(u64, u64)>,
    cmdline_size: usize,
    virtio: Vec<MmioWindow>,
}

/// Writes the GDT, TSS, IDT, page tables, zero page, MP table, ACPI tables and SMBIOS.
fn write_boot_structures(
    memory: &GuestMemoryMmap,
    config: &VmConfig,
    boot: &BootStructures<'_>,
) -> Result<(), BuildError> {
    let mem_size = config.mem_mib * MIB;
    let write = |what, bytes: &[u8], addr: u64| {
        memory
            .write_slice(bytes, GuestAddress(addr))
            .map_err(|e| BuildError::BootStructure(what, e))
    };
    let gdt: Vec<u8> = gdt::gdt_table()
        .iter()
        .flat_map(|e| e.to_le_bytes())
        .collect();
    write("GDT", &gdt, GDT_START)?;
    write("TSS", &gdt::tss_bytes(), TSS_START)?;
    write("IDT", &[0u8; 8], IDT_START)?;
    let user_mode = boot.mode == EntryMode::User;
    for (addr, table) in paging::identity_map(ram_end(mem_size), user_mode)? {
        let bytes: Vec<u8> = table.iter().flat_map(|e| e.to_le_bytes()).collect();
        write("page tables", &bytes, addr)?;
    }
    let input = BootParamsInput {
        setup_header: boot.kernel.setup_header,
        cmdline_addr: CMDLINE_START,
        cmdline_size: boot.cmdline_size,
        initrd: boot.initrd,
    };
    let params = boot_params::build(mem_size, &input);
    memory
        .write_obj(params, GuestAddress(BOOT_PARAMS_START))
        .map_err(|e| BuildError::BootStructure("zero page", e))?;
    write("MP table", &mptable::mptable(config.vcpus), MPTABLE_START)?;
    write(
        "ACPI tables",
        &acpi::acpi_tables(config.vcpus, &boot.virtio),
        ACPI_START,
    )?;
    let id = &config.smbios;
    let identity = SmbiosIdentity {
        manufacturer: id.manufacturer(),
        product: id.product(),
        version: id.version.as_deref().unwrap_or_default(),
        serial: id.serial.as_deref().unwrap_or_default(),
        uuid: id.uuid_bytes(),
        asset_tag: id.asset_tag.as_deref().unwrap_or_default(),
    };
    write("SMBIOS tables", &smbios::smbios(&identity), SMBIOS_START)
}

/// The port I/O devices: COM1, the i8042, the ACPI sleep registers and the GED.
struct LegacyDevices {
    pio: Bus,
    serial: Arc<Mutex<SerialConsole>>,
    keyboard: Arc<Mutex<I8042>>,
    ged: Arc<Mutex<Ged>>,
}

/// The serial console on COM1, the i8042 and the GED, each with its interrupt line, and the
/// ACPI sleep registers; with `saved`, in the state a snapshot recorded (the GED's pending
/// events are not saved: see the README).
fn attach_legacy_devices(
    vm: &Vm,
    config: &VmConfig,
    control: &Arc<VmControl>,
    saved: Option<&DevicesState>,
) -> Result<LegacyDevices, BuildError> {
    let irq = |gsi| -> Result<EventFdIrq, BuildError> {
        let fd =
            vmm_sys_util::eventfd::EventFd::new(libc::EFD_NONBLOCK).map_err(BuildError::EventFd)?;
        vm.register_irqfd(&fd, gsi)?;
        Ok(EventFdIrq(fd))
    };
    let log = match &config.serial_log {
        Some(path) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| BuildError::SerialLog {
                    path: path.clone(),
                    source,
                })?,
        ),
        None => None,
    };
    let sink = ConsoleSink::new(log, config.console_to_stdout());
    let serial = match saved {
        Some(state) => SerialConsole::from_state(irq(serial::COM1_IRQ)?, sink, &state.serial)
            .map_err(RestoreError::Serial)?,
        None => SerialConsole::new(irq(serial::COM1_IRQ)?, sink),
    };
    let serial = Arc::new(Mutex::new(serial));
    let mut i8042 = I8042::new(Box::new(irq(i8042::KBD_IRQ)?), control.clone());
    if let Some(state) = saved {
        i8042.restore(&state.i8042);
    }
    let keyboard = Arc::new(Mutex::new(i8042));
    let mut pio = Bus::default();
    pio.insert(serial::COM1_BASE, serial::COM1_LEN, serial.clone())?;
    pio.insert(i8042::DATA_PORT, 1, keyboard.clone())?;
    pio.insert(i8042::COMMAND_PORT, 1, keyboard.clone())?;
    let sleep = Arc::new(Mutex::new(SleepControl::new(control.clone())));
    pio.insert(acpi_dev::SLEEP_CONTROL_PORT.into(), 2, sleep)?;
    let ged = Ged::new(Box::new(irq(acpi_dev::GED_IRQ)?), control.clone());
    let ged = Arc::new(Mutex::new(ged));
    pio.insert(acpi_dev::GED_STATUS_PORT.into(), 1, ged.clone())?;
    Ok(LegacyDevices {
        pio,
        serial,
        keyboard,
        ged,
    })
}

/// Creates and configures every vCPU; also returns the guest TSC frequency.
fn create_vcpus(
    vm: &Vm,
    count: u32,
    mode: EntryMode,
    rip: u64,
) -> Result<(Vec<Vcpu>, u32), BuildError> {
    let cpuid = vm.supported_cpuid()?;
    let mut vcpus = Vec::with_capacity(count as usize);
    let mut tsc_khz = 0;
    for index in 0..count {
        let vcpu = Vcpu::new(vm, index)?;
        tsc_khz = vcpu.tsc_khz()?;
        let entry = EntryPoint {
            rip,
            index,
            count,
            tsc_khz,
        };
        vcpu.configure(mode, &entry, &cpuid)?;
        vcpus.push(vcpu);
    }
    Ok((vcpus, tsc_khz))
}

/// Starts one thread per vCPU.
fn start_vcpus(
    vcpus: Vec<Vcpu>,
    context: &VcpuContext,
    threads: &VcpuThreads,
) -> Result<(), BuildError> {
    for (index, vcpu) in vcpus.into_iter().enumerate() {
        let ctx = context.clone();
        let handle = std::thread::Builder::new()
            .name(format!("vcpu{index}"))
            .spawn(move || vcpu.run(ctx))
            .map_err(BuildError::Thread)?;
        threads.add(handle.as_pthread_t(), handle);
    }
    Ok(())
}
