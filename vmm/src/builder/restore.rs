//! The restore recipe: a VM rebuilt from a snapshot instead of a kernel. The file is verified
//! (magic, version, length, checksum) and compared with the configuration before anything is
//! created; then memory, the interrupt controllers, devices and vCPUs get their saved state, and
//! the guest resumes where it stopped.

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::{BuildError, Parts, attach_legacy_devices, create_memory, launch, validate, virtio};
use crate::arch::x86_64::layout::{MIB, ram_regions};
use crate::config::VmConfig;
use crate::control::VmControl;
use crate::devices::bus::Bus;
use crate::kvm::vcpu::Vcpu;
use crate::kvm::vm::Vm;
use crate::microvm::Microvm;
use crate::snapshot::RestoreError;
use crate::snapshot::file::{ReadError, SnapshotFile};
use crate::snapshot::state::{Header, MachineState};

fn lock<T: ?Sized>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Restores the VM saved at `path` into the machine `config` describes.
pub(super) fn restore_microvm(config: &VmConfig, path: &Path) -> Result<Microvm, BuildError> {
    let snapshot = SnapshotFile::open(path).map_err(RestoreError::from)?;
    let machine = MachineState::decode(snapshot.state()).map_err(|source| {
        RestoreError::File(ReadError::Decode {
            path: path.to_owned(),
            source,
        })
    })?;
    let header = &machine.header;
    check_machine(config, header)?;
    let vm = Vm::new()?;
    validate(config, &vm)?;
    let virtio_devices = virtio::create_virtio_devices(config)?;
    check_devices(header, &virtio_devices.identities())?;
    let memory = create_memory(&vm, config.mem_mib * MIB)?;
    snapshot
        .load_memory(&memory, &header.regions)
        .map_err(RestoreError::from)?;
    vm.setup_irqchip()?;
    vm.restore_state(&machine.vm).map_err(RestoreError::from)?;
    let control = Arc::new(VmControl::new(config.vcpus));
    let legacy = attach_legacy_devices(&vm, config, &control, Some(&machine.devices))?;
    let tsc_khz = (header.tsc_khz != 0).then_some(header.tsc_khz);
    let mut vcpus = Vec::with_capacity(machine.vcpus.len());
    for (index, state) in machine.vcpus.iter().enumerate() {
        let mut vcpu = Vcpu::new(&vm, index as u32)?;
        vcpu.restore(state, tsc_khz).map_err(RestoreError::from)?;
        vcpus.push(vcpu);
    }
    let mut mmio = Bus::default();
    let (event_loop, virtio) = virtio_devices.attach(&vm, &memory, &control, &mut mmio)?;
    // Last: a device that was serving its queues starts again and may serve requests.
    for (index, ((_, transport), state)) in
        virtio.iter().zip(&machine.devices.transports).enumerate()
    {
        lock(transport)
            .restore_state(state)
            .map_err(|source| RestoreError::Transport { index, source })?;
    }
    launch(
        config,
        Parts {
            vm,
            memory,
            control,
            legacy,
            mmio,
            event_loop,
            virtio,
            vcpus,
            mode: header.entry,
            tsc_khz: header.tsc_khz,
        },
    )
}

/// The vCPU count and memory must be the snapshot's, laid out as this VMM lays them out.
fn check_machine(config: &VmConfig, header: &Header) -> Result<(), RestoreError> {
    if header.vcpus != config.vcpus {
        return Err(RestoreError::Vcpus {
            snapshot: header.vcpus,
            config: config.vcpus,
        });
    }
    let mem_size = header.mem_size();
    if mem_size != config.mem_mib * MIB {
        return Err(RestoreError::Memory {
            snapshot: mem_size / MIB,
            config: config.mem_mib,
        });
    }
    if header.regions != ram_regions(mem_size) {
        return Err(RestoreError::Regions(header.regions.clone()));
    }
    Ok(())
}

/// The virtio devices must be the snapshot's, in the same order: same type and identity.
fn check_devices(header: &Header, config: &[(u32, String)]) -> Result<(), RestoreError> {
    let list = |ids: &mut dyn Iterator<Item = &String>| {
        ids.map(String::as_str).collect::<Vec<_>>().join(", ")
    };
    if header.devices.len() != config.len() {
        return Err(RestoreError::DeviceCount {
            snapshot: header.devices.len(),
            snapshot_list: list(&mut header.devices.iter().map(|d| &d.identity)),
            config: config.len(),
            config_list: list(&mut config.iter().map(|(_, id)| id)),
        });
    }
    for (index, (saved, (kind, identity))) in header.devices.iter().zip(config).enumerate() {
        if saved.kind != *kind || saved.identity != *identity {
            return Err(RestoreError::Device {
                index,
                snapshot: saved.identity.clone(),
                config: identity.clone(),
            });
        }
    }
    Ok(())
}
