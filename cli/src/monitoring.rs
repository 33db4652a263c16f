//! The monitoring commands of `ec2`: EC2's detailed-monitoring switch, CloudWatch's
//! statistics and alarms, and SNS's topics, with the `aws` CLI's names. CloudWatch and SNS
//! are spoken to over awsQuery (form POSTs, XML answers), on the same endpoint as EC2.

use clap::Subcommand;
use roxmltree::Node;
use serde_json::{Map, Value, json};

use super::client::{CLOUDWATCH, Client, SNS, Service};
use super::error::CliError;
use super::output::parse;
use super::params::list_params;
use super::xmltree::{child, items, members, query_to_json, text};

/// Monitoring commands.
#[derive(Debug, Subcommand)]
pub enum MonitoringCommand {
    /// Turn on detailed monitoring (a CloudWatch datapoint every interval) of instances.
    MonitorInstances {
        /// The instances.
        #[arg(long, num_args = 1.., required = true)]
        instance_ids: Vec<String>,
    },
    /// Turn detailed monitoring off (basic monitoring: a datapoint every five intervals).
    UnmonitorInstances {
        /// The instances.
        #[arg(long, num_args = 1.., required = true)]
        instance_ids: Vec<String>,
    },
    /// A CloudWatch metric's statistics over the last minutes, one line per period, oldest
    /// first.
    GetMetricStatistics {
        /// The metric (`CPUUtilization`, `NetworkIn`, ...).
        #[arg(long)]
        metric_name: String,
        /// The namespace.
        #[arg(long, default_value = "AWS/EC2")]
        namespace: String,
        /// Shorthand for `--dimensions InstanceId=ID`.
        #[arg(long, conflicts_with = "dimensions")]
        instance_id: Option<String>,
        /// Dimensions as `Name=Value` or `Name=NAME,Value=VALUE`.
        #[arg(long, num_args = 1..)]
        dimensions: Vec<String>,
        /// SampleCount, Average, Sum, Minimum, Maximum, or percentiles such as p90
        /// (comma-separated or repeated).
        #[arg(
            long,
            num_args = 1..,
            value_delimiter = ',',
            default_values = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"]
        )]
        statistics: Vec<String>,
        /// Seconds per datapoint.
        #[arg(long, default_value_t = 60)]
        period: u32,
        /// How far back to look, in minutes.
        #[arg(long, default_value_t = 60)]
        minutes: u32,
        /// Only datapoints in this unit (`Percent`, `Bytes`, ...).
        #[arg(long)]
        unit: Option<String>,
    },
    /// List CloudWatch alarms, metric and composite.
    DescribeAlarms {
        /// Only these alarms.
        #[arg(long, num_args = 1..)]
        alarm_names: Vec<String>,
        /// Only alarms in this state.
        #[arg(long, value_parser = ["OK", "ALARM", "INSUFFICIENT_DATA"])]
        state_value: Option<String>,
    },
    /// List SNS topics.
    ListTopics,
    /// Publish a message to an SNS topic (prints the message id).
    Publish {
        /// The topic.
        #[arg(long)]
        topic_arn: String,
        /// The message.
        #[arg(long)]
        message: String,
        /// The subject (email deliveries' subject line).
        #[arg(long)]
        subject: Option<String>,
    },
}

/// Runs a monitoring command.
pub fn run(cmd: &MonitoringCommand, json: bool, c: &Client) -> Result<(), CliError> {
    match cmd {
        MonitoringCommand::MonitorInstances { instance_ids } => {
            switch(c, json, "MonitorInstances", instance_ids)
        }
        MonitoringCommand::UnmonitorInstances { instance_ids } => {
            switch(c, json, "UnmonitorInstances", instance_ids)
        }
        MonitoringCommand::GetMetricStatistics {
            metric_name,
            namespace,
            instance_id,
            dimensions,
            statistics,
            period,
            minutes,
            unit,
        } => {
            let dims = match instance_id {
                Some(id) => vec![("InstanceId".to_string(), id.clone())],
                None => dimensions
                    .iter()
                    .map(|d| parse_dimension(d))
                    .collect::<Result<_, _>>()?,
            };
            let q = StatisticsQuery {
                namespace,
                metric_name,
                dimensions: &dims,
                statistics,
                period: *period,
                minutes: *minutes,
                unit: unit.as_deref(),
            };
            get_metric_statistics(c, json, &q)
        }
        MonitoringCommand::DescribeAlarms {
            alarm_names,
            state_value,
        } => describe_alarms(c, json, alarm_names, state_value.as_deref()),
        MonitoringCommand::ListTopics => list_topics(c, json),
        MonitoringCommand::Publish {
            topic_arn,
            message,
            subject,
        } => {
            let mut p = vec![
                ("TopicArn".to_string(), topic_arn.clone()),
                ("Message".to_string(), message.clone()),
            ];
            if let Some(s) = subject {
                p.push(("Subject".into(), s.clone()));
            }
            let xml = c.call_service(SNS, "Publish", &p)?;
            let doc = parse(&xml)?;
            let id = text(result(&doc, "Publish")?, "MessageId").unwrap_or("");
            if json {
                return print_value(&json!({ "MessageId": id }));
            }
            println!("{id}");
            Ok(())
        }
    }
}

/// MonitorInstances or UnmonitorInstances; prints each instance's monitoring state.
fn switch(c: &Client, json: bool, action: &str, ids: &[String]) -> Result<(), CliError> {
    let mut p = Vec::new();
    list_params(&mut p, "InstanceId", ids);
    let xml = c.call(action, &p)?;
    let doc = parse(&xml)?;
    let lines: Vec<(&str, &str)> = items(doc.root_element(), "instancesSet")
        .into_iter()
        .map(|i| {
            let state = child(i, "monitoring").and_then(|m| text(m, "state"));
            (text(i, "instanceId").unwrap_or(""), state.unwrap_or(""))
        })
        .collect();
    if json {
        let list: Vec<Value> = lines
            .iter()
            .map(|(id, state)| json!({ "InstanceId": id, "Monitoring": { "State": state } }))
            .collect();
        return print_value(&json!({ "InstanceMonitorings": list }));
    }
    println!("{:<20} MONITORING", "INSTANCE_ID");
    for (id, state) in lines {
        println!("{id:<20} {state}");
    }
    Ok(())
}

/// `Name=Value` or `Name=NAME,Value=VALUE` as (name, value).
pub fn parse_dimension(d: &str) -> Result<(String, String), CliError> {
    let bad = || {
        CliError::Input(format!(
            "dimension '{d}' is not Name=Value or Name=NAME,Value=VALUE"
        ))
    };
    let (name, value) = match d.strip_prefix("Name=") {
        Some(rest) if rest.contains(",Value=") => rest.split_once(",Value=").ok_or_else(bad)?,
        _ => d.split_once('=').ok_or_else(bad)?,
    };
    if name.is_empty() || value.is_empty() {
        return Err(bad());
    }
    Ok((name.to_string(), value.to_string()))
}

/// What get-metric-statistics asks for.
#[derive(Debug)]
struct StatisticsQuery<'a> {
    namespace: &'a str,
    metric_name: &'a str,
    dimensions: &'a [(String, String)],
    statistics: &'a [String],
    period: u32,
    minutes: u32,
    unit: Option<&'a str>,
}

/// Whether `s` names a percentile (`p90`, `p99.9`), which CloudWatch takes as an extended
/// statistic.
fn is_percentile(s: &str) -> bool {
    s.strip_prefix('p')
        .is_some_and(|n| !n.is_empty() && n.parse::<f64>().is_ok())
}

/// GetMetricStatistics's parameters for `q`, ending at `now`.
fn statistics_params(
    q: &StatisticsQuery<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<(String, String)> {
    let start = now - chrono::Duration::minutes(i64::from(q.minutes));
    let iso =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut p = vec![
        ("Namespace".to_string(), q.namespace.to_string()),
        ("MetricName".to_string(), q.metric_name.to_string()),
        ("StartTime".to_string(), iso(start)),
        ("EndTime".to_string(), iso(now)),
        ("Period".to_string(), q.period.to_string()),
    ];
    for (i, (name, value)) in q.dimensions.iter().enumerate() {
        p.push((format!("Dimensions.member.{}.Name", i + 1), name.clone()));
        p.push((format!("Dimensions.member.{}.Value", i + 1), value.clone()));
    }
    let (extended, plain): (Vec<&String>, Vec<&String>) =
        q.statistics.iter().partition(|s| is_percentile(s));
    for (i, s) in plain.iter().enumerate() {
        p.push((format!("Statistics.member.{}", i + 1), (*s).clone()));
    }
    for (i, s) in extended.iter().enumerate() {
        p.push((format!("ExtendedStatistics.member.{}", i + 1), (*s).clone()));
    }
    if let Some(u) = q.unit {
        p.push(("Unit".into(), u.to_string()));
    }
    p
}

/// A datapoint's time, for ordering (unparsable ones first, in their text's order).
fn point_time(p: Node<'_, '_>) -> (Option<chrono::DateTime<chrono::FixedOffset>>, String) {
    let t = text(p, "Timestamp").unwrap_or("");
    (chrono::DateTime::parse_from_rfc3339(t).ok(), t.to_string())
}

/// A datapoint's value of statistic `s` for the table: whole numbers as they are, others to
/// four decimals ("-" when absent; JSON output keeps the exact values).
fn point_value(p: Node<'_, '_>, s: &str) -> String {
    let value = if is_percentile(s) {
        child(p, "ExtendedStatistics").and_then(|m| {
            m.children()
                .filter(|e| e.has_tag_name("entry"))
                .find(|e| text(*e, "key") == Some(s))
                .and_then(|e| text(e, "value"))
        })
    } else {
        text(p, s)
    };
    match value.map(|v| (v, v.parse::<f64>())) {
        None => "-".into(),
        Some((_, Ok(f))) if f.is_finite() && f.fract() != 0.0 => format!("{f:.4}"),
        Some((v, _)) => v.to_string(),
    }
}

fn get_metric_statistics(c: &Client, json: bool, q: &StatisticsQuery<'_>) -> Result<(), CliError> {
    let p = statistics_params(q, chrono::Utc::now());
    let xml = c.call_service(CLOUDWATCH, "GetMetricStatistics", &p)?;
    let doc = parse(&xml)?;
    let r = result(&doc, "GetMetricStatistics")?;
    let mut points = members(r, "Datapoints");
    points.sort_by_key(|p| point_time(*p));
    if json {
        let list: Vec<Value> = points.iter().map(|p| query_to_json(*p)).collect();
        return print_value(&json!({
            "Label": text(r, "Label").unwrap_or(""),
            "Datapoints": list,
        }));
    }
    let mut header = format!("{:<26}", "TIMESTAMP");
    for s in q.statistics {
        header.push_str(&format!(" {:>14}", s.to_uppercase()));
    }
    println!("{header} UNIT");
    for p in points {
        let mut line = format!("{:<26}", text(p, "Timestamp").unwrap_or(""));
        for s in q.statistics {
            line.push_str(&format!(" {:>14}", point_value(p, s)));
        }
        println!("{line} {}", text(p, "Unit").unwrap_or(""));
    }
    Ok(())
}

/// One alarm as the table shows it, and as JSON.
#[derive(Debug)]
struct AlarmLine {
    name: String,
    state: String,
    metric: String,
    reason: String,
    json: Value,
}

/// What a metric alarm watches: `Namespace/MetricName`, or its metric math's returned
/// expression or metric.
fn watched(a: Node<'_, '_>) -> String {
    if let Some(name) = text(a, "MetricName") {
        return format!("{}/{name}", text(a, "Namespace").unwrap_or(""));
    }
    let queries = members(a, "Metrics");
    let only = if queries.len() == 1 {
        queries.first()
    } else {
        None
    };
    let returned = queries
        .iter()
        .find(|m| text(**m, "ReturnData") == Some("true"))
        .or(only);
    let Some(m) = returned else {
        return String::new();
    };
    if let Some(e) = text(*m, "Expression") {
        return e.to_string();
    }
    child(*m, "MetricStat")
        .and_then(|s| child(s, "Metric"))
        .map(|metric| {
            format!(
                "{}/{}",
                text(metric, "Namespace").unwrap_or(""),
                text(metric, "MetricName").unwrap_or("")
            )
        })
        .unwrap_or_default()
}

fn alarm_line(a: Node<'_, '_>, composite: bool) -> AlarmLine {
    let metric = if composite {
        format!("rule: {}", text(a, "AlarmRule").unwrap_or(""))
    } else {
        watched(a)
    };
    AlarmLine {
        name: text(a, "AlarmName").unwrap_or("").into(),
        state: text(a, "StateValue").unwrap_or("").into(),
        metric,
        reason: text(a, "StateReason").unwrap_or("").into(),
        json: query_to_json(a),
    }
}

fn describe_alarms(
    c: &Client,
    json: bool,
    names: &[String],
    state: Option<&str>,
) -> Result<(), CliError> {
    let mut base = Vec::new();
    for (i, n) in names.iter().enumerate() {
        base.push((format!("AlarmNames.member.{}", i + 1), n.clone()));
    }
    if let Some(s) = state {
        base.push(("StateValue".into(), s.to_string()));
    }
    base.push(("AlarmTypes.member.1".into(), "MetricAlarm".into()));
    base.push(("AlarmTypes.member.2".into(), "CompositeAlarm".into()));
    let (mut metric, mut composite) = (Vec::new(), Vec::new());
    pages(c, CLOUDWATCH, "DescribeAlarms", &base, |r| {
        metric.extend(
            members(r, "MetricAlarms")
                .into_iter()
                .map(|a| alarm_line(a, false)),
        );
        composite.extend(
            members(r, "CompositeAlarms")
                .into_iter()
                .map(|a| alarm_line(a, true)),
        );
    })?;
    if json {
        let list = |v: Vec<AlarmLine>| Value::Array(v.into_iter().map(|a| a.json).collect());
        let mut out = Map::new();
        out.insert("MetricAlarms".into(), list(metric));
        out.insert("CompositeAlarms".into(), list(composite));
        return print_value(&Value::Object(out));
    }
    println!("{:<30} {:<18} {:<36} REASON", "NAME", "STATE", "METRIC");
    for a in metric.iter().chain(&composite) {
        println!(
            "{:<30} {:<18} {:<36} {}",
            a.name, a.state, a.metric, a.reason
        );
    }
    Ok(())
}

fn list_topics(c: &Client, json: bool) -> Result<(), CliError> {
    let mut arns = Vec::new();
    pages(c, SNS, "ListTopics", &[], |r| {
        arns.extend(
            members(r, "Topics")
                .into_iter()
                .map(|t| text(t, "TopicArn").unwrap_or("").to_string()),
        );
    })?;
    if json {
        let list: Vec<Value> = arns.iter().map(|a| json!({ "TopicArn": a })).collect();
        return print_value(&json!({ "Topics": list }));
    }
    println!("TOPIC_ARN");
    for a in arns {
        println!("{a}");
    }
    Ok(())
}

/// Calls a paginated awsQuery `action` until its `NextToken` runs out, handing each page's
/// result element to `each`.
fn pages(
    c: &Client,
    service: Service,
    action: &str,
    params: &[(String, String)],
    mut each: impl FnMut(Node<'_, '_>),
) -> Result<(), CliError> {
    let mut token: Option<String> = None;
    loop {
        let mut p = params.to_vec();
        if let Some(t) = &token {
            p.push(("NextToken".into(), t.clone()));
        }
        let xml = c.call_service(service, action, &p)?;
        let doc = parse(&xml)?;
        let r = result(&doc, action)?;
        each(r);
        let next = text(r, "NextToken").filter(|t| !t.is_empty());
        match next {
            Some(t) if token.as_deref() != Some(t) => token = Some(t.to_string()),
            Some(t) => {
                return Err(CliError::Parse(format!(
                    "{action} answered the same NextToken ({t}) twice"
                )));
            }
            None => return Ok(()),
        }
    }
}

/// The `{action}Result` element of an awsQuery answer.
fn result<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    action: &str,
) -> Result<Node<'a, 'i>, CliError> {
    let name = format!("{action}Result");
    child(doc.root_element(), &name)
        .ok_or_else(|| CliError::Parse(format!("no {name} in the answer to {action}")))
}

fn print_value(v: &Value) -> Result<(), CliError> {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_in_both_spellings_and_bad_ones_refused() {
        let ok = |d: &str| parse_dimension(d).unwrap();
        assert_eq!(ok("InstanceId=i-1"), ("InstanceId".into(), "i-1".into()));
        assert_eq!(
            ok("Name=InstanceId,Value=i-1"),
            ("InstanceId".into(), "i-1".into())
        );
        assert_eq!(ok("Name=x"), ("Name".into(), "x".into()));
        assert_eq!(ok("K=a=b"), ("K".into(), "a=b".into()));
        for bad in ["InstanceId", "=v", "K=", "Name=K,Value=", ""] {
            let e = parse_dimension(bad).unwrap_err();
            assert!(e.to_string().contains("is not Name=Value"), "{bad}: {e}");
        }
    }

    #[test]
    fn statistics_params_are_awsquery_member_lists() {
        let dims = vec![
            ("InstanceId".to_string(), "i-1".to_string()),
            ("AutoScalingGroupName".to_string(), "g".to_string()),
        ];
        let stats = vec!["Average".to_string(), "p90".into(), "Maximum".into()];
        let q = StatisticsQuery {
            namespace: "AWS/EC2",
            metric_name: "CPUUtilization",
            dimensions: &dims,
            statistics: &stats,
            period: 60,
            minutes: 30,
            unit: None,
        };
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-07T16:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let p = statistics_params(&q, now);
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("StartTime"), Some("2026-12-07T15:30:00Z"));
        assert_eq!(get("EndTime"), Some("2026-12-07T16:00:00Z"));
        assert_eq!(get("Period"), Some("60"));
        assert_eq!(
            get("Dimensions.member.2.Name"),
            Some("AutoScalingGroupName")
        );
        assert_eq!(get("Dimensions.member.2.Value"), Some("g"));
        assert_eq!(get("Statistics.member.1"), Some("Average"));
        assert_eq!(get("Statistics.member.2"), Some("Maximum"));
        assert_eq!(get("ExtendedStatistics.member.1"), Some("p90"));
        assert_eq!(get("Unit"), None);
    }

    #[test]
    fn alarms_show_what_they_watch() {
        let xml = r#"<R>
<member><AlarmName>a</AlarmName><Namespace>AWS/EC2</Namespace><MetricName>CPUUtilization</MetricName></member>
<member><AlarmName>m</AlarmName><Metrics>
  <member><Id>m1</Id><ReturnData>false</ReturnData><MetricStat><Metric><Namespace>N</Namespace><MetricName>X</MetricName></Metric></MetricStat></member>
  <member><Id>e1</Id><Expression>m1 * 2</Expression><ReturnData>true</ReturnData></member>
</Metrics></member>
<member><AlarmName>s</AlarmName><Metrics>
  <member><Id>m1</Id><MetricStat><Metric><Namespace>N</Namespace><MetricName>Y</MetricName></Metric></MetricStat></member>
</Metrics></member>
</R>"#;
        let doc = roxmltree::Document::parse(xml).unwrap();
        let got: Vec<String> = doc
            .root_element()
            .children()
            .filter(|c| c.is_element())
            .map(watched)
            .collect();
        assert_eq!(got, ["AWS/EC2/CPUUtilization", "m1 * 2", "N/Y"]);
        assert!(is_percentile("p99.9") && !is_percentile("p") && !is_percentile("Sum"));
    }

    #[test]
    fn the_table_rounds_fractions_and_keeps_whole_numbers() {
        let point = roxmltree::Document::parse(
            "<member><Average>0.052716622999219635</Average><Sum>12345678</Sum>\
             <ExtendedStatistics><entry><key>p90</key><value>2.5</value></entry></ExtendedStatistics></member>",
        )
        .unwrap();
        let p = point.root_element();
        assert_eq!(point_value(p, "Average"), "0.0527");
        assert_eq!(point_value(p, "Sum"), "12345678");
        assert_eq!(point_value(p, "p90"), "2.5000");
        assert_eq!(point_value(p, "Maximum"), "-");
    }
}
