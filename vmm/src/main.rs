//! `vmm`: boots one microVM and runs it until it ends.
//!
//! Exit codes: 0 when the guest powers off or resets or the VM is stopped through the API,
//! 1 for bad input or a failed boot, 2 for a guest failure, 3 for a VMM failure.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use vmm::builder::build_microvm;
use vmm::config::{
    DEFAULT_MEM_MIB, DiskConfig, EntryMode, JailConfig, NetConfig, SmbiosConfig, VmConfig,
};

/// Boots one KVM microVM.
#[derive(Debug, Parser)]
#[command(name = "vmm", version, about)]
struct Args {
    /// JSON file with the whole configuration (the same fields as the flags).
    #[arg(long, conflicts_with_all = ["kernel", "restore", "initrd", "cmdline", "vcpus", "mem_mib", "entry", "disk", "net", "rng"])]
    config: Option<PathBuf>,
    /// Kernel image: ELF (vmlinux, the probe) or bzImage.
    #[arg(long, required_unless_present_any = ["config", "restore"])]
    kernel: Option<PathBuf>,
    /// Resume the VM saved in this snapshot instead of booting; the other flags must describe
    /// the same machine (vCPUs, memory, disks, cards, rng in the same order).
    #[arg(long)]
    restore: Option<PathBuf>,
    /// Initial ramdisk.
    #[arg(long)]
    initrd: Option<PathBuf>,
    /// Kernel command line.
    #[arg(long)]
    cmdline: Option<String>,
    /// Number of vCPUs.
    #[arg(long)]
    vcpus: Option<u32>,
    /// Guest memory in MiB [default: 128].
    #[arg(long)]
    mem_mib: Option<u64>,
    /// Append the serial console to this file.
    #[arg(long)]
    serial_log: Option<PathBuf>,
    /// Also copy the console to stdout when --serial-log is given.
    #[arg(long)]
    serial_stdout: bool,
    /// Listen for control requests on this Unix socket.
    #[arg(long)]
    api_sock: Option<PathBuf>,
    /// Start the guest in `user` (CPL3, the probe) or `kernel` mode, overriding the image.
    #[arg(long)]
    entry: Option<EntryMode>,
    /// A virtio-blk disk: PATH[,ro][,id=ID][,iops=N][,iops_burst=N][,bps=N][,bps_burst=N].
    #[arg(long)]
    disk: Vec<DiskConfig>,
    /// A virtio-net card on a tap: tap=NAME,mac=MAC[,bps=N][,bps_burst=N].
    #[arg(long)]
    net: Vec<NetConfig>,
    /// Add a virtio-rng entropy device.
    #[arg(long)]
    rng: bool,
    /// Once every file is open, confine the VMM to ROOT in a mount namespace of its own and
    /// run it as the given uid and gid with no capabilities: ROOT,uid=N,gid=N.
    #[arg(long)]
    jail: Option<JailConfig>,
    /// Debugging only: do not install the seccomp system-call allowlist.
    #[arg(long)]
    no_seccomp: bool,
    /// The machine's SMBIOS identity: KEY=VALUE,... with keys manufacturer, product, version,
    /// serial, uuid, asset-tag (all optional; values may hold spaces, not commas).
    #[arg(long)]
    smbios: Option<SmbiosConfig>,
}

impl Args {
    fn into_config(self) -> Result<VmConfig, vmm::config::ConfigError> {
        let mut config = match &self.config {
            Some(path) => VmConfig::from_file(path)?,
            None => {
                let mut c = VmConfig::with_kernel(self.kernel.clone().unwrap_or_default());
                c.restore = self.restore;
                c.initrd = self.initrd;
                c.cmdline = self.cmdline.unwrap_or_default();
                c.vcpus = self.vcpus.unwrap_or(1);
                c.mem_mib = self.mem_mib.unwrap_or(DEFAULT_MEM_MIB);
                c.entry = self.entry;
                c.disks = self.disk;
                c.nets = self.net;
                c.rng = self.rng;
                c
            }
        };
        if self.serial_log.is_some() {
            config.serial_log = self.serial_log;
        }
        if self.serial_stdout {
            config.serial_stdout = Some(true);
        }
        if self.api_sock.is_some() {
            config.api_sock = self.api_sock;
        }
        if self.jail.is_some() {
            config.jail = self.jail;
        }
        if self.no_seccomp {
            config.seccomp = false;
        }
        if let Some(smbios) = self.smbios {
            config.smbios = smbios;
        }
        Ok(config)
    }
}

/// Prints an error and its chain of causes.
fn report(err: &dyn std::error::Error) {
    let mut text = format!("vmm: error: {err}");
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    eprintln!("{text}");
}

/// A panic on any thread ends the whole VMM at once with exit code 3 and its reason as the
/// last line, as a VMM failure: an unwinding vCPU or device thread would otherwise end alone
/// and leave the VM hung.
fn exit_on_panic() {
    std::panic::set_hook(Box::new(|info| {
        let reason = info.to_string().replace('\n', " ");
        eprintln!("vmm: exit: vmm failure: panic: {reason}");
        // SAFETY: _exit ends the process without running destructors or atexit handlers,
        // which other threads may be in the middle of; it takes an integer.
        unsafe { libc::_exit(3) };
    }));
}

fn main() -> ExitCode {
    exit_on_panic();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VMM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    // Bad flags are bad input (exit code 1, as the README's table says); --help and
    // --version print and succeed.
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(u8::from(err.use_stderr()));
        }
    };
    let config = match args.into_config() {
        Ok(config) => config,
        Err(err) => {
            report(&err);
            return ExitCode::from(1);
        }
    };
    let microvm = match build_microvm(&config) {
        Ok(vm) => vm,
        Err(err) => {
            report(&err);
            return ExitCode::from(1);
        }
    };
    let restored = config
        .restore
        .as_ref()
        .map(|path| format!(", restored from {}", path.display()))
        .unwrap_or_default();
    eprintln!(
        "vmm: started {} vCPU(s), {} MiB, {} entry, pid {}{restored}",
        config.vcpus,
        config.mem_mib,
        microvm.entry_mode(),
        std::process::id()
    );
    let reason = microvm.run();
    eprintln!("vmm: exit: {reason}");
    ExitCode::from(reason.exit_code() as u8)
}
