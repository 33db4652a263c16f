use super::*;

/// Runs `body` in a forked child with the filter installed and returns how the child ended.
fn in_filtered_child(body: fn()) -> libc::c_int {
    let program = program().unwrap();
    // SAFETY: the child only installs a filter compiled above and makes raw system calls
    // before `_exit`; it takes no lock and allocates nothing.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        if seccompiler::apply_filter(&program).is_err() {
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(100) };
        }
        body();
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked; `status` is a valid out pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &raw mut status, 0) }, pid);
    status
}

#[test]
fn the_filter_compiles_and_lists_no_dangerous_call() {
    let program = program().unwrap();
    assert!(!program.is_empty());
    let allowed = rules();
    for forbidden in [
        libc::SYS_execve,
        libc::SYS_execveat,
        libc::SYS_socket,
        libc::SYS_connect,
        libc::SYS_bind,
        libc::SYS_mount,
        libc::SYS_ptrace,
        libc::SYS_setuid,
        libc::SYS_kill,
        libc::SYS_open,
        libc::SYS_chroot,
        libc::SYS_unshare,
    ] {
        assert!(
            !allowed.contains_key(&forbidden),
            "syscall {forbidden} is allowed"
        );
    }
}

#[test]
fn allowed_calls_work_under_the_filter() {
    let status = in_filtered_child(|| {
        // SAFETY: plain system calls with no memory arguments.
        unsafe {
            libc::getpid();
            libc::syscall(libc::SYS_gettid);
            libc::sched_yield();
        }
    });
    assert!(libc::WIFEXITED(status), "status {status:#x}");
    assert_eq!(libc::WEXITSTATUS(status), 0);
}

#[test]
fn a_forbidden_call_kills_with_sigsys() {
    let status = in_filtered_child(|| {
        // SAFETY: socket(2) takes integers; under the filter it never returns.
        unsafe {
            libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        }
    });
    assert!(libc::WIFSIGNALED(status), "status {status:#x}");
    assert_eq!(libc::WTERMSIG(status), libc::SIGSYS);
}

#[test]
fn an_ioctl_outside_the_list_kills_with_sigsys() {
    let status = in_filtered_child(|| {
        // KVM_CREATE_VM on stdin: the filter decides before the kernel looks at the descriptor.
        // SAFETY: ioctl with an integer argument.
        unsafe {
            libc::ioctl(0, 0xae01, 0);
        }
    });
    assert!(libc::WIFSIGNALED(status), "status {status:#x}");
    assert_eq!(libc::WTERMSIG(status), libc::SIGSYS);
}

/// The test process's pid, for a forked child to aim at.
static PARENT: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

#[test]
fn signals_reach_only_the_process_that_built_the_filter() {
    // The filter is compiled in the test process: a child under it may signal that process
    // (signal 0 only checks permission) ...
    PARENT.store(
        std::process::id() as i32,
        std::sync::atomic::Ordering::SeqCst,
    );
    let status = in_filtered_child(|| {
        let parent = PARENT.load(std::sync::atomic::Ordering::SeqCst);
        // SAFETY: tgkill takes integers; signal 0 sends nothing.
        unsafe { libc::syscall(libc::SYS_tgkill, parent, parent, 0) };
    });
    assert!(libc::WIFEXITED(status), "status {status:#x}");
    // ... and no other, itself included.
    let status = in_filtered_child(|| {
        // SAFETY: as above, aimed at the child's own main thread.
        unsafe {
            let me = libc::getpid();
            libc::syscall(libc::SYS_tgkill, me, me, 0);
        }
    });
    assert!(libc::WIFSIGNALED(status), "status {status:#x}");
    assert_eq!(libc::WTERMSIG(status), libc::SIGSYS);
}
