//! The microVM monitor: one KVM virtual machine per process.
//!
//! [`builder::build_microvm`] turns a [`config::VmConfig`] into a running
//! [`microvm::Microvm`]; [`microvm::Microvm::run`] waits for it to end.

pub mod api;
pub mod arch;
pub mod builder;
pub mod config;
pub mod control;
pub mod devices;
pub mod jail;
pub mod kvm;
pub mod loader;
pub mod microvm;
pub mod snapshot;
