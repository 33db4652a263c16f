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
