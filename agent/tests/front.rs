//! The agent's one endpoint as a multi-service front: STS and CloudWatch answer beside EC2
//! (boto3 and the `aws` CLI, CloudWatch over each of its protocols), and every EC2 operation
//! the agent serves is checked against botocore's model before any handler runs.

mod common;

use common::Agent;

#[test]
fn sts_and_cloudwatch_answer_on_the_ec2_endpoint_in_each_protocol() {
    let agent = Agent::start(&[]);
    common::run_python(&agent, "front_services.py", &[], "front services: ok");
}

#[test]
fn every_ec2_operation_refuses_missing_bad_enum_and_unknown_parameters_by_the_model() {
    let agent = Agent::start(&[]);
    let served = api::ACTIONS.join(",");
    let out = common::run_python(
        &agent,
        "ec2_validation.py",
        &[&served],
        "ec2 validation: ok",
    );
    let want = format!("ec2 validation: ok {} operations", api::ACTIONS.len());
    assert!(out.contains(&want), "{out}");
}
