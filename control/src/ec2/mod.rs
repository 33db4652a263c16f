//! EC2's domain logic, one module per resource family.

pub mod key_pairs;
pub mod security_groups;
pub mod tags;
