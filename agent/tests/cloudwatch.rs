//! CloudWatch metrics and dashboards on a real agent, through boto3 (its default RPC v2 CBOR,
//! and forced to awsJson and awsQuery) and the `aws` CLI: what is put reads back as the
//! statistics and percentiles of the numbers put, across pages, filters and restarts, and
//! bad input gets CloudWatch's codes.

mod common;

use std::process::Command;

use common::Agent;

#[test]
fn cloudwatch_metrics_and_dashboards_answer_boto3_in_each_protocol_and_the_cli() {
    let agent = Agent::start(&[]);
    let out = common::run_python(
        &agent,
        "cloudwatch_metrics.py",
        &[],
        "cloudwatch metrics: ok",
    );
    for protocol in ["smithy-rpc-v2-cbor", "json", "query", "the aws CLI"] {
        assert!(
            out.contains(&format!("cloudwatch over {protocol}: ok")),
            "{out}"
        );
    }
}

#[test]
fn metrics_survive_an_agent_restart() {
    let mut agent = Agent::start(&[]);
    let python = common::venv_python();
    let script = r#"
import boto3, configparser, datetime as dt, os, sys
endpoint, state_dir, step, at = sys.argv[1:5]
cfg = configparser.ConfigParser()
cfg.read(os.path.join(state_dir, "credentials"))
cw = boto3.client("cloudwatch", endpoint_url=endpoint, region_name="local-1",
                  aws_access_key_id=cfg["default"]["aws_access_key_id"],
                  aws_secret_access_key=cfg["default"]["aws_secret_access_key"])
now = dt.datetime.fromtimestamp(int(at), dt.timezone.utc)
if step == "put":
    cw.put_metric_data(Namespace="Kec2Test/restart", MetricData=[
        {"MetricName": "Kept", "Timestamp": now, "Value": v} for v in (2.0, 4.0)])
    cw.put_dashboard(DashboardName="kept", DashboardBody='{"widgets": []}')
else:
    got = cw.get_metric_statistics(Namespace="Kec2Test/restart", MetricName="Kept",
        StartTime=now, EndTime=now + dt.timedelta(minutes=1), Period=60,
        Statistics=["Sum", "SampleCount"])
    [p] = got["Datapoints"]
    assert (p["Sum"], p["SampleCount"]) == (6.0, 2.0), got
    assert cw.get_dashboard(DashboardName="kept")["DashboardBody"] == '{"widgets": []}'
print("step ok")
"#;
    // One minute, a few minutes ago, for both steps (each would see its own clock).
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let minute = ((unix - 180) / 60 * 60).to_string();
    let run = |agent: &Agent, step: &str| {
        let out = Command::new(&python)
            .args(["-c", script, &agent.endpoint])
            .arg(agent.dir.path())
            .args([step, &minute])
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_DATA_PATH")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{step}: {}\n{}\nagent log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            common::tail(&agent.log(), 30)
        );
    };
    run(&agent, "put");
    // The agent rolls the store up and prunes it when it starts (and every five minutes).
    assert!(
        common::eventually(std::time::Duration::from_secs(10), || agent
            .log()
            .contains("metrics rolled up and pruned")),
        "no roll-up logged:\n{}",
        common::tail(&agent.log(), 30)
    );
    agent.restart();
    run(&agent, "check");
}
