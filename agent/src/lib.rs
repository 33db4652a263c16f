//! kec2's host agent: persistent state, the instance lifecycle over one `vmm` process per
//! instance, the EC2 Query API, and the `ec2` command-line client.

pub mod api;
pub mod cli;
pub mod compute;
pub mod config;
pub mod credentials;
pub mod daemon;
pub mod imds;
pub mod network;
pub mod state;
pub mod storage;
pub mod tasks;

/// An error and its chain of causes on one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
