//! EC2 launch templates on a real agent: boto3 and the `aws` CLI (`launch_templates_boto3.py`:
//! templates, versions from a SourceVersion, $Default/$Latest, ModifyLaunchTemplate,
//! RunInstances from a template with overrides, the instance running with the template's
//! tags, the aws:ec2launchtemplate tags and user data, EC2's error codes), and our `ec2` CLI.

mod common;

use common::Agent;

#[test]
fn launch_templates_answer_boto3_and_the_aws_cli_and_launch_running_instances() {
    let agent = Agent::start(&[]);
    common::run_boto3(&agent, "launch_templates_boto3.py", "launch templates: ok");
}

#[test]
fn the_ec2_cli_creates_describes_and_launches_from_a_template() {
    let agent = Agent::start(&[]);
    let ami = agent.register_probe();
    let data = format!(
        r#"{{"ImageId":"{ami}","InstanceType":"t2.micro","TagSpecifications":[{{"ResourceType":"instance","Tags":[{{"Key":"made-by","Value":"ec2-cli"}}]}}]}}"#
    );
    let out = agent.ec2_ok(&[
        "create-launch-template",
        "--launch-template-name",
        "cli-web",
        "--launch-template-data",
        &data,
    ]);
    assert!(out.contains("cli-web") && out.contains("lt-"), "{out}");
    agent.ec2_ok(&[
        "create-launch-template-version",
        "--launch-template-name",
        "cli-web",
        "--source-version",
        "1",
        "--launch-template-data",
        r#"{"InstanceType":"t2.nano"}"#,
    ]);
    let out = agent.ec2_ok(&["describe-launch-templates"]);
    let line = out.lines().find(|l| l.contains("cli-web")).expect("listed");
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!((cols[2], cols[3]), ("1", "2"), "default 1, latest 2: {out}");
    let out = agent.ec2_ok(&[
        "describe-launch-template-versions",
        "--launch-template-name",
        "cli-web",
        "--versions",
        "$Latest",
    ]);
    assert!(
        out.contains(&ami),
        "version 2 keeps version 1's image: {out}"
    );
    // An unknown member of the data is refused by the client, before any call.
    let bad = agent.ec2(&[
        "create-launch-template",
        "--launch-template-name",
        "cli-bad",
        "--launch-template-data",
        r#"{"ImageIdd":"ami-1"}"#,
    ]);
    assert!(!bad.status.success());
    let out = agent.ec2_ok(&[
        "run-instances",
        "--launch-template",
        "LaunchTemplateName=cli-web,Version=$Latest",
    ]);
    let id = out
        .split_whitespace()
        .find(|w| w.starts_with("i-"))
        .expect("an instance id")
        .to_string();
    assert!(out.contains("t2.nano"), "the latest version's type: {out}");
    agent.ec2_ok(&["wait", "instance-running", "--instance-ids", &id]);
    let tags = agent.ec2_ok(&["describe-tags"]);
    assert!(
        tags.lines().any(|l| l.contains(&id)
            && l.contains("aws:ec2launchtemplate:version")
            && l.ends_with('2')),
        "{tags}"
    );
    assert!(
        tags.lines()
            .any(|l| l.contains(&id) && l.contains("made-by")),
        "{tags}"
    );
}
