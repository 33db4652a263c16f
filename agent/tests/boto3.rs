//! The real boto3 (from PyPI, in a virtualenv outside the checkout) against a real agent.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Agent;

/// The virtualenv with boto3: `$KEC2_VENV`, else `/var/cache/kec2/venv`; made if missing.
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("KEC2_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/kec2/venv"));
    let python = venv.join("bin/python3");
    let has_boto3 = |p: &Path| {
        Command::new(p)
            .args(["-c", "import boto3"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.exists() && has_boto3(&python) {
        return python;
    }
    std::fs::create_dir_all(venv.parent().unwrap()).expect("cannot create the venv's parent dir");
    let st = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .status();
    assert!(
        st.is_ok_and(|s| s.success()),
        "cannot create a virtualenv at {} (is python3-venv installed? scripts/install-deps.sh installs it)",
        venv.display()
    );
    let st = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "boto3"])
        .status();
    assert!(
        st.is_ok_and(|s| s.success()) && has_boto3(&python),
        "cannot install boto3 from PyPI into {}",
        venv.display()
    );
    python
}

#[test]
fn boto3_drives_the_lifecycle_and_key_pairs() {
    let python = venv_python();
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
