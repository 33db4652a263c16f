//! Dropping root: no supplementary groups, the jail's gid and uid (real, effective and saved),
//! no capabilities left, and no way to gain privileges again.

/// The step of [`drop_to`] that failed.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// A system call failed.
    #[error("{step} failed")]
    Call {
        /// What was being done.
        step: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Capabilities survived the change of uid.
    #[error(
        "capabilities remain after the change of uid (effective {effective:#x}, permitted {permitted:#x})"
    )]
    CapabilitiesLeft {
        /// The effective set's low word.
        effective: u32,
        /// The permitted set's low word.
        permitted: u32,
    },
}

fn check(step: &'static str, rc: libc::c_int) -> Result<(), PrivilegeError> {
    if rc < 0 {
        Err(PrivilegeError::Call {
            step,
            source: std::io::Error::last_os_error(),
        })
    } else {
        Ok(())
    }
}

/// Becomes `uid`:`gid` for good and checks that no capability is left.
pub fn drop_to(uid: u32, gid: u32) -> Result<(), PrivilegeError> {
    // SAFETY: setgroups with a zero count reads no memory.
    check("setgroups", unsafe { libc::setgroups(0, std::ptr::null()) })?;
    // SAFETY: plain integer arguments.
    check("setresgid", unsafe { libc::setresgid(gid, gid, gid) })?;
    // SAFETY: plain integer arguments; leaving uid 0 clears every capability set.
    check("setresuid", unsafe { libc::setresuid(uid, uid, uid) })?;
    // SAFETY: plain integer arguments.
    check("prctl(PR_SET_NO_NEW_PRIVS)", unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    })?;
    let (effective, permitted) = capabilities()?;
    if effective != 0 || permitted != 0 {
        return Err(PrivilegeError::CapabilitiesLeft {
            effective,
            permitted,
        });
    }
    Ok(())
}

/// The low words of the calling thread's effective and permitted capability sets.
fn capabilities() -> Result<(u32, u32), PrivilegeError> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget with version 3 writes two `Data` records, which `data` holds.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) };
    if rc < 0 {
        return Err(PrivilegeError::Call {
            step: "capget",
            source: std::io::Error::last_os_error(),
        });
    }
    Ok((
        data[0].effective | data[1].effective,
        data[0].permitted | data[1].permitted,
    ))
}
