//! Save and restore (EC2 hibernation): the whole VM written to one file at one point in time,
//! and a VM rebuilt from it that resumes where it stopped. The format is in
//! `docs/snapshot-format.md`; the restore recipe in `builder/restore.rs`.

pub mod codec;
pub mod file;
mod pages;
pub mod state;
#[cfg(test)]
mod tests;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use vm_memory::GuestMemoryMmap;

use crate::arch::x86_64::regs::EntryMode;
use crate::control::{RunState, VmControl};
use crate::devices::event_loop::{LoopGate, SharedVirtioDevice};
use crate::devices::i8042::I8042;
use crate::devices::serial::SerialConsole;
use crate::devices::virtio::mmio::{MmioTransport, TransportRestoreError};
use crate::kvm::vcpu_state::{CaptureSlots, VcpuStateError};
use crate::kvm::vm::{Vm, VmStateError};
use crate::microvm::VcpuThreads;
use file::ReadError;
use state::{DeviceDescriptor, DevicesState, Header, MachineState};

/// How long the vCPUs and the device thread may take to stop for a snapshot.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a snapshot was not taken. The VM is back in the state it was in, and no file is left.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The path is relative (the VMM's working directory is nobody's business).
    #[error("snapshot path {0} must be absolute")]
    RelativePath(PathBuf),
    /// The directory to write into does not exist.
    #[error("snapshot directory {0} does not exist")]
    NoDirectory(PathBuf),
    /// The VM is ending, or another snapshot is under way.
    #[error("cannot snapshot: the VM is {0}")]
    State(&'static str),
    /// The device thread did not stop between two events in time.
    #[error("the device thread did not stop in time")]
    DevicesBusy,
    /// A vCPU did not stop in time.
    #[error("the vCPUs did not stop in time")]
    VcpusBusy,
    /// A vCPU's state could not be read.
    #[error(transparent)]
    Vcpu(#[from] VcpuStateError),
    /// A vCPU left no state (its thread ended).
    #[error("vCPU {0} left no state")]
    MissingVcpu(u32),
    /// The interrupt controllers, PIT or clock could not be read.
    #[error(transparent)]
    Vm(#[from] VmStateError),
    /// The file could not be written.
    #[error("cannot write snapshot {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Why a VM could not be restored from a snapshot. Nothing was started or left behind.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The file is missing, damaged or of another version.
    #[error(transparent)]
    File(#[from] ReadError),
    /// The vCPU count differs.
    #[error("the snapshot has {snapshot} vCPUs but the configuration asks for {config} (--vcpus)")]
    Vcpus {
        /// In the snapshot.
        snapshot: u32,
        /// In the configuration.
        config: u32,
    },
    /// The memory size differs.
    #[error(
        "the snapshot has {snapshot} MiB of memory but the configuration asks for {config} MiB (--mem-mib)"
    )]
    Memory {
        /// In the snapshot, MiB.
        snapshot: u64,
        /// In the configuration, MiB.
        config: u64,
    },
    /// The memory layout is not this VMM's for that size.
    #[error("the snapshot's memory regions {0:x?} are not this vmm's layout")]
    Regions(Vec<(u64, u64)>),
    /// The virtio devices differ in number.
    #[error(
        "the snapshot has {snapshot} virtio devices [{snapshot_list}] but the configuration has {config} [{config_list}] (--disk, --net, --rng)"
    )]
    DeviceCount {
        /// In the snapshot.
        snapshot: usize,
        /// Their identities.
        snapshot_list: String,
        /// In the configuration.
        config: usize,
        /// Their identities.
        config_list: String,
    },
    /// A virtio device differs in kind or identity.
    #[error(
        "virtio device {index} differs: the snapshot has `{snapshot}` but the configuration gives `{config}`"
    )]
    Device {
        /// Its position.
        index: usize,
        /// In the snapshot.
        snapshot: String,
        /// In the configuration.
        config: String,
    },
    /// KVM refused the saved interrupt controllers, PIT or clock.
    #[error(transparent)]
    Vm(#[from] VmStateError),
    /// KVM refused a saved vCPU state.
    #[error(transparent)]
    Vcpu(#[from] VcpuStateError),
    /// A virtio transport could not be put back.
    #[error("cannot restore virtio device {index}")]
    Transport {
        /// Its position.
        index: usize,
        /// The cause.
        #[source]
        source: TransportRestoreError,
    },
    /// The serial console could not be put back.
    #[error("cannot restore the serial console")]
    Serial(#[source] std::io::Error),
}

/// What a snapshot request answers.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotInfo {
    /// The file written.
    pub path: PathBuf,
    /// Its length in bytes (all-zero memory pages are holes).
    pub bytes: u64,
    /// Bytes it occupies on disk.
    pub allocated_bytes: u64,
    /// Milliseconds from the request to the renamed, synced file.
    pub took_ms: u64,
}

/// Everything a snapshot reads, gathered by the builder.
pub struct SnapshotSources {
    /// Run state.
    pub control: Arc<VmControl>,
    /// The vCPU threads, to kick.
    pub threads: Arc<VcpuThreads>,
    /// Where the vCPU threads leave their state.
    pub captures: Arc<CaptureSlots>,
    /// The KVM VM.
    pub vm: Arc<Vm>,
    /// Guest memory.
    pub memory: GuestMemoryMmap,
    /// Guest RAM regions `(start, size)`.
    pub regions: Vec<(u64, u64)>,
    /// The COM1 UART.
    pub serial: Arc<Mutex<SerialConsole>>,
    /// The i8042.
    pub keyboard: Arc<Mutex<I8042>>,
    /// The virtio devices and their transports, in MMIO order.
    pub virtio: Vec<(SharedVirtioDevice, Arc<Mutex<MmioTransport>>)>,
    /// Holds the device thread.
    pub gate: Arc<LoopGate>,
    /// How the guest was started.
    pub entry: EntryMode,
    /// The guest TSC frequency in kHz.
    pub tsc_khz: u32,
}

impl std::fmt::Debug for SnapshotSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotSources")
            .field("regions", &self.regions)
            .field("devices", &self.virtio.len())
            .finish_non_exhaustive()
    }
}

/// Takes snapshots of one VM, one at a time.
#[derive(Debug)]
pub struct Snapshotter {
    sources: SnapshotSources,
    busy: Mutex<()>,
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn state_name(state: RunState) -> &'static str {
    match state {
        RunState::Stopping => "stopping",
        _ => "already being snapshotted",
    }
}

impl Snapshotter {
    /// A snapshotter reading from `sources`.
    pub fn new(sources: SnapshotSources) -> Self {
        Snapshotter {
            sources,
            busy: Mutex::new(()),
        }
    }

    /// Pauses the VM at one point in time (device thread held between events, every vCPU out
    /// of the guest with its I/O finished), writes everything to `path` atomically, and leaves
    /// the VM paused. On failure the VM goes back to how it was and no file is left.
    pub fn take(&self, path: &Path) -> Result<SnapshotInfo, SnapshotError> {
        let start = Instant::now();
        if !path.is_absolute() {
            return Err(SnapshotError::RelativePath(path.to_owned()));
        }
        match path.parent() {
            Some(dir) if dir.is_dir() => {}
            dir => {
                return Err(SnapshotError::NoDirectory(
                    dir.unwrap_or(Path::new("/")).to_owned(),
                ));
            }
        }
        let Ok(_one_at_a_time) = self.busy.try_lock() else {
            return Err(SnapshotError::State("already being snapshotted"));
        };
        self.sources.take(path, start)
    }
}

impl SnapshotSources {
    fn take(&self, path: &Path, start: Instant) -> Result<SnapshotInfo, SnapshotError> {
        self.captures.clear();
        if !self.gate.hold(STOP_TIMEOUT) {
            return Err(SnapshotError::DevicesBusy);
        }
        // Requests in flight finish and reach the used rings, whose positions are saved.
        for (device, _) in &self.virtio {
            lock(device).drain();
        }
        let before = match self.control.begin_capture() {
            Ok(before) => before,
            Err(state) => {
                self.gate.release();
                return Err(SnapshotError::State(state_name(state)));
            }
        };
        self.threads.kick_all();
        let result = self.capture_and_write(path, start);
        self.gate.release();
        self.control.end_capture(match result {
            Ok(_) => RunState::Paused,
            Err(_) => before,
        });
        result
    }

    fn capture_and_write(
        &self,
        path: &Path,
        start: Instant,
    ) -> Result<SnapshotInfo, SnapshotError> {
        if !self.control.wait_all_captured(STOP_TIMEOUT) {
            return Err(SnapshotError::VcpusBusy);
        }
        let mut vcpus = Vec::new();
        for (index, slot) in self.captures.take_all().into_iter().enumerate() {
            vcpus.push(slot.ok_or(SnapshotError::MissingVcpu(index as u32))??);
        }
        let machine = MachineState {
            header: Header {
                vcpus: vcpus.len() as u32,
                entry: self.entry,
                tsc_khz: self.tsc_khz,
                regions: self.regions.clone(),
                devices: self.descriptors(),
            },
            vcpus,
            vm: self.vm.save_state()?,
            devices: DevicesState {
                serial: lock(&self.serial).state(),
                i8042: lock(&self.keyboard).state(),
                transports: self
                    .virtio
                    .iter()
                    .map(|(_, t)| lock(t).save_state())
                    .collect(),
            },
        };
        tracing::debug!("snapshot: state captured after {:?}", start.elapsed());
        let write_err = |source| SnapshotError::Write {
            path: path.to_owned(),
            source,
        };
        let bytes =
            file::write(path, &machine.encode(), &self.memory, &self.regions).map_err(write_err)?;
        tracing::debug!(
            "snapshot: file written and synced after {:?}",
            start.elapsed()
        );
        let allocated_bytes = std::fs::metadata(path).map_err(write_err)?.blocks() * 512;
        Ok(SnapshotInfo {
            path: path.to_owned(),
            bytes,
            allocated_bytes,
            took_ms: start.elapsed().as_millis() as u64,
        })
    }

    fn descriptors(&self) -> Vec<DeviceDescriptor> {
        self.virtio
            .iter()
            .map(|(d, _)| {
                let dev = lock(d);
                DeviceDescriptor {
                    kind: dev.device_type(),
                    identity: dev.identity(),
                }
            })
            .collect()
    }
}
