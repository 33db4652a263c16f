//! CloudWatch alarms on a real agent: boto3 (its default RPC v2 CBOR, and forced to awsJson
//! and awsQuery) and the `aws` CLI drive alarms over custom high-resolution metrics through
//! every transition, a composite alarm follows its child, bad input gets CloudWatch's codes;
//! an EC2 stop action really stops a probe instance, and alarms with their history survive
//! an agent restart; a recover action restarts the instance's vmm, the instance keeping its
//! id and address.

mod common;

use std::time::Duration;

use common::Agent;

#[test]
fn alarms_go_ok_alarm_ok_for_boto3_in_each_protocol_and_the_cli() {
    let agent = Agent::start(&[]);
    let out = common::run_python(
        &agent,
        "cloudwatch_alarms.py",
        &["clients"],
        "cloudwatch alarms: ok",
    );
    for protocol in ["smithy-rpc-v2-cbor", "json", "query", "the aws CLI"] {
        assert!(
            out.contains(&format!("cloudwatch over {protocol}: ok")),
            "{out}"
        );
    }
}

#[test]
fn a_stop_action_stops_the_instance_and_alarms_survive_a_restart() {
    let mut agent = Agent::start(&[]);
    let ami = agent.register_probe();
    let id = agent.run_one(&ami);
    agent.wait_state(&id, "running", Duration::from_secs(30));
    common::run_python(
        &agent,
        "cloudwatch_alarms.py",
        &["stop", &id],
        "stop alarm: ok",
    );
    agent.wait_state(&id, "stopped", Duration::from_secs(60));
    agent.restart();
    common::run_python(&agent, "cloudwatch_alarms.py", &["kept"], "kept: ok");
}

#[test]
fn a_recover_action_restarts_the_vmm_keeping_the_instance() {
    let agent = Agent::start(&[]);
    let ami = agent.register_probe();
    let id = agent.run_one(&ami);
    agent.wait_state(&id, "running", Duration::from_secs(30));
    let pid = agent.vmm_pid(&id).expect("a running instance has a vmm");
    let address = private_ip(&agent, &id);
    assert!(address.starts_with("172.31."), "{address:?}");
    common::run_python(
        &agent,
        "cloudwatch_alarms.py",
        &["recover", &id],
        "recover alarm: ok",
    );
    assert!(
        common::eventually(Duration::from_secs(60), || agent
            .vmm_pid(&id)
            .is_some_and(|p| p != pid)
            && agent.instance(&id).state == "running"),
        "the vmm was not restarted: pid {:?}, {:?}\n{}",
        agent.vmm_pid(&id),
        agent.instance(&id),
        common::tail(&agent.log(), 40)
    );
    assert!(!common::pid_alive(pid), "the old vmm is gone");
    assert_eq!(
        private_ip(&agent, &id),
        address,
        "the instance keeps its address"
    );
}

/// The instance's private address, from DescribeInstances.
fn private_ip(agent: &Agent, id: &str) -> String {
    let xml = agent.call("DescribeInstances", &[("InstanceId.1", id)]);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    doc.descendants()
        .find(|n| n.has_tag_name("privateIpAddress"))
        .and_then(|n| n.text())
        .unwrap_or_default()
        .to_string()
}
