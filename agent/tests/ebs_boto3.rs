//! The real boto3 (from the virtualenv in /var/cache/kec2, made if missing) against a real
//! agent's EBS, images from instances included.

mod common;

use common::Agent;

#[test]
fn boto3_drives_volumes_snapshots_and_block_device_mappings() {
    let agent = Agent::start(&["--stop-timeout", "5"]);
    common::run_boto3(&agent, "ebs_boto3.py", "ebs boto3: ok");
}
