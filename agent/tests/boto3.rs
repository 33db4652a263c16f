//! The real boto3 (from PyPI, in a virtualenv outside the checkout) against a real agent.

mod common;

use std::path::Path;
use std::process::Command;

use common::Agent;

#[test]
fn boto3_drives_the_lifecycle_and_key_pairs() {
    let python = common::venv_python();
    let agent = Agent::start(&["--stop-timeout", "5"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/boto3_smoke.py");
    let out = Command::new(python)
        .arg(script)
        .arg(&agent.endpoint)
        .arg(agent.dir.path())
        .arg(common::probe_manifest())
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_REGION")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("boto3 smoke: ok"),
        "boto3 smoke failed:\n{stdout}\n{}\nagent log tail:\n{}",
        String::from_utf8_lossy(&out.stderr),
        common::tail(&agent.log(), 30)
    );
}
