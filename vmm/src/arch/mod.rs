//! Architecture support: how an x86_64 guest is laid out and started.

pub mod x86_64;
