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
        "health, detach and attach ok",
        "scheduled action ok",
        "step scaling ok",
        "target tracking ok",
        "cli ok",
    ] {
        assert!(out.contains(step), "{out}");
    }
}

#[test]
fn the_ec2_cli_creates_describes_and_resizes_a_group() {
    let agent = Agent::start(&[]);
    let ami = agent.register_probe();
    agent.call(
        "CreateLaunchTemplate",
        &[
            ("LaunchTemplateName", "cli"),
            ("LaunchTemplateData.ImageId", &ami),
            ("LaunchTemplateData.InstanceType", "t2.micro"),
        ],
    );
    let subnet = common::network::first(&agent.call("DescribeSubnets", &[]), "subnetId");
    agent.ec2_ok(&[
        "create-auto-scaling-group",
        "--auto-scaling-group-name",
        "cli",
        "--launch-template-name",
        "cli",
        "--min-size",
        "1",
        "--max-size",
        "2",
        "--vpc-zone-identifier",
        &subnet,
    ]);
    let in_service = |n: usize| {
        common::eventually(std::time::Duration::from_secs(60), || {
            agent
                .ec2_ok(&["describe-auto-scaling-groups"])
                .matches("(InService)")
                .count()
                == n
        })
    };
    assert!(
        in_service(1),
        "{}",
        agent.ec2_ok(&["describe-auto-scaling-groups"])
    );
    let refused = agent.ec2(&[
        "set-desired-capacity",
        "--auto-scaling-group-name",
        "cli",
        "--desired-capacity",
        "3",
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("ValidationError"));
    agent.ec2_ok(&[
        "set-desired-capacity",
        "--auto-scaling-group-name",
        "cli",
        "--desired-capacity",
        "2",
    ]);
    assert!(
        in_service(2),
        "{}",
        agent.ec2_ok(&["describe-auto-scaling-groups"])
    );
    let json = agent.ec2_ok(&["describe-auto-scaling-groups", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["AutoScalingGroups"][0]["DesiredCapacity"], 2, "{json}");
    let activities = agent.ec2_ok(&[
        "describe-scaling-activities",
        "--auto-scaling-group-name",
        "cli",
    ]);
    let launched = activities
        .lines()
        .filter(|l| l.starts_with("Successful") && l.contains("Launching a new EC2 instance: i-"))
        .count();
    assert_eq!(launched, 2, "{activities}");
}

#[test]
fn predictive_scaling_forecasts_a_synthetic_daily_load() {
    let agent = Agent::start(&[]);
    common::run_python(
        &agent,
        "auto_scaling_forecast.py",
        &[],
        "auto scaling forecast: ok",
    );
}

/// The group's instances that are not terminated, by their `aws:autoscaling:groupName` tag.
fn tagged_live(agent: &Agent, group: &str) -> Vec<String> {
    let xml = agent.call(
        "DescribeInstances",
        &[
            ("Filter.1.Name", "tag:aws:autoscaling:groupName"),
            ("Filter.1.Value.1", group),
            ("Filter.2.Name", "instance-state-name"),
            ("Filter.2.Value.1", "pending"),
            ("Filter.2.Value.2", "running"),
        ],
    );
    common::instance_ids(&xml)
}

#[test]
fn a_restart_in_the_middle_of_launches_neither_loses_nor_doubles_them() {
    let mut agent = Agent::start(&[]);
    let ami = agent.register_probe();
    agent.call(
        "CreateLaunchTemplate",
        &[
            ("LaunchTemplateName", "restart"),
            ("LaunchTemplateData.ImageId", &ami),
            ("LaunchTemplateData.InstanceType", "t2.micro"),
        ],
    );
    let subnet = common::network::first(&agent.call("DescribeSubnets", &[]), "subnetId");
    agent.call_service(
        cli::client::AUTOSCALING,
        "CreateAutoScalingGroup",
        &[
            ("AutoScalingGroupName", "r"),
            ("LaunchTemplate.LaunchTemplateName", "restart"),
            ("MinSize", "3"),
            ("MaxSize", "3"),
            ("VPCZoneIdentifier", &subnet),
        ],
    );
    // Killed at once, while its launch activities are open (some instances launched or
    // being launched, some not): the restarted agent resumes them, launching each once.
    agent.kill9();
    agent.restart();
    let done = common::eventually(std::time::Duration::from_secs(90), || {
        let xml = agent.call_service(
            cli::client::AUTOSCALING,
            "DescribeAutoScalingGroups",
            &[("AutoScalingGroupNames.member.1", "r")],
        );
        xml.matches("<LifecycleState>InService</LifecycleState>")
            .count()
            == 3
    });
    assert!(done, "{}", common::tail(&agent.log(), 40));
    let live = tagged_live(&agent, "r");
    assert_eq!(live.len(), 3, "{live:?}");
    let xml = agent.call_service(
        cli::client::AUTOSCALING,
        "DescribeScalingActivities",
        &[("AutoScalingGroupName", "r")],
    );
    assert!(
        !xml.contains("<StatusCode>InProgress</StatusCode>"),
        "{xml}"
    );
}
