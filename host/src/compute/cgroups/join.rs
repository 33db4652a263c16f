//! Joining a cgroup from a forked child before exec.
//!
//! Between fork and exec only async-signal-safe calls are allowed: no allocation, no locks.
//! Writing `0` to a `cgroup.procs` file moves the writing process (the kernel resolves pid 0
//! to the writer, in v1 and v2 alike), so the child needs only the paths, made as C strings
//! before the fork, and open(2), write(2) and close(2).

use std::ffi::{CStr, CString};
use std::io;

/// Moves the calling process into every cgroup whose `cgroup.procs` is in `paths` (from
/// [`super::InstanceCgroup::join_paths`]). Async-signal-safe: meant for a
/// `Command::pre_exec` closure; it neither allocates nor takes locks.
pub fn join_in_child(paths: &[CString]) -> io::Result<()> {
    paths.iter().try_for_each(|path| write_zero(path))
}

/// Writes the single byte `0` to the file at `path`.
fn write_zero(path: &CStr) -> io::Result<()> {
    // SAFETY: `path` is a NUL-terminated string that outlives the call; open(2) does not
    // retain the pointer.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was opened above for writing; the buffer is a one-byte static literal.
    let written = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
    // Taken before close(2) can overwrite errno; `last_os_error` does not allocate.
    let error = io::Error::last_os_error();
    // SAFETY: `fd` was opened above and is closed exactly once, here.
    unsafe { libc::close(fd) };
    match written {
        1 => Ok(()),
        n if n < 0 => Err(error),
        _ => Err(io::ErrorKind::WriteZero.into()),
    }
}
