//! The probe: a freestanding test program that the vmm starts directly at CPL3.
//!
//! The library holds everything but the entry point: the pure logic (command line, e820,
//! scancodes, checksums, the allocator's free list), which is unit-tested on the host, and the
//! small port-I/O drivers built on it. The binary (`main.rs`, `entry.rs`) adds `_start`, the
//! stacks, the global allocator instance and the dispatch on `probe.mode=`.
//! The contract with the vmm is docs/probe-abi.md.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod bootinfo;
pub mod burn;
pub mod cmdline;
pub mod console;
pub mod count;
pub mod disk;
pub mod frames;
pub mod heap;
pub mod http;
pub mod imds;
pub mod keyboard;
pub mod mem;
pub mod netstack;
pub mod ports;
pub mod power;
pub mod selftest;
pub mod spin;
pub mod time;
pub mod userdata;
pub mod vcpus;
pub mod virtio;
pub mod wait;
