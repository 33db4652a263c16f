//! The virtio-mmio transport, version 2: the register window a driver uses to discover a
//! device, negotiate features, hand over its queues and acknowledge interrupts.

use std::sync::{Arc, Mutex};

use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::EventFd;

use super::interrupt::VirtioInterrupt;
use super::queue::{F_RING_EVENT_IDX, Queue};
use super::{Activation, F_VERSION_1, VirtioDevice, status};
use crate::devices::bus::BusDevice;

mod state;

pub use state::{TransportRestoreError, TransportState};

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
        let queues = self.queues_for_activation();
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

    /// The queues as the driver set them up, told whether event indexes were negotiated
    /// (only offered by devices that maintain them, so others never see them on).
    fn queues_for_activation(&self) -> Vec<Queue> {
        let event_idx = self.driver_features & F_RING_EVENT_IDX != 0;
        let mut queues = self.queues.clone();
        for q in &mut queues {
            q.set_event_idx(event_idx);
        }
        queues
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

    /// Whether the device is in its error state (DEVICE_NEEDS_RESET).
    pub fn is_failed(&self) -> bool {
        self.interrupt.needs_reset()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::irq::CountingIrq;
    use crate::devices::virtio::queue::testing::queue_at;
    use crate::devices::virtio::rng::Rng;
    use crate::kvm::memory::create_guest_memory;

    struct Driver {
        transport: MmioTransport,
        events: Vec<Arc<EventFd>>,
        memory: GuestMemoryMmap,
    }

    impl Driver {
        fn new() -> Self {
            let memory = create_guest_memory(1 << 20).unwrap();
            let events = vec![Arc::new(EventFd::new(libc::EFD_NONBLOCK).unwrap())];
            let device: Arc<Mutex<dyn VirtioDevice>> = Arc::new(Mutex::new(Rng::new()));
            let interrupt = VirtioInterrupt::new(Box::new(CountingIrq::default()), None);
            let transport = MmioTransport::new(device, memory.clone(), interrupt, events.clone());
            Driver {
                transport,
                events,
                memory,
            }
        }

        fn read(&mut self, offset: u64) -> u32 {
            let mut data = [0u8; 4];
            self.transport.read(0, offset, &mut data);
            u32::from_le_bytes(data)
        }

        fn write(&mut self, offset: u64, value: u32) {
            self.transport.write(0, offset, &value.to_le_bytes());
        }

        /// The spec's init sequence up to FEATURES_OK, accepting `features`.
        fn negotiate(&mut self, features: u64) {
            self.write(reg::STATUS, 0);
            self.write(reg::STATUS, status::ACKNOWLEDGE);
            self.write(reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
            self.write(reg::DRIVER_FEATURES_SEL, 0);
            self.write(reg::DRIVER_FEATURES, features as u32);
            self.write(reg::DRIVER_FEATURES_SEL, 1);
            self.write(reg::DRIVER_FEATURES, (features >> 32) as u32);
            self.write(
                reg::STATUS,
                status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
            );
        }

        fn set_queue(&mut self, size: u32) {
            let q = queue_at(&self.memory, 0x1000, 16);
            self.write(reg::QUEUE_SEL, 0);
            self.write(reg::QUEUE_NUM, size);
            self.write(reg::QUEUE_DESC_LOW, q.desc_table.0 as u32);
            self.write(reg::QUEUE_DRIVER_LOW, q.avail_ring.0 as u32);
            self.write(reg::QUEUE_DEVICE_LOW, q.used_ring.0 as u32);
            self.write(reg::QUEUE_READY, 1);
        }

        fn driver_ok(&mut self) {
            let s = self.read(reg::STATUS);
            self.write(reg::STATUS, s | status::DRIVER_OK);
        }

        fn notified(&self) -> bool {
            self.events[0].read().is_ok()
        }
    }

    #[test]
    fn identifies_itself_as_a_modern_device() {
        let mut d = Driver::new();
        assert_eq!(d.read(reg::MAGIC), MAGIC);
        assert_eq!(d.read(reg::VERSION), 2);
        assert_eq!(d.read(reg::DEVICE_ID), super::super::TYPE_RNG);
        d.write(reg::DEVICE_FEATURES_SEL, 1);
        assert_eq!(d.read(reg::DEVICE_FEATURES), 1, "VIRTIO_F_VERSION_1");
        assert_eq!(d.read(reg::QUEUE_NUM_MAX), 256);
    }

    #[test]
    fn full_init_activates_and_forwards_notifications() {
        let mut d = Driver::new();
        d.negotiate(F_VERSION_1);
        assert_ne!(d.read(reg::STATUS) & status::FEATURES_OK, 0);
        d.set_queue(16);
        d.driver_ok();
        assert_ne!(d.read(reg::STATUS) & status::DRIVER_OK, 0);
        assert!(!d.transport.is_failed());
        d.write(reg::QUEUE_NOTIFY, 0);
        assert!(d.notified());
    }

    #[test]
    fn features_without_version_1_or_not_offered_are_refused() {
        let mut d = Driver::new();
        d.negotiate(0);
        assert_eq!(
            d.read(reg::STATUS) & status::FEATURES_OK,
            0,
            "legacy drivers are refused"
        );
        let mut d = Driver::new();
        d.negotiate(F_VERSION_1 | (1 << 40));
        assert_eq!(
            d.read(reg::STATUS) & status::FEATURES_OK,
            0,
            "unoffered feature"
        );
    }

    #[test]
    fn notifications_before_driver_ok_are_ignored() {
        let mut d = Driver::new();
        d.write(reg::QUEUE_NOTIFY, 0);
        assert!(!d.notified());
        d.negotiate(F_VERSION_1);
        d.set_queue(16);
        d.write(reg::QUEUE_NOTIFY, 0);
        assert!(!d.notified(), "not yet DRIVER_OK");
    }

    #[test]
    fn a_bad_queue_size_puts_the_device_in_error_state() {
        let mut d = Driver::new();
        d.negotiate(F_VERSION_1);
        d.set_queue(12);
        d.driver_ok();
        assert_ne!(d.read(reg::STATUS) & status::DEVICE_NEEDS_RESET, 0);
        assert_ne!(
            d.read(reg::INTERRUPT_STATUS) & 2,
            0,
            "config-change interrupt"
        );
        d.write(reg::QUEUE_NOTIFY, 0);
        assert!(!d.notified(), "an inactive device gets no notifications");
        d.write(reg::STATUS, 0);
        assert_eq!(d.read(reg::STATUS), 0, "reset clears the error");
        d.negotiate(F_VERSION_1);
        d.set_queue(16);
        d.driver_ok();
        assert_eq!(d.read(reg::STATUS) & status::DEVICE_NEEDS_RESET, 0);
    }

    #[test]
    fn queue_registers_freeze_after_driver_ok_and_status_only_grows() {
        let mut d = Driver::new();
        d.negotiate(F_VERSION_1);
        d.set_queue(16);
        d.driver_ok();
        d.write(reg::QUEUE_NUM, 4);
        assert_eq!(d.transport.queues[0].size, 16);
        let before = d.read(reg::STATUS);
        d.write(reg::STATUS, status::ACKNOWLEDGE);
        assert_eq!(d.read(reg::STATUS), before, "clearing bits is ignored");
    }

    #[test]
    fn odd_sized_register_accesses_read_zero_and_write_nothing() {
        let mut d = Driver::new();
        let mut byte = [0xffu8; 1];
        d.transport.read(0, reg::MAGIC, &mut byte);
        assert_eq!(byte, [0]);
        d.transport.write(0, reg::STATUS, &[1]);
        assert_eq!(d.read(reg::STATUS), 0);
    }
}
