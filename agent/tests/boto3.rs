//! The real boto3 (from PyPI, in a virtualenv outside the checkout) against a real agent.

mod common;

use common::Agent;

#[test]
fn boto3_drives_the_lifecycle_and_key_pairs() {
    let agent = Agent::start(&["--stop-timeout", "5", "--metrics-interval", "1"]);
    common::run_boto3(&agent, "boto3_smoke.py", "boto3 smoke: ok");
}
