//! The cgroup each instance's `vmm` runs in, `<parent>/<instance-id>` (parent `kec2` by
//! default): a memory limit (guest memory plus the vmm's overhead), a pids limit and a CPU
//! quota of its vCPUs, and the counters the agent reads for metrics.
//!
//! Both cgroup versions are supported, as Firecracker's jailer does:
//! - v2: one hierarchy; instances go under `/<parent>` from the hierarchy's root, with
//!   `+cpu +memory +pids` enabled in the root's and the parent's `cgroup.subtree_control`.
//! - v1: the `cpu`, `cpuacct`, `memory` and `pids` hierarchies (possibly co-mounted, as
//!   `cpu,cpuacct`); instances go under the agent's own cgroup in each, so that a delegated
//!   or sandboxed agent stays inside what it was given (v1 has no rule against processes in
//!   inner cgroups, so the agent can stay where it is).
//!
//! The vmm joins its cgroup between fork and exec with [`join_in_child`], so it never runs a
//! guest instruction outside its limits.

mod discover;
mod join;
mod knobs;

#[cfg(test)]
mod host_tests;
#[cfg(test)]
mod tests;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use discover::{DetectError, Mount, OwnCgroup, parse_mountinfo, parse_own_cgroups};
pub use join::join_in_child;
pub use knobs::ReadError;

/// The parent cgroup of every instance's cgroup unless configured otherwise.
pub const DEFAULT_PARENT: &str = "kec2";

/// Memory a vmm needs beyond its guest's: its own code, heap and stacks, the guest's page
/// tables, and socket and pipe buffers charged to it.
pub const VMM_OVERHEAD_BYTES: u64 = 64 << 20;

/// The CFS period the CPU quota is expressed in (the kernel's default, 100 ms).
pub const CPU_PERIOD_US: u64 = 100_000;

/// Tasks a vmm may have besides one thread per vCPU: its main thread, the event loop and
/// device threads, and the short-lived helpers a restore or a snapshot starts, with ample
/// room; small enough that a runaway vmm cannot exhaust the host's pid space.
pub const VMM_BASE_PIDS: u64 = 64;

/// How often, and how far apart, `remove` retries while the kernel still counts an exiting
/// process in the cgroup (`EBUSY`): 50 × 10 ms.
const REMOVE_ATTEMPTS: u32 = 50;
/// The pause between two `rmdir` attempts.
const REMOVE_PAUSE: Duration = Duration::from_millis(10);

/// The cgroup version in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Separate hierarchies per controller.
    V1,
    /// The unified hierarchy.
    V2,
}

/// The limits of one instance's cgroup; `None` means unlimited (`max` in v2, `-1` in v1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The memory limit in bytes.
    pub memory_bytes: Option<u64>,
    /// The CPU time allowed per period, in microseconds.
    pub cpu_quota_us: Option<u64>,
    /// The period of the CPU quota, in microseconds.
    pub cpu_period_us: u64,
    /// The most tasks (processes and threads) at once.
    pub pids: Option<u64>,
}

impl Limits {
    /// The limits of an instance with `vcpus` vCPUs and `memory_mib` MiB of guest memory:
    /// the guest's memory plus [`VMM_OVERHEAD_BYTES`], a quota of `vcpus` whole CPUs, and
    /// [`VMM_BASE_PIDS`] plus one task per vCPU.
    pub fn for_instance(vcpus: u32, memory_mib: u64) -> Self {
        Self {
            memory_bytes: Some(
                memory_mib
                    .saturating_mul(1 << 20)
                    .saturating_add(VMM_OVERHEAD_BYTES),
            ),
            cpu_quota_us: Some(u64::from(vcpus) * CPU_PERIOD_US),
            cpu_period_us: CPU_PERIOD_US,
            pids: Some(VMM_BASE_PIDS + u64::from(vcpus)),
        }
    }
}

/// One hierarchy an instance's cgroup has a directory in.
#[derive(Debug, Clone)]
struct Hierarchy {
    /// The directory the parent cgroup is made in.
    base: PathBuf,
}

/// Which hierarchy (an index into `Layout::hierarchies`) serves each controller.
#[derive(Debug, Clone, Copy)]
struct Roles {
    memory: usize,
    cpu: usize,
    cpuacct: usize,
    pids: usize,
}

/// What discovery found.
#[derive(Debug, Clone)]
struct Layout {
    version: Version,
    hierarchies: Vec<Hierarchy>,
    roles: Roles,
}

/// A name that cannot be one cgroup directory.
#[derive(Debug, thiserror::Error)]
#[error(
    "{what} {name:?} is not a valid cgroup name: it must be one non-empty path component, not . or .., without / or NUL"
)]
pub struct NameError {
    /// What the name is for (`instance id`, `parent`).
    pub what: &'static str,
    /// The name.
    pub name: String,
}

/// Errors creating an instance's cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The instance id cannot name a cgroup.
    #[error("cannot create the cgroup")]
    Name(#[source] NameError),
    /// A directory could not be made.
    #[error("cannot make cgroup {path}")]
    Mkdir {
        /// The directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A controller could not be enabled or a limit written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A `cgroup.procs` path holds a NUL byte and cannot be passed to open(2).
    #[error("the cgroup path {path} holds a NUL byte")]
    Nul {
        /// The path.
        path: String,
    },
}

/// Errors removing an instance's cgroup.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// The instance id cannot name a cgroup.
    #[error("cannot remove the cgroup")]
    Name(#[source] NameError),
    /// A directory could not be removed (it still holds processes, or is not a cgroup).
    #[error("cannot remove cgroup {path}")]
    Rmdir {
        /// The directory.
        path: String,
        /// The cause (`EBUSY` after retrying while processes remain).
        #[source]
        source: std::io::Error,
    },
}

/// The host's cgroup hierarchies and the parent under which instance cgroups are made.
#[derive(Debug, Clone)]
pub struct Cgroups {
    layout: Layout,
    parent: String,
}

/// An instance's cgroup as made by [`Cgroups::create`]: its directories and the files a
/// child writes to join it.
#[derive(Debug, Clone)]
pub struct InstanceCgroup {
    id: String,
    dirs: Vec<PathBuf>,
    procs: Vec<CString>,
}

impl InstanceCgroup {
    /// The instance id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The cgroup's directory in each hierarchy.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Each directory's `cgroup.procs`, ready for [`join_in_child`] (computed before the
    /// fork, since the child may not allocate).
    pub fn join_paths(&self) -> Vec<CString> {
        self.procs.clone()
    }
}

impl Cgroups {
    /// Finds the hierarchies of this host from `/proc/self/mountinfo` and
    /// `/proc/self/cgroup`.
    pub fn detect() -> Result<Self, DetectError> {
        let read = |path: &str| {
            std::fs::read_to_string(path).map_err(|source| DetectError::Read {
                path: path.to_string(),
                source,
            })
        };
        Self::from_mountinfo(&read("/proc/self/mountinfo")?, &read("/proc/self/cgroup")?)
    }

    /// Finds the hierarchies from mountinfo text and the agent's `/proc/self/cgroup` text
    /// (the cgroup2 roots' `cgroup.controllers` are read from the mount points).
    pub fn from_mountinfo(mountinfo: &str, own_cgroup: &str) -> Result<Self, DetectError> {
        Ok(Self {
            layout: discover::layout(mountinfo, own_cgroup)?,
            parent: DEFAULT_PARENT.to_string(),
        })
    }

    /// The same hierarchies with instance cgroups under `parent` instead.
    pub fn with_parent(self, parent: &str) -> Result<Self, NameError> {
        check_name("parent", parent)?;
        Ok(Self {
            parent: parent.to_string(),
            ..self
        })
    }

    /// The cgroup version in use.
    pub fn version(&self) -> Version {
        self.layout.version
    }

    /// The parent cgroup's name.
    pub fn parent(&self) -> &str {
        &self.parent
    }

    /// The parent cgroup's directory in each hierarchy.
    pub fn parent_dirs(&self) -> Vec<PathBuf> {
        let hierarchies = &self.layout.hierarchies;
        hierarchies
            .iter()
            .map(|h| h.base.join(&self.parent))
            .collect()
    }

    /// The directories instance `id`'s cgroup has (or would have), one per hierarchy.
    pub fn dirs(&self, id: &str) -> Result<Vec<PathBuf>, NameError> {
        check_name("instance id", id)?;
        Ok(self.parent_dirs().iter().map(|p| p.join(id)).collect())
    }

    /// Makes instance `id`'s cgroup and writes `limits`; an existing cgroup is reused and
    /// its limits rewritten. On failure, the directories this call made are removed again.
    pub fn create(&self, id: &str, limits: &Limits) -> Result<InstanceCgroup, CreateError> {
        let dirs = self.dirs(id).map_err(CreateError::Name)?;
        let mut made = Vec::new();
        let result = self
            .make_dirs(&dirs, &mut made)
            .and_then(|()| knobs::write_limits(self, id, limits))
            .and_then(|()| procs_paths(&dirs));
        match result {
            Ok(procs) => Ok(InstanceCgroup {
                id: id.to_string(),
                dirs,
                procs,
            }),
            Err(e) => {
                // Best effort: the error being reported matters more than a failed rmdir.
                for dir in made.iter().rev() {
                    _ = std::fs::remove_dir(dir);
                }
                Err(e)
            }
        }
    }

    /// Makes the parent and instance directories (enabling v2's controllers on the way),
    /// recording in `made` those this call created.
    fn make_dirs(&self, dirs: &[PathBuf], made: &mut Vec<PathBuf>) -> Result<(), CreateError> {
        let v2 = self.layout.version == Version::V2;
        for (hierarchy, dir) in self.layout.hierarchies.iter().zip(dirs) {
            let parent = hierarchy.base.join(&self.parent);
            if v2 {
                knobs::enable_controllers(&hierarchy.base)?;
            }
            make_dir(&parent, made)?;
            if v2 {
                knobs::enable_controllers(&parent)?;
            }
            make_dir(dir, made)?;
        }
        Ok(())
    }

    /// Removes instance `id`'s cgroup, which must hold no process; retries briefly while
    /// the kernel still counts one that is exiting (this blocks for up to half a second, so
    /// async callers use `spawn_blocking`). A cgroup already gone is not an error.
    pub fn remove(&self, id: &str) -> Result<(), RemoveError> {
        let dirs = self.dirs(id).map_err(RemoveError::Name)?;
        dirs.iter().try_for_each(|dir| remove_dir(dir))
    }

    /// The instance cgroups that exist under the parent, in any hierarchy, sorted.
    pub fn instances(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .parent_dirs()
            .iter()
            .filter_map(|p| std::fs::read_dir(p).ok())
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The CPU time instance `id`'s cgroup has used, in nanoseconds.
    pub fn cpu_usage_ns(&self, id: &str) -> Option<u64> {
        knobs::cpu_usage_ns(self, id)
    }

    /// The most memory instance `id`'s cgroup has held, in bytes (v2 kernels before 5.19
    /// have no `memory.peak`: `None`).
    pub fn memory_peak_bytes(&self, id: &str) -> Option<u64> {
        knobs::memory_peak_bytes(self, id)
    }

    /// The memory instance `id`'s cgroup holds now, in bytes.
    pub fn memory_current_bytes(&self, id: &str) -> Option<u64> {
        knobs::memory_current_bytes(self, id)
    }

    /// The limits instance `id`'s cgroup has, as the kernel reports them.
    pub fn limits(&self, id: &str) -> Result<Limits, ReadError> {
        knobs::read_limits(self, id)
    }

    /// Instance `id`'s directory in the hierarchy at `index`.
    fn dir(&self, index: usize, id: &str) -> Result<PathBuf, NameError> {
        check_name("instance id", id)?;
        let base = &self.layout.hierarchies[index].base;
        Ok(base.join(&self.parent).join(id))
    }
}

/// Checks that `name` is one path component usable as a cgroup directory.
fn check_name(what: &'static str, name: &str) -> Result<(), NameError> {
    let bad = name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']);
    match bad {
        true => Err(NameError {
            what,
            name: name.to_string(),
        }),
        false => Ok(()),
    }
}

/// Makes `dir` unless it exists, recording it in `made` if this call made it.
fn make_dir(dir: &Path, made: &mut Vec<PathBuf>) -> Result<(), CreateError> {
    match std::fs::create_dir(dir) {
        Ok(()) => {
            made.push(dir.to_path_buf());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(source) => Err(CreateError::Mkdir {
            path: dir.display().to_string(),
            source,
        }),
    }
}

/// Each directory's `cgroup.procs` as a C string.
fn procs_paths(dirs: &[PathBuf]) -> Result<Vec<CString>, CreateError> {
    dirs.iter()
        .map(|d| {
            let path = d.join("cgroup.procs");
            CString::new(path.as_os_str().as_bytes()).map_err(|_| CreateError::Nul {
                path: path.display().to_string(),
            })
        })
        .collect()
}

/// Removes one cgroup directory, retrying while it is busy; gone already is fine.
fn remove_dir(dir: &Path) -> Result<(), RemoveError> {
    let mut attempt = 1;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < REMOVE_ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(REMOVE_PAUSE);
            }
            Err(source) => {
                return Err(RemoveError::Rmdir {
                    path: dir.display().to_string(),
                    source,
                });
            }
        }
    }
}
