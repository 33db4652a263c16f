//! The DSDT: the devices a hardware-reduced ACPI guest learns of from the tables, since it has
//! no legacy PIC and maps an interrupt line only when a device's `_CRS` names it.
//!
//! In ASL (one `Vnnn` per virtio-mmio window, in MMIO order):
//! ```text
//! Scope (\_SB) {
//!     Device (PWRB) { Name (_HID, EisaId ("PNP0C0C")) Name (_UID, 0) }
//!     Device (GED0) {
//!         Name (_HID, "ACPI0013") Name (_UID, 0)
//!         Name (_CRS, ResourceTemplate () { Interrupt (ResourceConsumer, Edge, ActiveHigh,
//!             Exclusive) { 3 } })
//!         OperationRegion (GDST, SystemIO, 0x602, 1)
//!         Field (GDST, ByteAcc, NoLock, WriteAsZeros) { GDAT, 8 }
//!         Method (_EVT, 1, Serialized) {
//!             Local0 = GDAT
//!             If ((Local0 & 1) == 1) { Notify (\_SB.PWRB, 0x80) }
//!         }
//!     }
//!     Device (COM1) {
//!         Name (_HID, EisaId ("PNP0501")) Name (_UID, 0)
//!         Name (_CRS, ResourceTemplate () { IO (Decode16, 0x3F8, 0x3F8, 1, 8)
//!             Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 4 } })
//!     }
//!     Device (PS2K) {
//!         Name (_HID, EisaId ("PNP0303")) Name (_UID, 0)
//!         Name (_CRS, ResourceTemplate () { IO (Decode16, 0x60, 0x60, 1, 1)
//!             IO (Decode16, 0x64, 0x64, 1, 1)
//!             Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 1 } })
//!     }
//!     Device (V000) {
//!         Name (_HID, "LNRO0005") Name (_UID, 0)
//!         Name (_CRS, ResourceTemplate () { Memory32Fixed (ReadWrite, 0xD0000000, 0x1000)
//!             Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 5 } })
//!     }
//! }
//! Name (_S5, Package () { 5, 5, 0, 0 })
//! ```

use acpi_tables::aml::{
    self, Device, EISAName, Equal, Field, FieldAccessType, FieldEntry, FieldLockRule,
    FieldUpdateRule, IO, If, Interrupt, Local, Memory32Fixed, Method, Name, Notify, OpRegion,
    OpRegionSpace, Package, Path, ResourceTemplate, Scope, Store,
};
use acpi_tables::sdt::Sdt;
use acpi_tables::{Aml, AmlSink};

use super::sdt::{OEM_ID, OEM_REVISION, OEM_TABLE_ID, aml_bytes};
use crate::devices::acpi::{GED_IRQ, GED_POWER_BUTTON, GED_STATUS_PORT, S5_SLEEP_TYPE};
use crate::devices::i8042::{COMMAND_PORT, DATA_PORT, KBD_IRQ};
use crate::devices::serial::{COM1_BASE, COM1_IRQ, COM1_LEN};

/// A virtio-mmio window as the DSDT describes it: base address, length and interrupt line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmioWindow {
    pub base: u64,
    pub len: u64,
    pub irq: u32,
}

/// AML already encoded, as a child of a scope.
struct Encoded(Vec<u8>);

impl Aml for Encoded {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        sink.vec(&self.0);
    }
}

fn encode(object: &dyn Aml) -> Encoded {
    Encoded(aml_bytes(object))
}

/// An edge-triggered, active-high, exclusive interrupt the device consumes.
fn edge_irq(line: u32) -> Interrupt {
    Interrupt::new(true, true, false, false, line)
}

/// A device with a `_HID`, `_UID` 0 and the resources in `crs`.
fn plain_device(name: &str, hid: &dyn Aml, crs: Vec<&dyn Aml>) -> Encoded {
    let hid = Name::new("_HID".into(), hid);
    let uid = Name::new("_UID".into(), &aml::ZERO);
    let template = ResourceTemplate::new(crs);
    let crs = Name::new("_CRS".into(), &template);
    encode(&Device::new(name.into(), vec![&hid, &uid, &crs]))
}

fn power_button() -> Encoded {
    let hid = Name::new("_HID".into(), &EISAName::new("PNP0C0C"));
    let uid = Name::new("_UID".into(), &aml::ZERO);
    encode(&Device::new("PWRB".into(), vec![&hid, &uid]))
}

/// The GED: on its interrupt, `_EVT` reads (and so clears) the status port and notifies the
/// power button when bit 0 is set.
fn generic_event_device() -> Encoded {
    let irq = edge_irq(GED_IRQ);
    let crs = ResourceTemplate::new(vec![&irq]);
    let port = u32::from(GED_STATUS_PORT);
    let region = OpRegion::new("GDST".into(), OpRegionSpace::SystemIO, &port, &1u8);
    let field = Field::new(
        "GDST".into(),
        FieldAccessType::Byte,
        FieldLockRule::NoLock,
        FieldUpdateRule::WriteAsZeroes,
        vec![FieldEntry::Named(*b"GDAT", 8)],
    );
    let gdat = Path::new("GDAT");
    let read = Store::new(&Local(0), &gdat);
    let bit = aml::And::new(&aml::ZERO, &Local(0), &GED_POWER_BUTTON);
    let pressed = Equal::new(&bit, &GED_POWER_BUTTON);
    let pwrb_path = Path::new("\\_SB_.PWRB");
    let notify = Notify::new(&pwrb_path, &0x80u8);
    let on_press = If::new(&pressed, vec![&notify]);
    let evt = Method::new("_EVT".into(), 1, true, vec![&read, &on_press]);
    let hid = Name::new("_HID".into(), &"ACPI0013");
    let uid = Name::new("_UID".into(), &aml::ZERO);
    let crs = Name::new("_CRS".into(), &crs);
    encode(&Device::new(
        "GED0".into(),
        vec![&hid, &uid, &crs, &region, &field, &evt],
    ))
}

/// A fixed 16-bit I/O range of `len` ports at `base`.
fn io_ports(base: u64, len: u64) -> IO {
    // The ports are the vmm's constants, all below 0x400 and at most 8 long.
    IO::new(base as u16, base as u16, 1, len as u8)
}

fn com1() -> Encoded {
    let ports = io_ports(COM1_BASE, COM1_LEN);
    let irq = edge_irq(COM1_IRQ);
    plain_device("COM1", &EISAName::new("PNP0501"), vec![&ports, &irq])
}

fn keyboard_controller() -> Encoded {
    let data = io_ports(DATA_PORT, 1);
    let command = io_ports(COMMAND_PORT, 1);
    let irq = edge_irq(KBD_IRQ);
    plain_device(
        "PS2K",
        &EISAName::new("PNP0303"),
        vec![&data, &command, &irq],
    )
}

/// The virtio-mmio window `index` (Linux's virtio_mmio driver matches `LNRO0005`).
fn virtio_mmio(index: usize, window: &MmioWindow) -> Encoded {
    let name = format!("V{:03X}", index & 0xfff);
    let hid = Name::new("_HID".into(), &"LNRO0005");
    let uid = Name::new("_UID".into(), &(index as u32));
    // The windows live in the 32-bit MMIO hole (below 4 GiB) and are 4 KiB long.
    let memory = Memory32Fixed::new(true, window.base as u32, window.len as u32);
    let irq = edge_irq(window.irq);
    let template = ResourceTemplate::new(vec![&memory, &irq]);
    let crs = Name::new("_CRS".into(), &template);
    encode(&Device::new(name.as_str().into(), vec![&hid, &uid, &crs]))
}

/// The DSDT for a VM with the virtio-mmio windows `virtio`.
pub fn dsdt(virtio: &[MmioWindow]) -> Vec<u8> {
    let mut devices = vec![
        power_button(),
        generic_event_device(),
        com1(),
        keyboard_controller(),
    ];
    devices.extend(virtio.iter().enumerate().map(|(i, w)| virtio_mmio(i, w)));
    let children: Vec<&dyn Aml> = devices.iter().map(|d| d as &dyn Aml).collect();
    let sb = Scope::new("\\_SB_".into(), children);
    let s5_package = Package::new(vec![&S5_SLEEP_TYPE, &S5_SLEEP_TYPE, &aml::ZERO, &aml::ZERO]);
    let s5 = Name::new("_S5_".into(), &s5_package);
    let mut table = Sdt::new(*b"DSDT", 36, 6, OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    table.append_slice(&encode(&sb).0);
    table.append_slice(&encode(&s5).0);
    table.as_slice().to_vec()
}
