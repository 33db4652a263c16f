//! A running microVM: waits for its end, then stops its vCPUs and cleans up.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::EventFd;

use crate::api::ApiServer;
use crate::arch::x86_64::regs::EntryMode;
use crate::control::{ExitReason, VmControl};
use crate::kvm::kick;
use crate::kvm::vm::Vm;

/// The vCPU threads, so they can be kicked out of KVM_RUN.
#[derive(Debug, Default)]
pub struct VcpuThreads {
    threads: Mutex<Vec<(libc::pthread_t, JoinHandle<()>)>>,
}

impl VcpuThreads {
    /// Records a started thread.
    pub fn add(&self, id: libc::pthread_t, handle: JoinHandle<()>) {
        self.lock().push((id, handle));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(libc::pthread_t, JoinHandle<()>)>> {
        self.threads.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Kicks every vCPU out of the guest, so it sees a pause or a stop.
    pub fn kick_all(&self) {
        for (id, handle) in self.lock().iter() {
            if !handle.is_finished() {
                kick::kick(*id);
            }
        }
    }
}

/// A built, running microVM.
#[derive(Debug)]
pub struct Microvm {
    // Dropped last: the VM and its memory outlive the vCPU threads that use them.
    control: Arc<VmControl>,
    threads: Arc<VcpuThreads>,
    api: Option<ApiServer>,
    mode: EntryMode,
    devices_exit: Arc<EventFd>,
    _memory: GuestMemoryMmap,
    _vm: Arc<Vm>,
}

impl Microvm {
    /// Wraps the parts `build_microvm` made.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vm: Arc<Vm>,
        memory: GuestMemoryMmap,
        control: Arc<VmControl>,
        threads: Arc<VcpuThreads>,
        api: Option<ApiServer>,
        mode: EntryMode,
        devices_exit: Arc<EventFd>,
    ) -> Self {
        Microvm {
            control,
            threads,
            api,
            mode,
            devices_exit,
            _memory: memory,
            _vm: vm,
        }
    }

    /// How the guest was started.
    pub fn entry_mode(&self) -> EntryMode {
        self.mode
    }

    /// The shared run state.
    pub fn control(&self) -> &Arc<VmControl> {
        &self.control
    }

    /// Blocks until the VM ends, stops every vCPU, removes the control socket, and says why.
    pub fn run(self) -> ExitReason {
        let reason = self.control.wait_for_exit();
        for _ in 0..100 {
            self.threads.kick_all();
            if self.control.wait_vcpus_gone(Duration::from_millis(20)) {
                break;
            }
        }
        let _ = self.devices_exit.write(1);
        if let Some(api) = self.api {
            api.shutdown();
        }
        reason
    }
}
