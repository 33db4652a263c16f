//! Boot steps for the virtio devices: open their backends, describe them (DSDT or command line),
//! and wire each one to an MMIO window, an interrupt line and the event loop.

use std::sync::{Arc, Mutex};

use kvm_ioctls::IoEventAddress;
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::EventFd;

use super::BuildError;
use crate::arch::x86_64::dsdt::MmioWindow;
use crate::config::VmConfig;
use crate::control::VmControl;
use crate::devices::bus::Bus;
use crate::devices::event_loop::{EventLoop, SharedVirtioDevice};
use crate::devices::irq::EventFdIrq;
use crate::devices::virtio::block::Block;
use crate::devices::virtio::interrupt::VirtioInterrupt;
use crate::devices::virtio::mmio::{MMIO_WINDOW, MmioTransport};
use crate::devices::virtio::net::Net;
use crate::devices::virtio::rng::Rng;
use crate::kvm::vm::Vm;

/// Where the first virtio-mmio window sits (in the 32-bit MMIO hole).
pub const VIRTIO_MMIO_START: u64 = 0xd000_0000;
/// The first virtio interrupt line; each device takes the next.
pub const VIRTIO_FIRST_IRQ: u32 = 5;
/// Offset of QueueNotify in a window.
const QUEUE_NOTIFY: u64 = 0x50;

/// A transport on the MMIO bus, shared with the snapshot code.
pub type SharedTransport = Arc<Mutex<MmioTransport>>;

/// The VM's virtio devices with their places, before they are wired up.
pub struct VirtioDevices {
    devices: Vec<(SharedVirtioDevice, u64, u32)>,
}

impl std::fmt::Debug for VirtioDevices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtioDevices")
            .field("count", &self.devices.len())
            .finish()
    }
}

/// Opens every disk and tap the config names: disks first, then cards, then the rng.
pub fn create_virtio_devices(config: &VmConfig) -> Result<VirtioDevices, BuildError> {
    let mut list: Vec<SharedVirtioDevice> = Vec::new();
    for disk in &config.disks {
        let block = Block::new(
            &disk.path,
            disk.read_only,
            &disk.guest_id(),
            disk.limiter(),
            disk.engine,
        )?;
        list.push(Arc::new(Mutex::new(block)));
    }
    for net in &config.nets {
        list.push(Arc::new(Mutex::new(Net::new(
            &net.tap,
            net.mac_bytes(),
            net.limiter(),
        )?)));
    }
    if config.rng {
        list.push(Arc::new(Mutex::new(Rng::new())));
    }
    let devices = list
        .into_iter()
        .enumerate()
        .map(|(i, dev)| {
            (
                dev,
                VIRTIO_MMIO_START + i as u64 * MMIO_WINDOW,
                VIRTIO_FIRST_IRQ + i as u32,
            )
        })
        .collect();
    Ok(VirtioDevices { devices })
}

impl VirtioDevices {
    /// The `virtio_mmio.device=` parameters that announce the devices, Linux style, for a
    /// user-mode guest or a kernel booted with `acpi=off` (any other finds them in the DSDT).
    pub fn cmdline_params(&self) -> String {
        self.devices
            .iter()
            .map(|(_, base, irq)| format!(" virtio_mmio.device=4K@{base:#x}:{irq}"))
            .collect()
    }

    /// The devices' MMIO windows, as the DSDT describes them.
    pub fn mmio_windows(&self) -> Vec<MmioWindow> {
        self.devices
            .iter()
            .map(|&(_, base, irq)| MmioWindow {
                base,
                len: MMIO_WINDOW,
                irq,
            })
            .collect()
    }

    /// Each device's type and identity, for comparison with a snapshot.
    pub fn identities(&self) -> Vec<(u32, String)> {
        self.devices
            .iter()
            .map(|(d, _, _)| {
                let dev = d.lock().unwrap_or_else(|e| e.into_inner());
                (dev.device_type(), dev.identity())
            })
            .collect()
    }

    /// Gives each device its interrupt line, queue notifications (through KVM ioeventfds where
    /// the host supports them) and MMIO window; returns the loop that will serve them and each
    /// device with its transport, in MMIO order.
    pub fn attach(
        &self,
        vm: &Vm,
        memory: &GuestMemoryMmap,
        control: &Arc<VmControl>,
        mmio: &mut Bus,
    ) -> Result<(EventLoop, Vec<(SharedVirtioDevice, SharedTransport)>), BuildError> {
        let mut event_loop = EventLoop::new()?;
        let mut attached = Vec::with_capacity(self.devices.len());
        for (device, base, irq) in &self.devices {
            let irq_evt = EventFd::new(libc::EFD_NONBLOCK).map_err(BuildError::EventFd)?;
            vm.register_irqfd(&irq_evt, *irq)?;
            let interrupt =
                VirtioInterrupt::new(Box::new(EventFdIrq(irq_evt)), Some(control.clone()));
            let queues = device
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .queue_max_sizes()
                .len();
            let mut queue_events = Vec::with_capacity(queues);
            for index in 0..queues {
                let evt = Arc::new(EventFd::new(libc::EFD_NONBLOCK).map_err(BuildError::EventFd)?);
                let addr = IoEventAddress::Mmio(base + QUEUE_NOTIFY);
                if let Err(err) = vm.fd().register_ioevent(&evt, &addr, index as u32) {
                    // The transport signals the same eventfd from the MMIO exit instead.
                    tracing::debug!("no ioeventfd for {base:#x} queue {index}: {err}");
                }
                queue_events.push(evt);
            }
            event_loop.add_device(device.clone(), &queue_events)?;
            let transport =
                MmioTransport::new(device.clone(), memory.clone(), interrupt, queue_events);
            let transport = Arc::new(Mutex::new(transport));
            mmio.insert(*base, MMIO_WINDOW, transport.clone())?;
            attached.push((device.clone(), transport));
        }
        Ok((event_loop, attached))
    }
}
