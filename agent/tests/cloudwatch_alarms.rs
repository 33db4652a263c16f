//! CloudWatch alarms on a real agent: boto3 (its default RPC v2 CBOR, and forced to awsJson
//! and awsQuery) and the `aws` CLI drive alarms over custom high-resolution metrics through
//! every transition, a composite alarm follows its child, bad input gets CloudWatch's codes;
//! an EC2 stop action really stops a probe instance, and alarms with their history survive
//! an agent restart.

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
