//! A mount namespace of the VMM's own whose root is one directory: the host's files are
//! neither visible nor reachable from it, and nothing mounted here propagates to the host.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The step of [`pivot_into`] that failed.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// The root path holds a NUL byte.
    #[error("the jail root holds a NUL byte")]
    Nul,
    /// A system call failed.
    #[error("{step} failed")]
    Call {
        /// What was being done.
        step: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn check(step: &'static str, rc: libc::c_long) -> Result<(), NamespaceError> {
    if rc < 0 {
        Err(NamespaceError::Call {
            step,
            source: std::io::Error::last_os_error(),
        })
    } else {
        Ok(())
    }
}

/// Moves the calling process into a new mount namespace whose `/` is `root` (bind-mounted
/// nosuid, nodev, noexec), with the old root detached.
pub fn pivot_into(root: &Path) -> Result<(), NamespaceError> {
    let root = CString::new(root.as_os_str().as_bytes()).map_err(|_| NamespaceError::Nul)?;
    let dot = c".";
    let slash = c"/";
    // SAFETY: unshare takes flags only.
    check("unshare(CLONE_NEWNS)", unsafe {
        libc::unshare(libc::CLONE_NEWNS).into()
    })?;
    // SAFETY: every pointer is a NUL-terminated string that outlives the call, or null where
    // mount(2) allows it; no data argument is passed.
    check("making / private", unsafe {
        libc::mount(
            std::ptr::null(),
            slash.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
        .into()
    })?;
    // SAFETY: as above; `root` is a valid C string.
    check("bind-mounting the jail root", unsafe {
        libc::mount(
            root.as_ptr(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
        .into()
    })?;
    let flags =
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // SAFETY: as above.
    check("remounting the jail root nosuid,nodev,noexec", unsafe {
        libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
        .into()
    })?;
    // SAFETY: chdir takes a valid C string.
    check("entering the jail root", unsafe {
        libc::chdir(root.as_ptr()).into()
    })?;
    // SAFETY: pivot_root(".", ".") stacks the old root under the new one; both arguments are
    // valid C strings.
    check("pivot_root", unsafe {
        libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr())
    })?;
    // SAFETY: detaches the old root, now mounted on "."; a valid C string.
    check("detaching the host's root", unsafe {
        libc::umount2(dot.as_ptr(), libc::MNT_DETACH).into()
    })?;
    // SAFETY: chdir takes a valid C string.
    check("entering /", unsafe { libc::chdir(slash.as_ptr()).into() })
}
