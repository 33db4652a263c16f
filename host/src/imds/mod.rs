//! The instance metadata service: IMDSv2 session tokens, the metadata versions, the metadata
//! tree, the answer to one request, the metadata read from the database, and the HTTP listeners at
//! 169.254.169.254, one per ENI, so a request is tied to the ENI it arrived on (never to its
//! source address).

#[cfg(test)]
mod fuzz;
pub mod handler;
pub mod http;
pub mod metadata;
pub mod server;
pub mod source;
pub mod tokens;
pub mod versions;

/// The metadata service's address.
pub const IMDS_IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(169, 254, 169, 254);
