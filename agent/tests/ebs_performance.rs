//! EBS performance as the guest sees it: the probe's random-read IOPS on gp3 (3,000 by
//! default) and io2 (10,000 provisioned) are within 10% of the volume's figure.

mod common;
mod ebs_common;

use std::time::Duration;

use common::Agent;
use ebs_common::*;

const T: Duration = Duration::from_secs(60);

/// Boots the iops probe on a fresh data volume made by `mapping`; returns the measured IOPS.
fn measured_iops(agent: &Agent, ami: &str, mapping: &[(&str, &str)]) -> u64 {
    let mut p = vec![("BlockDeviceMapping.1.DeviceName", "/dev/sdf")];
    p.extend_from_slice(mapping);
    let i = run(agent, ami, &p);
    let line = wait_line(agent, &i, "disk iops", T);
    agent.wait_state(&i, "stopped", T);
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn probe_measures_the_provisioned_iops() {
    let agent = Agent::start(&["--stop-timeout", "5"]);
    let ami = register(&agent, "probe-iops", "probe.disk=iops");
    let gp3 = measured_iops(
        &agent,
        &ami,
        &[
            ("BlockDeviceMapping.1.Ebs.VolumeSize", "1"),
            ("BlockDeviceMapping.1.Ebs.VolumeType", "gp3"),
        ],
    );
    let io2 = measured_iops(
        &agent,
        &ami,
        &[
            ("BlockDeviceMapping.1.Ebs.VolumeSize", "10"),
            ("BlockDeviceMapping.1.Ebs.VolumeType", "io2"),
            ("BlockDeviceMapping.1.Ebs.Iops", "10000"),
        ],
    );
    eprintln!("measured: gp3 (3000 IOPS) {gp3} IOPS; io2 (10000 IOPS) {io2} IOPS");
    assert!(
        (2700..=3300).contains(&gp3),
        "gp3 measured {gp3} IOPS, not within 10% of 3000"
    );
    assert!(
        (9000..=11000).contains(&io2),
        "io2 measured {io2} IOPS, not within 10% of 10000"
    );
}
