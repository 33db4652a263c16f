//! EC2's domain logic, one module per resource family.

pub mod security_groups;
