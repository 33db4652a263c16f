//! The `ec2` CLI's monitoring commands on a real agent: monitor-instances and
//! unmonitor-instances (EC2), get-metric-statistics and describe-alarms (CloudWatch over
//! awsQuery), list-topics and publish (SNS over awsQuery), and each service's errors.
//! What the CLI reads is made through the services' own API (a signed awsQuery call), or by
//! the agent's sampler for a running probe.

mod common;

use std::time::Duration;

use cli::client::{CLOUDWATCH, SNS};
use common::{Agent, eventually};
use serde_json::Value;

/// The CLI's stdout as JSON.
fn json(agent: &Agent, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let out = agent.ec2_ok(&all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}):\n{out}"))
}

/// Runs the CLI, which must fail; returns its stderr.
fn ec2_err(agent: &Agent, args: &[&str]) -> String {
    let out = agent.ec2(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "ec2 {args:?} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// The instance's monitoring state as `ec2 describe-instances` shows it.
fn monitoring(agent: &Agent, id: &str) -> String {
    let v = json(agent, &["describe-instances", "--instance-ids", id]);
    v["Reservations"][0]["Instances"][0]["Monitoring"]["State"]
        .as_str()
        .unwrap_or_else(|| panic!("no monitoring state in {v}"))
        .to_string()
}

/// The text of the first element named `name` in `xml`.
fn first(xml: &str, name: &str) -> String {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .find(|n| n.has_tag_name(name))
        .and_then(|n| n.text())
        .unwrap_or_else(|| panic!("no {name} in {xml}"))
        .to_string()
}

#[test]
fn instance_monitoring_and_its_metrics_through_the_cli() {
    let agent = Agent::start(&["--metrics-interval", "1"]);
    let ami = agent.register_probe();
    let id = agent.run_one(&ami);
    agent.wait_state(&id, "running", Duration::from_secs(30));
    assert_eq!(monitoring(&agent, &id), "disabled");

    let out = agent.ec2_ok(&["monitor-instances", "--instance-ids", &id]);
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == [id.as_str(), "pending"]),
        "{out}"
    );
    assert_eq!(monitoring(&agent, &id), "enabled");
    let out = agent.ec2_ok(&["unmonitor-instances", "--instance-ids", &id]);
    assert!(out.contains(&id) && out.contains("disabling"), "{out}");
    assert_eq!(monitoring(&agent, &id), "disabled");
    let v = json(&agent, &["monitor-instances", "--instance-ids", &id]);
    assert_eq!(
        v["InstanceMonitorings"][0]["InstanceId"],
        id.as_str(),
        "{v}"
    );
    assert_eq!(
        v["InstanceMonitorings"][0]["Monitoring"]["State"],
        "pending"
    );
    assert_eq!(monitoring(&agent, &id), "enabled");
    // EC2's error, from its Response/Errors/Error document; nothing changes.
    let err = ec2_err(
        &agent,
        &[
            "unmonitor-instances",
            "--instance-ids",
            &id,
            "i-0000000000000dead",
        ],
    );
    assert!(err.contains("InvalidInstanceID.NotFound"), "{err}");
    assert_eq!(monitoring(&agent, &id), "enabled");

    // The sampler publishes CPUUtilization every second now: the CLI reads it back.
    let cpu = |extra: &[&str]| {
        let mut args = vec![
            "get-metric-statistics",
            "--metric-name",
            "CPUUtilization",
            "--period",
            "1",
            "--minutes",
            "5",
        ];
        args.extend(extra);
        json(&agent, &args)
    };
    let mut got = Value::Null;
    let enough = eventually(Duration::from_secs(30), || {
        got = cpu(&["--instance-id", &id]);
        got["Datapoints"].as_array().is_some_and(|p| p.len() >= 3)
    });
    assert!(enough, "too few CPUUtilization datapoints: {got}");
    assert_eq!(got["Label"], "CPUUtilization");
    let points = got["Datapoints"].as_array().unwrap();
    let times: Vec<&str> = points
        .iter()
        .map(|p| p["Timestamp"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    for p in points {
        for s in ["Average", "Minimum", "Maximum"] {
            let v = p[s].as_f64().unwrap_or_else(|| panic!("no {s} in {p}"));
            assert!((0.0..=100.0).contains(&v), "{s} {v} in {p}");
        }
        assert!(p["SampleCount"].as_f64().unwrap() >= 1.0, "{p}");
        assert_eq!(p["Unit"], "Percent");
    }
    // The same metric by --dimensions, as a table of the statistics asked for.
    let table = agent.ec2_ok(&[
        "get-metric-statistics",
        "--metric-name",
        "CPUUtilization",
        "--dimensions",
        &format!("InstanceId={id}"),
        "--statistics",
        "Average,Maximum",
        "--period",
        "1",
        "--minutes",
        "5",
    ]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["TIMESTAMP", "AVERAGE", "MAXIMUM", "UNIT"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert!(rows.len() >= 3, "{table}");
    assert!(rows.windows(2).all(|w| w[0][0] < w[1][0]), "{table}");
    for r in &rows {
        let avg: f64 = r[1].parse().unwrap();
        assert!((0.0..=100.0).contains(&avg) && r[3] == "Percent", "{table}");
    }
}

#[test]
fn statistics_alarms_and_topics_through_the_cli() {
    let agent = Agent::start(&[]);
    // A custom metric, put through CloudWatch's awsQuery: two values in one minute.
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = chrono::DateTime::from_timestamp(((unix - 120) / 60 * 60 + 30) as i64, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut put = vec![("Namespace".to_string(), "Kec2Test/cli".to_string())];
    for (i, v) in [(1, "2"), (2, "4")] {
        for (k, val) in [
            ("MetricName", "Load"),
            ("Value", v),
            ("Timestamp", at.as_str()),
            ("Dimensions.member.1.Name", "Host"),
            ("Dimensions.member.1.Value", "a"),
        ] {
            put.push((format!("MetricData.member.{i}.{k}"), val.to_string()));
        }
    }
    let put: Vec<(&str, &str)> = put.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    agent.call_service(CLOUDWATCH, "PutMetricData", &put);
    let stats = [
        "get-metric-statistics",
        "--namespace",
        "Kec2Test/cli",
        "--metric-name",
        "Load",
        "--dimensions",
        "Name=Host,Value=a",
        "--minutes",
        "10",
    ];
    let v = json(&agent, &stats);
    let points = v["Datapoints"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{v}");
    let p = &points[0];
    assert_eq!(
        [
            &p["SampleCount"],
            &p["Sum"],
            &p["Average"],
            &p["Minimum"],
            &p["Maximum"]
        ],
        [2.0, 6.0, 3.0, 2.0, 4.0],
        "{v}"
    );
    let table = agent.ec2_ok(&stats);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[1..], ["2", "3", "6", "2", "4", "None"], "{table}");
    // Another dimension value has no data; a bad --dimensions never reaches the agent; a
    // bad period is CloudWatch's error.
    let other = ["--dimensions", "Host=b"];
    let v = json(&agent, &[&stats[..5], &other[..]].concat());
    assert_eq!(v["Datapoints"], Value::Array(Vec::new()), "{v}");
    let err = ec2_err(&agent, &[&stats[..5], &["--dimensions", "Host"]].concat());
    assert!(err.contains("dimension 'Host' is not Name=Value"), "{err}");
    let err = ec2_err(&agent, &[&stats[..], &["--period", "7"]].concat());
    assert!(err.contains("(InvalidParameterValue)"), "{err}");
    assert!(err.contains("GetMetricStatistics"), "{err}");

    // A topic, and alarms on the metric that send to it, made through the APIs.
    let arn = first(
        &agent.call_service(SNS, "CreateTopic", &[("Name", "cli-topic")]),
        "TopicArn",
    );
    for name in ["cli-high", "cli-quiet"] {
        agent.call_service(
            CLOUDWATCH,
            "PutMetricAlarm",
            &[
                ("AlarmName", name),
                ("Namespace", "Kec2Test/cli"),
                ("MetricName", "Silent"),
                ("Statistic", "Average"),
                ("Period", "60"),
                ("EvaluationPeriods", "1"),
                ("Threshold", "1"),
                ("ComparisonOperator", "GreaterThanThreshold"),
                // No data keeps the state, so what SetAlarmState sets stays.
                ("TreatMissingData", "ignore"),
                ("AlarmActions.member.1", &arn),
            ],
        );
    }
    agent.call_service(
        CLOUDWATCH,
        "PutCompositeAlarm",
        &[
            ("AlarmName", "cli-any"),
            ("AlarmRule", "ALARM(\"cli-high\")"),
        ],
    );
    agent.call_service(
        CLOUDWATCH,
        "SetAlarmState",
        &[
            ("AlarmName", "cli-high"),
            ("StateValue", "ALARM"),
            ("StateReason", "set by the cli test"),
        ],
    );
    let table = agent.ec2_ok(&["describe-alarms"]);
    let row = |name: &str| -> String {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{table}"))
            .to_string()
    };
    let high = row("cli-high");
    let fields: Vec<&str> = high.split_whitespace().collect();
    assert_eq!(fields[..3], ["cli-high", "ALARM", "Kec2Test/cli/Silent"]);
    assert!(high.ends_with("set by the cli test"), "{table}");
    assert!(
        row("cli-quiet").contains("INSUFFICIENT_DATA") && row("cli-quiet").contains("Unchecked"),
        "{table}"
    );
    assert!(
        row("cli-any").contains("rule: ALARM(\"cli-high\")"),
        "{table}"
    );
    let names = |v: &Value, kind: &str| -> Vec<String> {
        v[kind]
            .as_array()
            .unwrap_or_else(|| panic!("no {kind} in {v}"))
            .iter()
            .map(|a| a["AlarmName"].as_str().unwrap().to_string())
            .collect()
    };
    let v = json(
        &agent,
        &["describe-alarms", "--alarm-names", "cli-high", "cli-any"],
    );
    assert_eq!(names(&v, "MetricAlarms"), ["cli-high"]);
    assert_eq!(names(&v, "CompositeAlarms"), ["cli-any"]);
    assert_eq!(v["MetricAlarms"][0]["AlarmActions"][0], arn.as_str(), "{v}");
    assert_eq!(v["MetricAlarms"][0]["Threshold"], 1.0, "{v}");
    assert_eq!(v["MetricAlarms"][0]["Period"].to_string(), "60", "{v}");
    let v = json(
        &agent,
        &["describe-alarms", "--state-value", "INSUFFICIENT_DATA"],
    );
    assert!(names(&v, "MetricAlarms") == ["cli-quiet"], "{v}");
    // The composite follows its child at the evaluator's next round (every 10 s).
    let mut v = Value::Null;
    let both = eventually(Duration::from_secs(30), || {
        v = json(&agent, &["describe-alarms", "--state-value", "ALARM"]);
        names(&v, "MetricAlarms") == ["cli-high"] && names(&v, "CompositeAlarms") == ["cli-any"]
    });
    assert!(both, "{v}");
    let err = ec2_err(&agent, &["describe-alarms", "--state-value", "RED"]);
    assert!(err.contains("invalid value 'RED'"), "{err}");

    // SNS: the topic is listed, and a publish to it gets a message id.
    let listed = agent.ec2_ok(&["list-topics"]);
    assert!(listed.lines().any(|l| l == arn), "{listed}");
    let v = json(&agent, &["list-topics"]);
    assert_eq!(v["Topics"][0]["TopicArn"], arn.as_str(), "{v}");
    let id = agent.ec2_ok(&[
        "publish",
        "--topic-arn",
        &arn,
        "--message",
        "hello from the cli",
        "--subject",
        "cli",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 36, "a message id is a UUID: {id:?}");
    let v = json(
        &agent,
        &["publish", "--topic-arn", &arn, "--message", "again"],
    );
    assert!(
        v["MessageId"]
            .as_str()
            .is_some_and(|m| m.len() == 36 && m != id),
        "{v}"
    );
    // SNS's error, from awsQuery's ErrorResponse document.
    let ghost = arn.replace("cli-topic", "no-such-topic");
    let err = ec2_err(
        &agent,
        &["publish", "--topic-arn", &ghost, "--message", "lost"],
    );
    assert!(
        err.contains("An error occurred (NotFound) when calling the Publish operation"),
        "{err}"
    );
}
