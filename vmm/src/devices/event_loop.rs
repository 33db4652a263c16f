//! The VM's device thread: one epoll loop that delivers queue notifications, tap readiness
//! and rate-limit timers to the virtio devices, so vCPUs never wait on device I/O.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

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
        let mut event_loop = EventLoop {
            epoll,
            sources: Vec::new(),
            exit: exit.clone(),
        };
        event_loop.watch(exit.as_raw_fd(), Source::Exit, EventSet::IN)?;
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
