//! The agent's one endpoint as a multi-service front: STS and CloudWatch answer beside EC2
//! (boto3 and the `aws` CLI, CloudWatch over each of its protocols), and every EC2 operation
//! the agent serves is checked against botocore's model before any handler runs.

mod common;

use std::path::Path;
use std::process::Command;

use common::Agent;

#[test]
fn sts_and_cloudwatch_answer_on_the_ec2_endpoint_in_each_protocol() {
    let agent = Agent::start(&[]);
    run_script(&agent, "front_services.py", &[], "front services: ok");
}

#[test]
fn every_ec2_operation_refuses_missing_bad_enum_and_unknown_parameters_by_the_model() {
    let agent = Agent::start(&[]);
    let served = agent::api::ACTIONS.join(",");
    let out = run_script(
        &agent,
        "ec2_validation.py",
        &[&served],
        "ec2 validation: ok",
    );
    let want = format!(
        "ec2 validation: ok {} operations",
        agent::api::ACTIONS.len()
    );
    assert!(out.contains(&want), "{out}");
}

/// Runs `script` (under `agent/tests/`) with the venv's python and the agent's endpoint and
/// state dir; it must succeed and print `ok_line`. Returns its output.
fn run_script(agent: &Agent, script: &str, args: &[&str], ok_line: &str) -> String {
    let out = Command::new(common::venv_python())
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests")
                .join(script),
        )
        .arg(&agent.endpoint)
        .arg(agent.dir.path())
        .args(args)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_DATA_PATH")
        .output()
        .expect("cannot run python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains(ok_line),
        "{script} did not print {ok_line:?}:\n{stdout}\n{}\nagent log tail:\n{}",
        String::from_utf8_lossy(&out.stderr),
        common::tail(&agent.log(), 30)
    );
    stdout
}
