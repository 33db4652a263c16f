//! Instance networking on the host: VPC bridges and ENI taps, DHCP per tap, the firewall
//! (security groups, anti-spoofing, metadata redirects, public addresses), and the service
//! that keeps all of it in step with the database.

pub mod addressing;
pub mod cidr;
pub mod dhcp;
pub mod firewall;
pub mod links;
pub mod packet_socket;
pub mod reachability;
pub mod service;

pub use service::{Network, NetworkConfig, NetworkError};
