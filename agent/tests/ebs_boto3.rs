//! The real boto3 (from the virtualenv in /var/cache/kec2, made if missing) against a real agent's EBS.

mod common;

use std::path::Path;
use std::process::Command;

use common::Agent;

#[test]
fn boto3_drives_volumes_snapshots_and_block_device_mappings() {
    let python = common::venv_python();
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
