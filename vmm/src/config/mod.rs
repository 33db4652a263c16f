//! The microVM's configuration: built from command-line flags or a JSON file, validated once.

mod devices;
mod smbios;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::arch::x86_64::layout::CMDLINE_MAX_SIZE;
use crate::arch::x86_64::mptable;
pub use crate::arch::x86_64::regs::EntryMode;
pub use crate::jail::{JailConfig, JailSpecError};
pub use devices::{DeviceSpecError, DiskConfig, NetConfig, parse_mac};
pub use smbios::{SmbiosConfig, SmbiosSpecError, parse_uuid};

/// Most virtio devices one VM can have (one interrupt line each, IRQ 5 to 23).
pub const MAX_VIRTIO_DEVICES: usize = 19;

/// Smallest guest memory accepted, in MiB.
pub const MIN_MEM_MIB: u64 = 8;
/// Default guest memory, in MiB.
pub const DEFAULT_MEM_MIB: u64 = 128;

/// Everything one microVM is made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmConfig {
    /// Kernel image: an ELF (vmlinux or the probe) or a bzImage. Not needed to restore.
    #[serde(default)]
    pub kernel: PathBuf,
    /// Restore this snapshot instead of booting the kernel.
    #[serde(default)]
    pub restore: Option<PathBuf>,
    /// Initial ramdisk.
    #[serde(default)]
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    #[serde(default)]
    pub cmdline: String,
    /// Number of vCPUs.
    #[serde(default = "default_vcpus")]
    pub vcpus: u32,
    /// Guest memory in MiB.
    #[serde(default = "default_mem_mib")]
    pub mem_mib: u64,
    /// File the serial console is appended to.
    #[serde(default)]
    pub serial_log: Option<PathBuf>,
    /// Copy the serial console to stdout (the default when there is no log file).
    #[serde(default)]
    pub serial_stdout: Option<bool>,
    /// Unix socket for the control API.
    #[serde(default)]
    pub api_sock: Option<PathBuf>,
    /// Entry mode, overriding what the image asks for.
    #[serde(default)]
    pub entry: Option<EntryMode>,
    /// virtio-blk disks, in order.
    #[serde(default)]
    pub disks: Vec<DiskConfig>,
    /// virtio-net cards, in order.
    #[serde(default)]
    pub nets: Vec<NetConfig>,
    /// Add a virtio-rng entropy device.
    #[serde(default)]
    pub rng: bool,
    /// Confine the VMM to this root, uid and gid before the guest runs.
    #[serde(default)]
    pub jail: Option<JailConfig>,
    /// Install the system-call allowlist before the guest runs (only a debugging session
    /// turns it off).
    #[serde(default = "default_seccomp")]
    pub seccomp: bool,
    /// The identity SMBIOS reports (ignored on restore: the tables are in guest memory).
    #[serde(default)]
    pub smbios: SmbiosConfig,
}

fn default_seccomp() -> bool {
    true
}

fn default_vcpus() -> u32 {
    1
}

fn default_mem_mib() -> u64 {
    DEFAULT_MEM_MIB
}

/// What the host allows, against which a configuration is checked.
#[derive(Debug, Clone, Copy)]
pub struct HostLimits {
    /// Most vCPUs KVM gives one VM.
    pub max_vcpus: u32,
    /// Host memory in MiB.
    pub host_mem_mib: u64,
}

/// Why a configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The JSON file could not be read.
    #[error("cannot read config file {path}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The JSON file is not a valid configuration.
    #[error("config file {path} is not a valid VM config")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// `vcpus` is zero or past the limit.
    #[error("vcpus must be between 1 and {max}, got {got}")]
    Vcpus {
        /// The value given.
        got: u32,
        /// The limit (KVM's and the MP table's).
        max: u32,
    },
    /// `mem_mib` is too small.
    #[error("mem-mib must be at least {MIN_MEM_MIB}, got {0}")]
    MemoryTooSmall(u64),
    /// `mem_mib` is more than the host has.
    #[error("mem-mib {got} is more than this host's {host} MiB of memory")]
    MemoryTooLarge {
        /// The value given.
        got: u64,
        /// The host's memory in MiB.
        host: u64,
    },
    /// The command line does not fit.
    #[error("cmdline is {got} bytes; at most {} are allowed", CMDLINE_MAX_SIZE - 1)]
    CmdlineTooLong {
        /// Its length.
        got: usize,
    },
    /// The command line holds a NUL byte.
    #[error("cmdline must not contain NUL bytes")]
    CmdlineNul,
    /// A disk or network card is misconfigured.
    #[error(transparent)]
    Device(#[from] DeviceSpecError),
    /// The jail is misconfigured.
    #[error(transparent)]
    Jail(#[from] JailSpecError),
    /// The SMBIOS identity is malformed.
    #[error(transparent)]
    Smbios(#[from] SmbiosSpecError),
    /// More virtio devices than interrupt lines.
    #[error("at most {MAX_VIRTIO_DEVICES} virtio devices (disks, nets, rng) are allowed, got {0}")]
    TooManyDevices(usize),
    /// Two cards share a MAC or a tap.
    #[error("net cards must have distinct taps and MACs; `{0}` is used twice")]
    DuplicateNet(String),
    /// Neither a kernel nor a snapshot to restore was given.
    #[error("a kernel is required (or a snapshot to restore)")]
    NoKernel,
    /// Boot-only settings were given with a snapshot to restore.
    #[error("{0} cannot be used when restoring a snapshot (the guest is already booted)")]
    BootSettingWithRestore(&'static str),
    /// A file the VM needs is missing or unreadable.
    #[error("{what} {path} cannot be opened")]
    FileUnreadable {
        /// "kernel", "initrd" or "disk".
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl VmConfig {
    /// A configuration with the defaults for everything but the kernel.
    pub fn with_kernel(kernel: impl Into<PathBuf>) -> Self {
        VmConfig {
            kernel: kernel.into(),
            restore: None,
            initrd: None,
            cmdline: String::new(),
            vcpus: default_vcpus(),
            mem_mib: default_mem_mib(),
            serial_log: None,
            serial_stdout: None,
            api_sock: None,
            entry: None,
            disks: Vec::new(),
            nets: Vec::new(),
            rng: false,
            jail: None,
            seccomp: default_seccomp(),
            smbios: SmbiosConfig::default(),
        }
    }

    /// Reads a configuration from a JSON file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ConfigError::ParseFile {
            path: path.to_owned(),
            source,
        })
    }

    /// Whether the console goes to stdout.
    pub fn console_to_stdout(&self) -> bool {
        self.serial_stdout.unwrap_or(self.serial_log.is_none())
    }

    /// Checks every field against itself and the host. Touches nothing.
    pub fn validate(&self, limits: &HostLimits) -> Result<(), ConfigError> {
        let max = limits.max_vcpus.min(mptable::MAX_CPUS);
        if self.vcpus == 0 || self.vcpus > max {
            return Err(ConfigError::Vcpus {
                got: self.vcpus,
                max,
            });
        }
        if self.mem_mib < MIN_MEM_MIB {
            return Err(ConfigError::MemoryTooSmall(self.mem_mib));
        }
        if self.mem_mib > limits.host_mem_mib {
            return Err(ConfigError::MemoryTooLarge {
                got: self.mem_mib,
                host: limits.host_mem_mib,
            });
        }
        if self.cmdline.len() >= CMDLINE_MAX_SIZE {
            return Err(ConfigError::CmdlineTooLong {
                got: self.cmdline.len(),
            });
        }
        if self.cmdline.contains('\0') {
            return Err(ConfigError::CmdlineNul);
        }
        let devices = self.disks.len() + self.nets.len() + usize::from(self.rng);
        if devices > MAX_VIRTIO_DEVICES {
            return Err(ConfigError::TooManyDevices(devices));
        }
        for disk in &self.disks {
            disk.validate()?;
        }
        let mut seen = std::collections::HashSet::new();
        for net in &self.nets {
            net.validate()?;
            for key in [&net.tap, &net.mac.to_lowercase()] {
                if !seen.insert(key.clone()) {
                    return Err(ConfigError::DuplicateNet(key.clone()));
                }
            }
        }
        if let Some(jail) = &self.jail {
            jail.validate()?;
        }
        self.smbios.validate()?;
        if self.restore.is_some() {
            for (name, given) in [
                ("initrd", self.initrd.is_some()),
                ("cmdline", !self.cmdline.is_empty()),
                ("entry", self.entry.is_some()),
            ] {
                if given {
                    return Err(ConfigError::BootSettingWithRestore(name));
                }
            }
        } else {
            if self.kernel.as_os_str().is_empty() {
                return Err(ConfigError::NoKernel);
            }
            check_readable("kernel", &self.kernel)?;
        }
        if let Some(initrd) = &self.initrd {
            check_readable("initrd", initrd)?;
        }
        for disk in &self.disks {
            check_readable("disk", &disk.path)?;
        }
        Ok(())
    }
}

fn check_readable(what: &'static str, path: &Path) -> Result<(), ConfigError> {
    let unreadable = |source| ConfigError::FileUnreadable {
        what,
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(unreadable(std::io::Error::other("not a regular file")));
    }
    Ok(())
}

/// Host memory in MiB, from `/proc/meminfo`.
pub fn host_mem_mib() -> std::io::Result<u64> {
    let text = std::fs::read_to_string("/proc/meminfo")?;
    text.lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib / 1024)
        .ok_or_else(|| std::io::Error::other("no MemTotal in /proc/meminfo"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HostLimits = HostLimits {
        max_vcpus: 8,
        host_mem_mib: 1024,
    };

    fn kernel_file() -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, b"\x7fELF").unwrap();
        file
    }

    #[test]
    fn defaults_are_valid() {
        let k = kernel_file();
        let cfg = VmConfig::with_kernel(k.path());
        cfg.validate(&LIMITS).unwrap();
        assert!(cfg.console_to_stdout());
    }

    #[test]
    fn json_uses_the_same_fields() {
        let cfg: VmConfig = serde_json::from_str(
            r#"{"kernel":"/k","vcpus":4,"mem_mib":512,"cmdline":"a=b","entry":"user"}"#,
        )
        .unwrap();
        assert_eq!((cfg.vcpus, cfg.mem_mib), (4, 512));
        assert_eq!(cfg.entry, Some(EntryMode::User));
        let err = serde_json::from_str::<VmConfig>(r#"{"kernel":"/k","vcpu":4}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `vcpu`"), "{err}");
    }

    #[test]
    fn rejects_zero_and_too_many_vcpus() {
        let k = kernel_file();
        let mut cfg = VmConfig::with_kernel(k.path());
        cfg.vcpus = 0;
        assert!(matches!(
            cfg.validate(&LIMITS),
            Err(ConfigError::Vcpus { got: 0, max: 8 })
        ));
        cfg.vcpus = 9;
        let err = cfg.validate(&LIMITS).unwrap_err();
        assert_eq!(err.to_string(), "vcpus must be between 1 and 8, got 9");
    }

    #[test]
    fn rejects_bad_memory_sizes() {
        let k = kernel_file();
        let mut cfg = VmConfig::with_kernel(k.path());
        cfg.mem_mib = 2;
        assert!(matches!(
            cfg.validate(&LIMITS),
            Err(ConfigError::MemoryTooSmall(2))
        ));
        cfg.mem_mib = 4096;
        assert!(matches!(
            cfg.validate(&LIMITS),
            Err(ConfigError::MemoryTooLarge {
                got: 4096,
                host: 1024
            })
        ));
    }

    #[test]
    fn devices_are_checked() {
        let k = kernel_file();
        let mut cfg = VmConfig::with_kernel(k.path());
        cfg.disks.push("/nonexistent/disk.img".parse().unwrap());
        let err = cfg.validate(&LIMITS).unwrap_err();
        assert!(
            err.to_string().contains("disk /nonexistent/disk.img"),
            "{err}"
        );
        cfg.disks.clear();
        let net: NetConfig = "tap=t0,mac=02:00:00:00:00:01".parse().unwrap();
        cfg.nets = vec![net.clone(), net];
        assert!(matches!(
            cfg.validate(&LIMITS),
            Err(ConfigError::DuplicateNet(_))
        ));
        cfg.nets.clear();
        cfg.disks = vec!["/x".parse().unwrap(); 20];
        assert!(matches!(
            cfg.validate(&LIMITS),
            Err(ConfigError::TooManyDevices(20))
        ));
    }

    #[test]
    fn a_restore_needs_no_kernel_but_takes_no_boot_settings() {
        let cfg: VmConfig =
            serde_json::from_str(r#"{"restore":"/s/vm.snap","vcpus":2,"mem_mib":64}"#).unwrap();
        cfg.validate(&LIMITS).unwrap();
        let mut cfg = cfg;
        cfg.cmdline = "probe.mode=count".into();
        assert_eq!(
            cfg.validate(&LIMITS).unwrap_err().to_string(),
            "cmdline cannot be used when restoring a snapshot (the guest is already booted)"
        );
        cfg.cmdline.clear();
        cfg.restore = None;
        assert!(matches!(cfg.validate(&LIMITS), Err(ConfigError::NoKernel)));
    }

    #[test]
    fn rejects_missing_files_and_bad_cmdlines() {
        let mut cfg = VmConfig::with_kernel("/nonexistent/kernel");
        let err = cfg.validate(&LIMITS).unwrap_err();
        assert!(
            err.to_string().contains("kernel /nonexistent/kernel"),
            "{err}"
        );
        let k = kernel_file();
        cfg.kernel = k.path().to_owned();
        cfg.initrd = Some("/nonexistent/initrd".into());
        assert!(matches!(
            cfg.validate(&LIMITS),
            Err(ConfigError::FileUnreadable { what: "initrd", .. })
        ));
        cfg.initrd = None;
        cfg.cmdline = "x".repeat(CMDLINE_MAX_SIZE);
        assert!(matches!(
            cfg.validate(&LIMITS),
            Err(ConfigError::CmdlineTooLong { .. })
        ));
        cfg.cmdline = "a\0b".into();
        assert!(matches!(
            cfg.validate(&LIMITS),
            Err(ConfigError::CmdlineNul)
        ));
    }
}
