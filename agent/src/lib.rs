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

/// The fuzz suites' proptest settings: `PROPTEST_CASES` cases (64 unless set; the fuzz step
/// of `scripts/test.sh` sets many more), and no regression files written into the tree.
#[cfg(test)]
pub(crate) fn fuzz_config() -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}

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
