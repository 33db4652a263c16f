//! How each instance's VMM is confined: its own uid and gid, a jail directory that becomes
//! its `/`, the seccomp allowlist (the vmm's own `--jail` and seccomp, see `vmm/README.md`),
//! and a cgroup with the instance type's limits.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::cgroups::{CreateError, Limits};
use super::supervisor::{Confinement, InstanceDir};
use state::instances::{self, InstanceRow};

/// The first uid and gid handed to VMMs: instance number `seq` runs as `JAIL_ID_BASE + seq`.
/// Far above the ranges distributions give to users (1000+), to systemd's dynamic users
/// (61184-65519) and to container id maps (100000+ in 65536 blocks).
pub const JAIL_ID_BASE: u32 = 1_000_000_000;

/// Why an instance's jail could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    /// The instance's number does not map to a uid.
    #[error("instance number {0} is past the jail's uid range")]
    IdRange(i64),
    /// The instance's cgroup could not be made.
    #[error("cannot make the cgroup of {id}")]
    Cgroup {
        /// The instance.
        id: String,
        /// The cause.
        #[source]
        source: CreateError,
    },
    /// The jail directory could not be made or handed to the VMM's uid.
    #[error("cannot prepare the jail directory {path}")]
    Root {
        /// The directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The uid and gid of the VMM of the instance numbered `seq` (its database sequence, never
/// reused), so no two instances share one.
pub fn identity(seq: i64) -> Result<u32, JailError> {
    u32::try_from(seq)
        .ok()
        .and_then(|s| JAIL_ID_BASE.checked_add(s))
        .filter(|id| *id < u32::MAX - 1)
        .ok_or(JailError::IdRange(seq))
}

impl InstanceDir {
    /// The directory the VMM sees as `/`: only files it writes itself (hibernation state).
    pub fn jail_root(&self) -> PathBuf {
        self.0.join("jail")
    }
}

/// Makes the jail directory of `dir`, owned by `id` and closed to everyone else, and returns
/// the vmm's `--jail` value.
pub fn prepare_root(dir: &InstanceDir, id: u32) -> Result<String, JailError> {
    let root = dir.jail_root();
    let failed = |source| JailError::Root {
        path: root.display().to_string(),
        source,
    };
    std::fs::create_dir_all(&root).map_err(failed)?;
    std::os::unix::fs::chown(&root, Some(id), Some(id)).map_err(failed)?;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).map_err(failed)?;
    Ok(format!("{},uid={id},gid={id}", root.display()))
}

/// The line the agent appends to `vmm.log` when the kernel killed the VMM with `signal`,
/// so that the exit reads as a crash with its cause rather than a vanished process.
pub fn signal_exit_line(signal: i32) -> Option<String> {
    let why = match signal {
        libc::SIGSYS => {
            "killed by SIGSYS: the vmm made a system call outside its seccomp allowlist"
        }
        libc::SIGSEGV => "killed by SIGSEGV: the vmm crashed (invalid memory access)",
        libc::SIGBUS => "killed by SIGBUS: the vmm crashed (bus error)",
        libc::SIGABRT => "killed by SIGABRT: the vmm aborted",
        libc::SIGILL => "killed by SIGILL: the vmm crashed (illegal instruction)",
        _ => return None,
    };
    Some(format!("vmm: exit: {why}"))
}

impl super::Compute {
    /// Prepares the confinement of instance `row`'s VMM: its jail directory and arguments,
    /// and its cgroup with the instance type's limits.
    pub(super) fn confine(
        &self,
        dir: &InstanceDir,
        row: &InstanceRow,
    ) -> Result<Confinement, JailError> {
        if !self.config.jail {
            return Ok(Confinement {
                args: vec!["--no-seccomp".to_owned()],
                cgroup_procs: Vec::new(),
            });
        }
        let id = identity(row.seq)?;
        let mut args = vec!["--jail".to_owned(), prepare_root(dir, id)?];
        if !self.config.seccomp {
            args.push("--no-seccomp".to_owned());
        }
        let limits = Limits::for_instance(row.vcpus, row.memory_mib);
        let cgroup = self
            .cgroups
            .create(&row.id, &limits)
            .map_err(|source| JailError::Cgroup {
                id: row.id.clone(),
                source,
            })?;
        Ok(Confinement {
            args,
            cgroup_procs: cgroup.join_paths(),
        })
    }

    /// Removes the cgroup of instance `id`, whose vmm has ended, after logging the most memory
    /// it used against its limit.
    pub(super) fn release_cgroup(&self, id: &str) {
        let mib = |b: u64| b >> 20;
        let peak = self.cgroups.memory_peak_bytes(id).map(mib);
        let limit = self
            .cgroups
            .limits(id)
            .ok()
            .and_then(|l| l.memory_bytes)
            .map(mib);
        tracing::info!(%id, memory_peak_mib = ?peak, memory_limit_mib = ?limit, "vmm cgroup released");
        if let Err(e) = self.cgroups.remove(id) {
            tracing::warn!(%id, error = %crate::error_chain(&e), "cannot remove the vmm's cgroup");
        }
    }

    /// Removes the cgroups of this agent's instances whose vmm is gone (left by an agent that
    /// died); called at start-up once the live vmms are known. Cgroups of instances this
    /// agent does not know belong to another agent on the host and are left alone.
    pub fn remove_stale_cgroups(&self) -> rusqlite::Result<()> {
        for id in self.cgroups.instances() {
            let Some(row) = instances::get(&self.db.lock(), &id)? else {
                continue;
            };
            let running = matches!(
                (row.pid, row.pid_start),
                (Some(pid), Some(start)) if super::supervisor::alive(pid, start)
            );
            if !running {
                tracing::info!(%id, "removing a stale vmm cgroup");
                self.release_cgroup(&id);
            }
        }
        Ok(())
    }

    /// Notes in `vmm.log` that the kernel killed instance `id`'s VMM with a signal that means
    /// a defect or the seccomp filter, so that the exit is reported with that cause.
    pub(super) fn record_signal_exit(&self, id: &str, status: std::process::ExitStatus) {
        use std::io::Write;
        use std::os::unix::process::ExitStatusExt;
        let Some(line) = status.signal().and_then(signal_exit_line) else {
            return;
        };
        tracing::error!(%id, "{line}");
        let log = self.dir(id).vmm_log();
        let appended = std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = appended {
            tracing::error!(%id, error = %e, "cannot record the vmm's exit in {}", log.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::supervisor::ExitReason;

    #[test]
    fn identities_are_distinct_and_bounded() {
        assert_eq!(identity(1).unwrap(), JAIL_ID_BASE + 1);
        assert_ne!(identity(1).unwrap(), identity(2).unwrap());
        assert!(identity(-1).is_err());
        assert!(identity(i64::from(u32::MAX)).is_err());
    }

    #[test]
    fn a_seccomp_kill_reads_as_a_crash_with_its_cause() {
        let line = signal_exit_line(libc::SIGSYS).unwrap();
        match ExitReason::from_log(&format!("vmm: started\n{line}\n")) {
            ExitReason::Crashed(m) => assert!(m.contains("seccomp"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(signal_exit_line(libc::SIGKILL), None);
    }

    #[test]
    fn the_root_belongs_to_the_vmm_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = InstanceDir::new(tmp.path(), "i-0123");
        let id = identity(7).unwrap();
        let spec = prepare_root(&dir, id);
        if unsafe_is_root() {
            let spec = spec.unwrap();
            assert_eq!(
                spec,
                format!("{},uid={id},gid={id}", dir.jail_root().display())
            );
            let meta = std::fs::metadata(dir.jail_root()).unwrap();
            use std::os::unix::fs::MetadataExt;
            assert_eq!(
                (meta.uid(), meta.gid(), meta.mode() & 0o777),
                (id, id, 0o700)
            );
        } else {
            assert!(spec.is_err(), "chown to another uid needs root");
        }
    }

    fn unsafe_is_root() -> bool {
        // SAFETY: geteuid has no arguments and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }
}
