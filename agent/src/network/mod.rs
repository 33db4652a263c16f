//! Instance networking on the host: today the DHCP server that hands each ENI its address;
//! VPC bridges, taps, security groups and public addresses build on it.

pub mod dhcp;
pub mod security_groups;
