//! Kicking a vCPU thread out of KVM_RUN: a real-time signal whose handler sets the thread's
//! `immediate_exit` flag, so a kick that lands just before KVM_RUN is not lost.

use std::cell::Cell;
use std::sync::Once;

use kvm_bindings::kvm_run;
use vmm_sys_util::signal::{SIGRTMIN, register_signal_handler};

thread_local! {
    /// The `kvm_run` page of the vCPU this thread runs, or null.
    static KVM_RUN: Cell<*mut kvm_run> = const { Cell::new(std::ptr::null_mut()) };
}

/// The signal used to kick vCPU threads.
pub fn kick_signal() -> i32 {
    SIGRTMIN()
}

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let run = KVM_RUN.with(Cell::get);
    if !run.is_null() {
        // SAFETY: the pointer is this thread's own mapped `kvm_run` page, set by
        // `set_thread_kvm_run` and cleared before the vCPU is dropped; a single byte store
        // is async-signal-safe.
        unsafe { std::ptr::write_volatile(&raw mut (*run).immediate_exit, 1) };
    }
}

/// Installs the kick handler once per process.
pub fn install_handler() -> std::io::Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = register_signal_handler(kick_signal(), on_kick).map_err(std::io::Error::from);
    });
    result
}

/// Records (or clears, with null) the `kvm_run` page of the vCPU this thread runs.
pub fn set_thread_kvm_run(run: *mut kvm_run) {
    KVM_RUN.with(|cell| cell.set(run));
}

/// Sends the kick signal to a thread.
pub fn kick(thread: libc::pthread_t) {
    // SAFETY: `thread` is a vCPU thread the VMM spawned and has not joined; a signal to it is
    // handled by `on_kick`.
    unsafe { libc::pthread_kill(thread, kick_signal()) };
}
