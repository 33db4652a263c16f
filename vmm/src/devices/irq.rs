//! Interrupt lines as devices see them: a trait, so device logic is tested without KVM.

use vmm_sys_util::eventfd::EventFd;

/// An edge-triggered interrupt line into the guest.
pub trait IrqLine: Send + Sync {
    /// Raises the interrupt.
    fn trigger(&self) -> std::io::Result<()>;
}

/// A line backed by an eventfd registered with KVM as an irqfd.
#[derive(Debug)]
pub struct EventFdIrq(pub EventFd);

impl IrqLine for EventFdIrq {
    fn trigger(&self) -> std::io::Result<()> {
        self.0.write(1)
    }
}

impl vm_superio::Trigger for EventFdIrq {
    type E = std::io::Error;
    fn trigger(&self) -> std::io::Result<()> {
        self.0.write(1)
    }
}

/// A line that counts its triggers, for tests.
#[derive(Debug, Default, Clone)]
pub struct CountingIrq(pub std::sync::Arc<std::sync::atomic::AtomicU32>);

impl IrqLine for CountingIrq {
    fn trigger(&self) -> std::io::Result<()> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}
