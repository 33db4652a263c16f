//! The monitoring loop on a real agent (`alarm_notifications.py`): a CPU alarm on a burning
//! probe notifies an SNS topic's HTTP subscriber with CloudWatch's alarm JSON and clears when
//! the burn stops; a status-check alarm's reboot action reboots an instance that stopped
//! answering ARP.

mod common;

use std::time::Duration;

use common::network::{create_group, first};
use common::{Agent, eventually, instance_ids};

#[test]
fn a_cpu_alarm_notifies_a_webhook_and_a_failed_check_reboots_the_instance() {
    let agent = Agent::start(&["--metrics-interval", "2"]);
    let ami = agent.register_probe();
    let group = create_group(&agent, "web", None);
    agent.call(
        "AuthorizeSecurityGroupIngress",
        &[
            ("GroupId", &group),
            ("IpPermissions.1.IpProtocol", "tcp"),
            ("IpPermissions.1.FromPort", "80"),
            ("IpPermissions.1.ToPort", "80"),
            ("IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0"),
        ],
    );
    let xml = agent.call(
        "RunInstances",
        &[
            ("ImageId", &ami),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("InstanceType", "t2.micro"),
            ("SecurityGroupId.1", &group),
            ("Monitoring.Enabled", "true"),
        ],
    );
    let id = instance_ids(&xml)[0].clone();
    agent.wait_state(&id, "running", Duration::from_secs(30));
    assert!(
        eventually(Duration::from_secs(30), || agent
            .console(&id)
            .contains("probe: imds done")),
        "{}",
        agent.console(&id)
    );
    let ip = first(
        &agent.call("DescribeInstances", &[("InstanceId.1", &id)]),
        "ipAddress",
    );
    let out = common::run_python(
        &agent,
        "alarm_notifications.py",
        &[&agent.ns.0, &id, &ip],
        "reboot action: ok",
    );
    assert!(out.contains("alarm notifications: ok"), "{out}");
}
