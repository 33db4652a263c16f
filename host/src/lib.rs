//! kec2's host data planes: one `vmm` process per instance and its supervision, bridges,
//! taps, the firewall and DHCP, the instance metadata service, volume files and the chunk
//! store. It reads and writes the state it supervises through `state`; it never imports the
//! control plane or the API.

pub mod compute;
pub mod ebs;
pub mod elb;
pub mod imds;
pub mod netns;
pub mod network;
pub mod placement;
pub mod sns;
pub mod storage;
pub mod tasks;

/// How many cases a fuzz suite runs: `PROPTEST_CASES` (64 unless set; the fuzz step of
/// `scripts/test.sh` sets many more).
pub fn fuzz_cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// The fuzz suites' proptest settings: [`fuzz_cases`] cases, and no regression files
/// written into the tree.
#[cfg(test)]
pub(crate) fn fuzz_config() -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases: fuzz_cases(),
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
