//! EC2's domain logic, one module per resource family.

pub mod images;
pub mod security_groups;
pub mod snapshots;
pub mod volumes;

pub mod block_devices;
pub mod delete_on_termination;
#[cfg(test)]
mod ebs_tests;
