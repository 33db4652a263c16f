//! The VM's run state, shared by the vCPU threads, the devices and the control API.
//!
//! One mutex and one condition variable carry everything a vCPU may have to wait for: a pause,
//! a stop, or a device event that wakes a guest waiting on the paravirtual wait port.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Why the VM ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// The guest powered off, with the status it reported.
    PowerOff(u32),
    /// The guest asked for a reset (i8042, or a KVM system event).
    Reset,
    /// The control API asked for a stop.
    Stopped,
    /// The guest failed: emulation failure, triple fault, an exit the VMM cannot handle.
    GuestFailure(String),
    /// The VMM itself failed while running (a KVM call returned an error).
    VmmFailure(String),
}

impl ExitReason {
    /// The process exit code: 0 for a clean end, 2 for a guest failure, 3 for a VMM failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            ExitReason::PowerOff(_) | ExitReason::Reset | ExitReason::Stopped => 0,
            ExitReason::GuestFailure(_) => 2,
            ExitReason::VmmFailure(_) => 3,
        }
    }
}

impl std::fmt::Display for ExitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitReason::PowerOff(status) => write!(f, "guest powered off (status {status})"),
            ExitReason::Reset => f.write_str("guest requested a reset"),
            ExitReason::Stopped => f.write_str("stopped through the control API"),
            ExitReason::GuestFailure(detail) => write!(f, "guest failure: {detail}"),
            ExitReason::VmmFailure(detail) => write!(f, "vmm failure: {detail}"),
        }
    }
}

/// Whether the vCPUs should run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// vCPUs run.
    Running,
    /// vCPUs are held outside KVM_RUN.
    Paused,
    /// The VM is ending; vCPU threads leave.
    Stopping,
}

/// Counters of the exits the VMM handled.
#[derive(Debug, Default)]
pub struct ExitCounters {
    /// Port I/O exits.
    pub io: AtomicU64,
    /// MMIO exits.
    pub mmio: AtomicU64,
    /// Waits on the paravirtual wait port.
    pub waits: AtomicU64,
    /// Exits caused by a kick (pause, stop).
    pub interrupted: AtomicU64,
    /// Port or MMIO accesses no device claimed.
    pub unhandled: AtomicU64,
}

/// A snapshot of the counters, for the API.
#[derive(Debug, Clone, Serialize)]
pub struct ExitCounts {
    /// Port I/O exits.
    pub io: u64,
    /// MMIO exits.
    pub mmio: u64,
    /// Waits on the paravirtual wait port.
    pub waits: u64,
    /// Exits caused by a kick.
    pub interrupted: u64,
    /// Accesses no device claimed.
    pub unhandled: u64,
}

impl ExitCounters {
    /// Reads every counter.
    pub fn snapshot(&self) -> ExitCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ExitCounts {
            io: get(&self.io),
            mmio: get(&self.mmio),
            waits: get(&self.waits),
            interrupted: get(&self.interrupted),
            unhandled: get(&self.unhandled),
        }
    }
}

#[derive(Debug)]
struct Inner {
    run: RunState,
    exit: Option<ExitReason>,
    /// vCPUs currently held by a pause.
    parked: u32,
    /// vCPU threads that have not left yet.
    live: u32,
    /// Bumped on every device event; a waiting vCPU wakes when it changes.
    events: u64,
    /// Number of the latest capture request (each vCPU captures each request once).
    capture: u64,
    /// Whether a capture is under way.
    capturing: bool,
    /// vCPUs that have captured their state for the current request.
    captured: u32,
}

/// The shared run state of one VM.
#[derive(Debug)]
pub struct VmControl {
    inner: Mutex<Inner>,
    changed: Condvar,
    started: Instant,
    vcpus: u32,
    /// Exit counters, updated lock-free by the vCPUs.
    pub counters: ExitCounters,
}

/// How a guest wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// A device event arrived.
    Event,
    /// The deadline passed.
    Timeout,
    /// The VM is stopping.
    Stopping,
    /// A snapshot needs the vCPU out of the wait.
    Interrupted,
}

/// What a vCPU thread does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VcpuStep {
    /// Enter the guest.
    Run,
    /// Record its state for a snapshot, then ask again.
    Capture,
    /// Leave: the VM is stopping.
    Leave,
}

impl VmControl {
    /// A running VM with `vcpus` vCPU threads about to start.
    pub fn new(vcpus: u32) -> Self {
        VmControl {
            inner: Mutex::new(Inner {
                run: RunState::Running,
                exit: None,
                parked: 0,
                live: vcpus,
                events: 0,
                capture: 0,
                capturing: false,
                captured: 0,
            }),
            changed: Condvar::new(),
            started: Instant::now(),
            vcpus,
            counters: ExitCounters::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of vCPUs.
    pub fn vcpus(&self) -> u32 {
        self.vcpus
    }

    /// Time since the VM was built.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The current run state.
    pub fn run_state(&self) -> RunState {
        self.lock().run
    }

    /// Whether a snapshot is being taken.
    pub fn capturing(&self) -> bool {
        self.lock().capturing
    }

    /// Ends the VM for `reason`; the first reason given wins. Returns whether this call set it.
    pub fn request_exit(&self, reason: ExitReason) -> bool {
        let mut inner = self.lock();
        let first = inner.exit.is_none();
        if first {
            inner.exit = Some(reason);
        }
        inner.run = RunState::Stopping;
        self.changed.notify_all();
        first
    }

    /// Asks the vCPUs to pause. The caller kicks them out of KVM_RUN and then waits with
    /// [`VmControl::wait_all_parked`].
    pub fn set_paused(&self, paused: bool) -> Result<(), RunState> {
        let mut inner = self.lock();
        if inner.capturing {
            // A snapshot holds the VM paused until it is written.
            return Err(inner.run);
        }
        match (inner.run, paused) {
            (RunState::Stopping, _) => Err(RunState::Stopping),
            (RunState::Running, false) => Err(RunState::Running),
            (RunState::Paused, true) => Err(RunState::Paused),
            (_, true) => {
                inner.run = RunState::Paused;
                // A vCPU waiting on the wait port parks now rather than at its deadline.
                self.changed.notify_all();
                Ok(())
            }
            (_, false) => {
                inner.run = RunState::Running;
                self.changed.notify_all();
                Ok(())
            }
        }
    }

    /// Waits until every live vCPU is held by the pause, for at most `timeout`.
    pub fn wait_all_parked(&self, timeout: Duration) -> bool {
        let guard = self.lock();
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |i| {
                i.run == RunState::Paused && i.parked < i.live
            })
            .unwrap_or_else(|e| e.into_inner());
        guard.run == RunState::Paused && guard.parked >= guard.live
    }

    /// Called by a vCPU before it enters the guest: holds it while paused, and tells it to
    /// capture its state once per snapshot (`captured` is the last request it served).
    pub fn vcpu_step(&self, captured: &mut u64) -> VcpuStep {
        let mut inner = self.lock();
        loop {
            match inner.run {
                RunState::Stopping => return VcpuStep::Leave,
                RunState::Running => return VcpuStep::Run,
                RunState::Paused if inner.capturing && *captured != inner.capture => {
                    *captured = inner.capture;
                    return VcpuStep::Capture;
                }
                RunState::Paused => {
                    inner.parked += 1;
                    self.changed.notify_all();
                    inner = self.changed.wait(inner).unwrap_or_else(|e| e.into_inner());
                    inner.parked -= 1;
                }
            }
        }
    }

    /// Holds the caller while the VM is paused (counting it as parked), but not through a
    /// capture, which needs every vCPU back in its run loop.
    fn hold_while_paused<'a>(&self, mut inner: MutexGuard<'a, Inner>) -> MutexGuard<'a, Inner> {
        if inner.run == RunState::Paused && !inner.capturing {
            inner.parked += 1;
            self.changed.notify_all();
            while inner.run == RunState::Paused && !inner.capturing {
                inner = self.changed.wait(inner).unwrap_or_else(|e| e.into_inner());
            }
            inner.parked -= 1;
        }
        inner
    }

    /// Pauses the VM if it runs and asks every vCPU to capture its state. Returns the state
    /// before, to go back to if the snapshot fails. The caller kicks the vCPUs, waits with
    /// [`VmControl::wait_all_captured`], and ends with [`VmControl::end_capture`].
    pub fn begin_capture(&self) -> Result<RunState, RunState> {
        let mut inner = self.lock();
        let before = inner.run;
        match before {
            RunState::Stopping => return Err(before),
            _ if inner.capturing => return Err(before),
            _ => {}
        }
        inner.run = RunState::Paused;
        inner.capture += 1;
        inner.capturing = true;
        inner.captured = 0;
        self.changed.notify_all();
        Ok(before)
    }

    /// Called by a vCPU once its state is recorded.
    pub fn vcpu_captured(&self) {
        let mut inner = self.lock();
        inner.captured += 1;
        self.changed.notify_all();
    }

    /// Waits until every live vCPU has captured its state, for at most `timeout`.
    pub fn wait_all_captured(&self, timeout: Duration) -> bool {
        let guard = self.lock();
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |i| {
                i.run == RunState::Paused && i.captured < i.live
            })
            .unwrap_or_else(|e| e.into_inner());
        guard.run == RunState::Paused && guard.captured >= guard.live
    }

    /// Ends a capture: the VM stays paused, or goes back to `state` (after a failure).
    pub fn end_capture(&self, state: RunState) {
        let mut inner = self.lock();
        inner.capturing = false;
        if inner.run == RunState::Paused && state == RunState::Running {
            inner.run = RunState::Running;
        }
        self.changed.notify_all();
    }

    /// Records that a vCPU thread has left.
    pub fn vcpu_exited(&self) {
        let mut inner = self.lock();
        inner.live = inner.live.saturating_sub(1);
        self.changed.notify_all();
    }

    /// Signals a device event: wakes guests waiting on the wait port.
    pub fn notify_event(&self) {
        let mut inner = self.lock();
        inner.events = inner.events.wrapping_add(1);
        self.changed.notify_all();
    }

    /// Blocks a vCPU for the guest until an event newer than `*seen` arrives, `deadline`
    /// passes, or the VM stops. A pause holds the wait. Updates `*seen`.
    pub fn guest_wait(&self, seen: &mut u64, deadline: Option<Instant>) -> WaitOutcome {
        let mut inner = self.lock();
        loop {
            inner = self.hold_while_paused(inner);
            if inner.run == RunState::Stopping {
                return WaitOutcome::Stopping;
            }
            if inner.capturing {
                return WaitOutcome::Interrupted;
            }
            if inner.events != *seen {
                *seen = inner.events;
                return WaitOutcome::Event;
            }
            let now = Instant::now();
            match deadline {
                Some(d) if d <= now => return WaitOutcome::Timeout,
                Some(d) => {
                    inner = self
                        .changed
                        .wait_timeout(inner, d - now)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0);
                }
                None => {
                    inner = self.changed.wait(inner).unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }

    /// Waits until the VM has an exit reason, and returns it.
    pub fn wait_for_exit(&self) -> ExitReason {
        let mut inner = self.lock();
        loop {
            if let Some(reason) = &inner.exit {
                return reason.clone();
            }
            inner = self.changed.wait(inner).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Waits until every vCPU thread has left, for at most `timeout`.
    pub fn wait_vcpus_gone(&self, timeout: Duration) -> bool {
        let guard = self.lock();
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |i| i.live > 0)
            .unwrap_or_else(|e| e.into_inner());
        guard.live == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn first_exit_reason_wins() {
        let c = VmControl::new(1);
        assert!(c.request_exit(ExitReason::PowerOff(0)));
        assert!(!c.request_exit(ExitReason::Stopped));
        assert_eq!(c.wait_for_exit(), ExitReason::PowerOff(0));
        assert_eq!(c.run_state(), RunState::Stopping);
        assert_eq!(c.vcpu_step(&mut 0), VcpuStep::Leave);
    }

    #[test]
    fn pause_holds_vcpus_until_resume() {
        let c = Arc::new(VmControl::new(1));
        c.set_paused(true).unwrap();
        let vcpu = {
            let c = c.clone();
            std::thread::spawn(move || c.vcpu_step(&mut 0))
        };
        assert!(c.wait_all_parked(Duration::from_secs(5)));
        assert_eq!(c.set_paused(true), Err(RunState::Paused));
        c.set_paused(false).unwrap();
        assert_eq!(vcpu.join().unwrap(), VcpuStep::Run);
    }

    #[test]
    fn a_capture_reaches_parked_and_waiting_vcpus_once() {
        let c = Arc::new(VmControl::new(2));
        c.set_paused(true).unwrap();
        // One vCPU parked by the pause, one blocked on the wait port.
        let parked = {
            let c = c.clone();
            std::thread::spawn(move || {
                let mut done = 0;
                let mut steps = Vec::new();
                loop {
                    let step = c.vcpu_step(&mut done);
                    steps.push(step);
                    match step {
                        VcpuStep::Capture => c.vcpu_captured(),
                        _ => return steps,
                    }
                }
            })
        };
        let waiting = {
            let c = c.clone();
            std::thread::spawn(move || c.guest_wait(&mut 0, None))
        };
        assert!(c.wait_all_parked(Duration::from_secs(5)));
        assert_eq!(c.begin_capture(), Ok(RunState::Paused));
        assert_eq!(waiting.join().unwrap(), WaitOutcome::Interrupted);
        let mut done = 0;
        assert_eq!(c.vcpu_step(&mut done), VcpuStep::Capture);
        c.vcpu_captured();
        assert!(c.wait_all_captured(Duration::from_secs(5)));
        c.end_capture(RunState::Paused);
        assert_eq!(c.run_state(), RunState::Paused);
        c.set_paused(false).unwrap();
        assert_eq!(
            parked.join().unwrap(),
            vec![VcpuStep::Capture, VcpuStep::Run],
            "captured once, then ran"
        );
        assert_eq!(c.vcpu_step(&mut done), VcpuStep::Run);
    }

    #[test]
    fn a_failed_capture_resumes_a_running_vm() {
        let c = VmControl::new(0);
        assert_eq!(c.begin_capture(), Ok(RunState::Running));
        assert_eq!(c.begin_capture(), Err(RunState::Paused), "one at a time");
        assert!(
            c.set_paused(false).is_err(),
            "no resume in the middle of a capture"
        );
        assert!(c.wait_all_captured(Duration::from_millis(10)));
        c.end_capture(RunState::Running);
        assert_eq!(c.run_state(), RunState::Running);
    }

    #[test]
    fn guest_wait_wakes_on_event_and_times_out() {
        let c = Arc::new(VmControl::new(1));
        let mut seen = 0;
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(c.guest_wait(&mut seen, Some(soon)), WaitOutcome::Timeout);
        let notifier = {
            let c = c.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                c.notify_event();
            })
        };
        assert_eq!(c.guest_wait(&mut seen, None), WaitOutcome::Event);
        notifier.join().unwrap();
        assert_eq!(seen, 1);
        // An event that came between two waits is not lost.
        c.notify_event();
        assert_eq!(c.guest_wait(&mut seen, None), WaitOutcome::Event);
    }

    #[test]
    fn stop_ends_a_guest_wait() {
        let c = Arc::new(VmControl::new(1));
        let waiter = {
            let c = c.clone();
            std::thread::spawn(move || c.guest_wait(&mut 0, None))
        };
        std::thread::sleep(Duration::from_millis(20));
        c.request_exit(ExitReason::Stopped);
        assert_eq!(waiter.join().unwrap(), WaitOutcome::Stopping);
    }

    #[test]
    fn a_pause_parks_a_guest_waiting_on_the_wait_port_at_once() {
        let c = Arc::new(VmControl::new(1));
        let waiter = {
            let c = c.clone();
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(30);
                c.guest_wait(&mut 0, Some(deadline))
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        c.set_paused(true).unwrap();
        assert!(
            c.wait_all_parked(Duration::from_secs(5)),
            "parked long before the wait's deadline"
        );
        c.notify_event();
        c.set_paused(false).unwrap();
        assert_eq!(waiter.join().unwrap(), WaitOutcome::Event);
    }

    #[test]
    fn exit_codes() {
        assert_eq!(ExitReason::PowerOff(1).exit_code(), 0);
        assert_eq!(ExitReason::Reset.exit_code(), 0);
        assert_eq!(ExitReason::GuestFailure("x".into()).exit_code(), 2);
    }
}
