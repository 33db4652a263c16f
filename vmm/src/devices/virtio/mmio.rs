//! The virtio-mmio transport, version 2: the register window a driver uses to discover a
//! device, negotiate features, hand over its queues and acknowledge interrupts.

use std::sync::{Arc, Mutex};

use vm_memory::{GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

use super::interrupt::VirtioInterrupt;
use super::queue::Queue;
use super::{Activation, F_VERSION_1, VirtioDevice, status};
use crate::devices::bus::BusDevice;

/// Size of one device's MMIO window.
pub const MMIO_WINDOW: u64 = 0x1000;
const MAGIC: u32 = 0x7472_6976; // "virt"
const VERSION: u32 = 2;
const VENDOR: u32 = 0x4b45_4332; // "KEC2"
const CONFIG_SPACE: u64 = 0x100;

mod reg {
    pub const MAGIC: u64 = 0x000;
    pub const VERSION: u64 = 0x004;
    pub const DEVICE_ID: u64 = 0x008;
    pub const VENDOR_ID: u64 = 0x00c;
    pub const DEVICE_FEATURES: u64 = 0x010;
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    pub const DRIVER_FEATURES: u64 = 0x020;
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    pub const QUEUE_SEL: u64 = 0x030;
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    pub const QUEUE_NUM: u64 = 0x038;
    pub const QUEUE_READY: u64 = 0x044;
    pub const QUEUE_NOTIFY: u64 = 0x050;
    pub const INTERRUPT_STATUS: u64 = 0x060;
    pub const INTERRUPT_ACK: u64 = 0x064;
    pub const STATUS: u64 = 0x070;
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    pub const CONFIG_GENERATION: u64 = 0x0fc;
}

/// One device behind its MMIO window.
pub struct MmioTransport {
    device: Arc<Mutex<dyn VirtioDevice>>,
    memory: GuestMemoryMmap,
    interrupt: VirtioInterrupt,
    queue_events: Vec<Arc<EventFd>>,
    queues: Vec<Queue>,
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    active: bool,
}

impl std::fmt::Debug for MmioTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmioTransport")
            .field("status", &self.status)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

fn lock<'a>(
    device: &'a Mutex<dyn VirtioDevice + 'static>,
) -> std::sync::MutexGuard<'a, dyn VirtioDevice + 'static> {
    device.lock().unwrap_or_else(|e| e.into_inner())
}

fn set_half(value: &mut u64, high: bool, half: u32) {
    if high {
        *value = (*value & 0xffff_ffff) | (u64::from(half) << 32);
    } else {
        *value = (*value & !0xffff_ffff) | u64::from(half);
    }
}

impl MmioTransport {
    /// Wraps `device`; `queue_events[i]` is signalled when the driver notifies queue `i`.
    pub fn new(
        device: Arc<Mutex<dyn VirtioDevice>>,
        memory: GuestMemoryMmap,
        interrupt: VirtioInterrupt,
        queue_events: Vec<Arc<EventFd>>,
    ) -> Self {
        let queues = lock(&device)
            .queue_max_sizes()
            .iter()
            .map(|max| Queue::new(*max))
            .collect();
        MmioTransport {
            device,
            memory,
            interrupt,
            queue_events,
            queues,
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            active: false,
        }
    }

    /// The device status register.
    pub fn status(&self) -> u32 {
        self.status
    }

    fn selected_queue(&mut self) -> Option<&mut Queue> {
        if self.active || self.status & status::DRIVER_OK != 0 {
            return None;
        }
        self.queues.get_mut(self.queue_sel as usize)
    }

    fn read_register(&self, offset: u64) -> u32 {
        let device = lock(&self.device);
        let queue = self.queues.get(self.queue_sel as usize);
        match offset {
            reg::MAGIC => MAGIC,
            reg::VERSION => VERSION,
            reg::DEVICE_ID => device.device_type(),
            reg::VENDOR_ID => VENDOR,
            reg::DEVICE_FEATURES => {
                let features = device.features() | F_VERSION_1;
                match self.device_features_sel {
                    0 => features as u32,
                    1 => (features >> 32) as u32,
                    _ => 0,
                }
            }
            reg::QUEUE_NUM_MAX => queue.map_or(0, |q| u32::from(q.max_size)),
            reg::QUEUE_READY => queue.map_or(0, |q| u32::from(q.ready)),
            reg::INTERRUPT_STATUS => self.interrupt.status(),
            reg::STATUS => {
                if self.interrupt.needs_reset() {
                    self.status | status::DEVICE_NEEDS_RESET
                } else {
                    self.status
                }
            }
            reg::CONFIG_GENERATION => 0,
            _ => 0,
        }
    }

    fn write_register(&mut self, offset: u64, value: u32) {
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = value,
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            reg::DRIVER_FEATURES if self.status & status::FEATURES_OK == 0 => {
                match self.driver_features_sel {
                    0 => set_half(&mut self.driver_features, false, value),
                    1 => set_half(&mut self.driver_features, true, value),
                    _ => {}
                }
            }
            reg::QUEUE_SEL => self.queue_sel = value,
            reg::QUEUE_NUM => {
                if let Some(q) = self.selected_queue() {
                    q.size = value as u16;
                }
            }
            reg::QUEUE_READY => {
                if let Some(q) = self.selected_queue() {
                    q.ready = value == 1;
                }
            }
            reg::QUEUE_DESC_LOW | reg::QUEUE_DESC_HIGH => {
                if let Some(q) = self.selected_queue() {
                    set_half(&mut q.desc_table.0, offset == reg::QUEUE_DESC_HIGH, value);
                }
            }
            reg::QUEUE_DRIVER_LOW | reg::QUEUE_DRIVER_HIGH => {
                if let Some(q) = self.selected_queue() {
                    set_half(&mut q.avail_ring.0, offset == reg::QUEUE_DRIVER_HIGH, value);
                }
            }
            reg::QUEUE_DEVICE_LOW | reg::QUEUE_DEVICE_HIGH => {
                if let Some(q) = self.selected_queue() {
                    set_half(&mut q.used_ring.0, offset == reg::QUEUE_DEVICE_HIGH, value);
                }
            }
            reg::QUEUE_NOTIFY if self.active => {
                if let Some(evt) = self.queue_events.get(value as usize) {
                    let _ = evt.write(1);
                }
            }
            reg::INTERRUPT_ACK => self.interrupt.acknowledge(value),
            reg::STATUS => self.write_status(value),
            _ => {}
        }
    }

    fn write_status(&mut self, value: u32) {
        if value == 0 {
            self.reset();
            return;
        }
        // The driver only ever adds bits; anything else is ignored.
        if value & self.status != self.status {
            return;
        }
        let added = value & !self.status;
        if added & status::FEATURES_OK != 0 && !self.features_acceptable() {
            self.status = value & !status::FEATURES_OK;
            return;
        }
        self.status = value;
        if added & status::DRIVER_OK != 0 && self.status & status::FEATURES_OK != 0 {
            self.activate();
        }
    }

    /// The driver accepted only offered features, and virtio 1.x.
    fn features_acceptable(&self) -> bool {
        let offered = lock(&self.device).features() | F_VERSION_1;
        self.driver_features & !offered == 0 && self.driver_features & F_VERSION_1 != 0
    }

    fn activate(&mut self) {
        let queues: Vec<Queue> = self.queues.clone();
        for (index, q) in queues.iter().enumerate() {
            if let Err(err) = q.validate(&self.memory).map_err(|e| (index, e)) {
                tracing::warn!("virtio queue {} rejected: {}", err.0, err.1);
                self.needs_reset();
                return;
            }
        }
        let activation = Activation {
            memory: self.memory.clone(),
            queues,
            acked_features: self.driver_features,
            interrupt: self.interrupt.clone(),
        };
        let result = lock(&self.device).activate(activation);
        match result {
            Ok(()) => self.active = true,
            Err(err) => {
                tracing::warn!("virtio device activation failed: {err}");
                self.needs_reset();
            }
        }
    }

    fn needs_reset(&mut self) {
        self.interrupt.signal_needs_reset();
    }

    fn reset(&mut self) {
        lock(&self.device).reset();
        self.status = 0;
        self.active = false;
        self.driver_features = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.queue_sel = 0;
        for q in &mut self.queues {
            *q = Queue::new(q.max_size);
        }
        self.interrupt.clear();
    }

    /// The ring addresses the driver set for queue `index` (for tests and diagnostics).
    pub fn queue_addresses(
        &self,
        index: usize,
    ) -> Option<(GuestAddress, GuestAddress, GuestAddress)> {
        self.queues
            .get(index)
            .map(|q| (q.desc_table, q.avail_ring, q.used_ring))
    }
}

impl BusDevice for MmioTransport {
    fn read(&mut self, _base: u64, offset: u64, data: &mut [u8]) {
        if offset >= CONFIG_SPACE {
            lock(&self.device).read_config(offset - CONFIG_SPACE, data);
            return;
        }
        let value = if data.len() == 4 && offset % 4 == 0 {
            self.read_register(offset)
        } else {
            0
        };
        for (dst, src) in data.iter_mut().zip(value.to_le_bytes()) {
            *dst = src;
        }
    }

    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) {
        if offset >= CONFIG_SPACE {
            lock(&self.device).write_config(offset - CONFIG_SPACE, data);
            return;
        }
        if data.len() == 4 && offset % 4 == 0 {
            let value = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            self.write_register(offset, value);
        }
    }
}
