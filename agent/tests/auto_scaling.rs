//! Auto Scaling on a real agent with probe instances, through boto3 and the `aws autoscaling`
//! CLI (`auto_scaling.py`): a group from a launch template reaches its capacity, replaces
//! instances terminated through EC2 or whose vmm dies, scales by SetDesiredCapacity (the
//! termination policy and scale-in protection respected), a scheduled action, a step policy
//! driven by its alarm and target tracking on CPU with burning probes; every step is a
//! scaling activity worded as Auto Scaling words it; bad inputs get Auto Scaling's codes.

mod common;

use common::Agent;

#[test]
fn a_group_keeps_its_capacity_and_scales_by_policies_schedules_and_alarms() {
    // Metrics every 2 s and target-tracking alarms of 10 s keep the CPU scaling to minutes.
    let agent = Agent::start(&["--metrics-interval", "2", "--scaling-alarm-period", "10"]);
    let manifest = common::probe_manifest();
    let out = common::run_python(
        &agent,
        "auto_scaling.py",
        &[manifest.to_str().unwrap(), &agent.ns.0],
        "auto scaling: ok",
    );
    for step in [
        "bad inputs refused",
        "replacements ok",
        "scheduled action ok",
        "step scaling ok",
        "target tracking ok",
        "cli ok",
    ] {
        assert!(out.contains(step), "{out}");
    }
}
