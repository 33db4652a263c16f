//! The VM's device thread: one epoll loop that delivers queue notifications, tap readiness
//! and rate-limit timers to the virtio devices, so vCPUs never wait on device I/O.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use super::virtio::{DeviceEvent, VirtioDevice};

/// A device shared between its transport and the event loop.
pub type SharedVirtioDevice = Arc<Mutex<dyn VirtioDevice>>;

enum Source {
    /// The driver notified a queue: the eventfd must be read to clear it.
    Queue(SharedVirtioDevice, usize, Arc<EventFd>),
    /// One of the device's own descriptors (edge-triggered; the device drains it).
    DeviceFd(SharedVirtioDevice, usize),
    /// The VM is ending.
    Exit,
    /// Someone wants the loop held (a snapshot).
    Gate,
}

#[derive(Debug, Default)]
struct GateState {
    /// A hold is asked for.
    requested: bool,
    /// The loop is holding.
    held: bool,
}

/// Holds the event loop between two events, so that no device handles anything (and no
/// queue is mid-request) while a snapshot reads device state and guest memory.
#[derive(Debug)]
pub struct LoopGate {
    state: Mutex<GateState>,
    changed: Condvar,
    wake: EventFd,
}

impl LoopGate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the loop to stop between events and waits until it has, for at most `timeout`.
    /// Returns false (and withdraws the request) if it did not.
    pub fn hold(&self, timeout: Duration) -> bool {
        self.lock().requested = true;
        if self.wake.write(1).is_err() {
            self.release();
            return false;
        }
        let guard = self.lock();
        let (mut guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |s| !s.held)
            .unwrap_or_else(|e| e.into_inner());
        if !guard.held {
            guard.requested = false;
            return false;
        }
        true
    }

    /// Lets the loop go on.
    pub fn release(&self) {
        self.lock().requested = false;
        self.changed.notify_all();
    }

    /// The loop's side: parks while a hold is requested.
    fn serve(&self) {
        let _ = self.wake.read();
        let mut state = self.lock();
        if !state.requested {
            return;
        }
        state.held = true;
        self.changed.notify_all();
        while state.requested {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.held = false;
    }
}

/// Why the event loop could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EventLoopError {
    /// epoll or an eventfd could not be created or registered.
    #[error("cannot set up the device event loop")]
    Epoll(#[source] std::io::Error),
}

/// The loop, before its thread starts.
pub struct EventLoop {
    epoll: Epoll,
    sources: Vec<Source>,
    exit: Arc<EventFd>,
    gate: Arc<LoopGate>,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("sources", &self.sources.len())
            .finish_non_exhaustive()
    }
}

impl EventLoop {
    /// An empty loop.
    pub fn new() -> Result<Self, EventLoopError> {
        let epoll = Epoll::new().map_err(EventLoopError::Epoll)?;
        let exit = Arc::new(EventFd::new(libc::EFD_NONBLOCK).map_err(EventLoopError::Epoll)?);
        let gate = Arc::new(LoopGate {
            state: Mutex::new(GateState::default()),
            changed: Condvar::new(),
            wake: EventFd::new(libc::EFD_NONBLOCK).map_err(EventLoopError::Epoll)?,
        });
        let mut event_loop = EventLoop {
            epoll,
            sources: Vec::new(),
            exit: exit.clone(),
            gate: gate.clone(),
        };
        event_loop.watch(exit.as_raw_fd(), Source::Exit, EventSet::IN)?;
        event_loop.watch(gate.wake.as_raw_fd(), Source::Gate, EventSet::IN)?;
        Ok(event_loop)
    }

    fn watch(&mut self, fd: RawFd, source: Source, events: EventSet) -> Result<(), EventLoopError> {
        let token = self.sources.len() as u64;
        self.epoll
            .ctl(ControlOperation::Add, fd, EpollEvent::new(events, token))
            .map_err(EventLoopError::Epoll)?;
        self.sources.push(source);
        Ok(())
    }

    /// Watches a device's queue eventfds and its own descriptors.
    pub fn add_device(
        &mut self,
        device: SharedVirtioDevice,
        queue_events: &[Arc<EventFd>],
    ) -> Result<(), EventLoopError> {
        for (index, evt) in queue_events.iter().enumerate() {
            let source = Source::Queue(device.clone(), index, evt.clone());
            self.watch(evt.as_raw_fd(), source, EventSet::IN)?;
        }
        let fds = device.lock().unwrap_or_else(|e| e.into_inner()).extra_fds();
        for (index, fd) in fds.into_iter().enumerate() {
            let source = Source::DeviceFd(device.clone(), index);
            self.watch(fd, source, EventSet::IN | EventSet::EDGE_TRIGGERED)?;
        }
        Ok(())
    }

    /// An eventfd that ends the loop when written.
    pub fn exit_event(&self) -> Arc<EventFd> {
        self.exit.clone()
    }

    /// The gate that holds the loop for a snapshot.
    pub fn gate(&self) -> Arc<LoopGate> {
        self.gate.clone()
    }

    /// Runs the loop on its own thread until the exit event.
    pub fn start(self) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("devices".into())
            .spawn(move || self.run())
    }

    fn run(self) {
        let mut events = vec![EpollEvent::default(); 64];
        loop {
            let n = match self.epoll.wait(-1, &mut events) {
                Ok(n) => n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    tracing::error!("device event loop failed: {err}");
                    return;
                }
            };
            for event in &events[..n] {
                match self.sources.get(event.data() as usize) {
                    Some(Source::Exit) => return,
                    Some(Source::Gate) => self.gate.serve(),
                    Some(Source::Queue(device, index, evt)) => {
                        let _ = evt.read();
                        let mut dev = device.lock().unwrap_or_else(|e| e.into_inner());
                        dev.handle_event(DeviceEvent::Queue(*index));
                    }
                    Some(Source::DeviceFd(device, index)) => {
                        let mut dev = device.lock().unwrap_or_else(|e| e.into_inner());
                        dev.handle_event(DeviceEvent::Fd(*index));
                    }
                    None => {}
                }
            }
        }
    }
}
