//! A transport's state for snapshots: saved with the device's live queue positions, and
//! restored (restarting the device) into a fresh transport.

use super::{MmioTransport, lock};
use crate::devices::virtio::queue::{Queue, QueueError, QueueState};
use crate::devices::virtio::{ActivateError, Activation};

/// A transport's registers and its device's queues, as a snapshot keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportState {
    /// The device status register.
    pub status: u32,
    /// DeviceFeaturesSel.
    pub device_features_sel: u32,
    /// DriverFeaturesSel.
    pub driver_features_sel: u32,
    /// The features the driver wrote.
    pub driver_features: u64,
    /// QueueSel.
    pub queue_sel: u32,
    /// ConfigGeneration (constant here: config spaces never change under the driver).
    pub config_generation: u32,
    /// Whether the driver set DRIVER_OK and the device was started.
    pub active: bool,
    /// Whether the device is still serving its queues (it stops on a malformed queue).
    pub device_live: bool,
    /// Pending InterruptStatus bits.
    pub interrupt_status: u32,
    /// Whether the device is in its error state (DEVICE_NEEDS_RESET).
    pub needs_reset: bool,
    /// Each queue: the device's live copy when it is serving, else the transport's.
    pub queues: Vec<QueueState>,
    /// The device's own state (`VirtioDevice::save_extra`).
    pub device_extra: Vec<u8>,
}

/// Why a transport's saved state does not fit the device restoring it.
#[derive(Debug, thiserror::Error)]
pub enum TransportRestoreError {
    /// The device has other queues than the snapshot.
    #[error("the snapshot has {saved} queues of sizes {saved_max:?}, the device {have:?}")]
    Queues {
        /// Queues in the snapshot.
        saved: usize,
        /// Their maximum sizes.
        saved_max: Vec<u16>,
        /// The device's maximum sizes.
        have: Vec<u16>,
    },
    /// A saved queue does not lie in guest memory.
    #[error("saved queue {index} is invalid")]
    BadQueue {
        /// The queue.
        index: usize,
        /// The cause.
        #[source]
        source: QueueError,
    },
    /// The device could not be started again.
    #[error("the device could not be started again")]
    Activate(#[source] ActivateError),
}

impl MmioTransport {
    /// The registers and queue positions, for a snapshot (the device must be quiet: the event
    /// loop held and the vCPUs out of the guest).
    pub fn save_state(&self) -> TransportState {
        let device = lock(&self.device);
        let live = device.active_queues().filter(|_| self.active);
        TransportState {
            status: self.status,
            device_features_sel: self.device_features_sel,
            driver_features_sel: self.driver_features_sel,
            driver_features: self.driver_features,
            queue_sel: self.queue_sel,
            config_generation: 0,
            active: self.active,
            device_live: live.is_some(),
            interrupt_status: self.interrupt.status(),
            needs_reset: self.interrupt.needs_reset(),
            queues: live
                .as_ref()
                .unwrap_or(&self.queues)
                .iter()
                .map(Queue::state)
                .collect(),
            device_extra: device.save_extra(),
        }
    }

    /// Puts the transport where `state` says and, if the device was serving its queues,
    /// starts it again at the saved positions (guest memory must already be restored).
    pub fn restore_state(&mut self, state: &TransportState) -> Result<(), TransportRestoreError> {
        let have: Vec<u16> = self.queues.iter().map(|q| q.max_size).collect();
        let saved_max: Vec<u16> = state.queues.iter().map(|q| q.max_size).collect();
        if have != saved_max {
            return Err(TransportRestoreError::Queues {
                saved: state.queues.len(),
                saved_max,
                have,
            });
        }
        self.queues = state.queues.iter().map(Queue::from_state).collect();
        self.status = state.status;
        self.device_features_sel = state.device_features_sel;
        self.driver_features_sel = state.driver_features_sel;
        self.driver_features = state.driver_features;
        self.queue_sel = state.queue_sel;
        self.active = state.active;
        self.interrupt
            .restore(state.interrupt_status, state.needs_reset);
        lock(&self.device).restore_extra(&state.device_extra);
        if !(state.active && state.device_live) {
            return Ok(());
        }
        for (index, q) in self.queues.iter().enumerate() {
            q.validate(&self.memory)
                .map_err(|source| TransportRestoreError::BadQueue { index, source })?;
        }
        let activation = Activation {
            memory: self.memory.clone(),
            queues: self.queues_for_activation(),
            acked_features: self.driver_features,
            interrupt: self.interrupt.clone(),
        };
        lock(&self.device)
            .activate(activation)
            .map_err(TransportRestoreError::Activate)
    }
}
