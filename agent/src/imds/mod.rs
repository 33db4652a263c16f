//! The instance metadata service's logic: IMDSv2 session tokens, the metadata tree, and the
//! answer to one request. The HTTP listener at 169.254.169.254, and how a request is tied to
//! the ENI it arrived on, sit on top of this (never the source address alone).

pub mod handler;
pub mod metadata;
pub mod tokens;
