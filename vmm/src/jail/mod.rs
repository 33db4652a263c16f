//! The jail a VMM enters once it holds every resource it needs and before the guest runs its
//! first instruction: a mount namespace whose root is one directory, an unprivileged uid and
//! gid of its own with no capabilities, and a seccomp-BPF allowlist of system calls.
//!
//! The order follows Firecracker's jailer, done in-process: everything that needs root
//! (`/dev/kvm`, the tap, the disks, the console log, the control socket) is opened first;
//! then [`enter`] runs on the only thread (threads spawned later inherit root, credentials and
//! filter); then the device, API and vCPU threads start.

mod namespace;
mod privileges;
pub mod seccomp;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use namespace::NamespaceError;
pub use privileges::PrivilegeError;
pub use seccomp::SeccompError;

/// Where and as whom a VMM runs once jailed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JailConfig {
    /// The directory that becomes the VMM's `/` (absolute; it must exist). Snapshot files are
    /// written inside it.
    pub root: PathBuf,
    /// The uid the VMM runs as (not 0).
    pub uid: u32,
    /// The gid the VMM runs as (not 0).
    pub gid: u32,
}

/// Why a `--jail` value or jail configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JailSpecError {
    /// A `key=value` item has an unknown key or a bad value.
    #[error("--jail: `{0}` is not valid; allowed: uid=N, gid=N (both required, not 0)")]
    BadItem(String),
    /// The root is not an absolute path.
    #[error("--jail: the root {0} must be an absolute path")]
    RelativeRoot(PathBuf),
    /// uid or gid missing or 0.
    #[error("--jail: uid and gid are both required and must not be 0 (root)")]
    MissingIds,
}

impl FromStr for JailConfig {
    type Err = JailSpecError;

    /// Parses `ROOT,uid=N,gid=N`.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut items = spec.split(',');
        let root = PathBuf::from(items.next().unwrap_or_default());
        let (mut uid, mut gid) = (None, None);
        for item in items {
            let bad = || JailSpecError::BadItem(item.to_owned());
            let (key, value) = item.split_once('=').ok_or_else(bad)?;
            let value: u32 = value.parse().map_err(|_| bad())?;
            match key {
                "uid" => uid = Some(value),
                "gid" => gid = Some(value),
                _ => return Err(bad()),
            }
        }
        let config = JailConfig {
            root,
            uid: uid.unwrap_or(0),
            gid: gid.unwrap_or(0),
        };
        config.validate()?;
        Ok(config)
    }
}

impl JailConfig {
    /// Checks the fields without touching the system.
    pub fn validate(&self) -> Result<(), JailSpecError> {
        if !self.root.is_absolute() {
            return Err(JailSpecError::RelativeRoot(self.root.clone()));
        }
        if self.uid == 0 || self.gid == 0 {
            return Err(JailSpecError::MissingIds);
        }
        Ok(())
    }

    /// The path inside the jail of host path `host`, which must lie under the jail's root;
    /// `None` for anything outside it.
    pub fn inside(&self, host: &Path) -> Option<PathBuf> {
        if host
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return None;
        }
        let rest = host.strip_prefix(&self.root).ok()?;
        Some(Path::new("/").join(rest))
    }
}

/// Why the VMM could not enter its jail. The VM never ran.
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    /// The mount namespace or the new root could not be set up.
    #[error("cannot confine the vmm to {root}")]
    Namespace {
        /// The jail's root.
        root: PathBuf,
        /// The cause.
        #[source]
        source: NamespaceError,
    },
    /// The uid, gid or capabilities could not be dropped.
    #[error("cannot drop privileges to uid {uid} gid {gid}")]
    Privileges {
        /// The uid.
        uid: u32,
        /// The gid.
        gid: u32,
        /// The cause.
        #[source]
        source: PrivilegeError,
    },
    /// The seccomp filter could not be installed.
    #[error("cannot install the seccomp filter")]
    Seccomp(#[source] SeccompError),
}

/// Confines the calling process: with `jail`, to its root directory in a new mount namespace
/// and to its uid and gid with no capabilities; with `seccomp`, to the system-call allowlist.
/// Must run while the process has one thread.
pub fn enter(jail: Option<&JailConfig>, seccomp: bool) -> Result<(), JailError> {
    if let Some(jail) = jail {
        namespace::pivot_into(&jail.root).map_err(|source| JailError::Namespace {
            root: jail.root.clone(),
            source,
        })?;
        privileges::drop_to(jail.uid, jail.gid).map_err(|source| JailError::Privileges {
            uid: jail.uid,
            gid: jail.gid,
            source,
        })?;
    }
    if seccomp {
        seccomp::install().map_err(JailError::Seccomp)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parses_and_refuses() {
        let c: JailConfig = "/srv/jail/i-1,uid=100001,gid=100002".parse().unwrap();
        assert_eq!(c.root, PathBuf::from("/srv/jail/i-1"));
        assert_eq!((c.uid, c.gid), (100001, 100002));
        assert_eq!(
            "jail,uid=1,gid=1".parse::<JailConfig>(),
            Err(JailSpecError::RelativeRoot("jail".into()))
        );
        assert_eq!(
            "/j,uid=1".parse::<JailConfig>(),
            Err(JailSpecError::MissingIds)
        );
        assert_eq!(
            "/j,uid=0,gid=5".parse::<JailConfig>(),
            Err(JailSpecError::MissingIds)
        );
        assert_eq!(
            "/j,uid=1,gid=1,caps=all".parse::<JailConfig>(),
            Err(JailSpecError::BadItem("caps=all".into()))
        );
        assert_eq!(
            "/j,uid=-1,gid=1".parse::<JailConfig>(),
            Err(JailSpecError::BadItem("uid=-1".into()))
        );
    }

    #[test]
    fn only_paths_under_the_root_are_reachable() {
        let c: JailConfig = "/srv/i-1/jail,uid=5,gid=5".parse().unwrap();
        assert_eq!(
            c.inside(Path::new("/srv/i-1/jail/hibernation.snap")),
            Some(PathBuf::from("/hibernation.snap"))
        );
        assert_eq!(c.inside(Path::new("/srv/i-1/console.log")), None);
        assert_eq!(c.inside(Path::new("/srv/i-1/jailbreak/x")), None);
        assert_eq!(c.inside(Path::new("/srv/i-1/jail/../console.log")), None);
        assert_eq!(c.inside(Path::new("/etc/passwd")), None);
    }
}
