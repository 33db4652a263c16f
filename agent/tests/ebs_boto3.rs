//! The real boto3 (from the virtualenv the boto3 test makes) against a real agent's EBS.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Agent;

/// The virtualenv's python with boto3: `$KEC2_VENV`, else `/var/cache/kec2/venv`.
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("KEC2_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/kec2/venv"));
    let python = venv.join("bin/python3");
    assert!(
        python.exists(),
        "{} is missing: run `cargo test -p agent --test boto3` first, which makes the venv",
        python.display()
    );
    python
}

#[test]
fn boto3_drives_volumes_snapshots_and_block_device_mappings() {
    let python = venv_python();
    let agent = Agent::start(&["--stop-timeout", "5"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ebs_boto3.py");
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
        out.status.success() && stdout.contains("ebs boto3: ok"),
        "ebs boto3 failed:\n{stdout}\n{}\nagent log tail:\n{}",
        String::from_utf8_lossy(&out.stderr),
        common::tail(&agent.log(), 30)
    );
}
