//! Emulated devices: the port I/O bus and what sits on it.

pub mod acpi;
pub mod bus;
pub mod event_loop;
pub mod i8042;
pub mod irq;
pub mod pvport;
pub mod rate_limiter;
pub mod serial;
pub mod virtio;
