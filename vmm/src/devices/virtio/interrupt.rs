//! How a virtio device interrupts the guest: the transport's InterruptStatus bits, the
//! interrupt line, and a wake-up for a probe waiting on the paravirtual port.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::control::VmControl;
use crate::devices::irq::IrqLine;

/// InterruptStatus bit: a queue has new used buffers.
pub const USED_BUFFER: u32 = 1;
/// InterruptStatus bit: the configuration changed (or the device needs a reset).
pub const CONFIG_CHANGE: u32 = 2;

struct Inner {
    status: AtomicU32,
    needs_reset: AtomicBool,
    line: Box<dyn IrqLine>,
    wake: Option<Arc<VmControl>>,
}

/// A device's interrupt, shared by the device (which raises it) and the transport (which
/// reports and acknowledges it).
#[derive(Clone)]
pub struct VirtioInterrupt(Arc<Inner>);

impl std::fmt::Debug for VirtioInterrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtioInterrupt")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl VirtioInterrupt {
    /// An interrupt on `line`, also waking guests waiting on `wake`.
    pub fn new(line: Box<dyn IrqLine>, wake: Option<Arc<VmControl>>) -> Self {
        VirtioInterrupt(Arc::new(Inner {
            status: AtomicU32::new(0),
            needs_reset: AtomicBool::new(false),
            line,
            wake,
        }))
    }

    /// Sets `bit` in InterruptStatus and raises the line.
    pub fn trigger(&self, bit: u32) {
        self.0.status.fetch_or(bit, Ordering::SeqCst);
        if let Err(err) = self.0.line.trigger() {
            tracing::warn!("virtio interrupt failed: {err}");
        }
        if let Some(control) = &self.0.wake {
            control.notify_event();
        }
    }

    /// The pending InterruptStatus bits.
    pub fn status(&self) -> u32 {
        self.0.status.load(Ordering::SeqCst)
    }

    /// Puts the device in its error state (DEVICE_NEEDS_RESET) and tells the driver.
    pub fn signal_needs_reset(&self) {
        self.0.needs_reset.store(true, Ordering::SeqCst);
        self.trigger(CONFIG_CHANGE);
    }

    /// Whether the device is in its error state.
    pub fn needs_reset(&self) -> bool {
        self.0.needs_reset.load(Ordering::SeqCst)
    }

    /// Clears everything on a device reset.
    pub fn clear(&self) {
        self.0.needs_reset.store(false, Ordering::SeqCst);
        self.0.status.store(0, Ordering::SeqCst);
    }

    /// Puts back the InterruptStatus bits and error state a snapshot recorded, without raising
    /// the line (the interrupt controllers' state is restored separately).
    pub fn restore(&self, status: u32, needs_reset: bool) {
        self.0.status.store(status, Ordering::SeqCst);
        self.0.needs_reset.store(needs_reset, Ordering::SeqCst);
    }

    /// Clears the bits the driver acknowledged.
    pub fn acknowledge(&self, bits: u32) {
        self.0.status.fetch_and(!bits, Ordering::SeqCst);
    }
}
