//! Alarm actions: the ARNs an alarm may name, what each does when the alarm enters a
//! state, and the notification an SNS topic gets (CloudWatch's alarm JSON and subject).
//!
//! - `arn:aws:automate:local-1:ec2:stop|terminate|reboot|recover` acts on the instance of
//!   the alarm's `InstanceId` dimension through the commands StopInstances,
//!   TerminateInstances and RebootInstances use; `recover` restarts its vmm on this host
//!   (the instance keeps its id, addresses and volumes).
//! - `arn:aws:autoscaling:local-1:<account>:scalingPolicy:...` executes the scaling policy
//!   through the plane's [`ScalingActionRunner`] (Auto Scaling's, which builds on alarms).
//! - `arn:aws:sns:local-1:<account>:<topic>` publishes the alarm's notification to the
//!   topic through `publish_to_topic`, the integration point with `control::sns`.

use serde_json::{Value, json};

use super::config::{Alarm, AlarmKind, REGION, StateValue, alarm_arn};
use super::evaluate::json_time;
use crate::Plane;

/// The EC2 actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ec2Action {
    /// Stop the instance.
    Stop,
    /// Terminate it.
    Terminate,
    /// Reboot it.
    Reboot,
    /// Restart its vmm on this host.
    Recover,
}

/// An action an alarm names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// An EC2 action on the alarm's instance.
    Ec2(Ec2Action),
    /// An Auto Scaling policy (its ARN).
    AutoScaling(String),
    /// An SNS topic: its account and name.
    Sns {
        /// The topic's account.
        account: String,
        /// The topic's name.
        topic: String,
    },
}

/// Why an action ARN is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadAction {
    /// Not an ARN, or of a service alarms cannot act through.
    #[error(
        "Invalid action {0}: an alarm's actions are SNS topic ARNs (arn:aws:sns:local-1:<account>:<topic>), Auto Scaling policy ARNs or EC2 actions (arn:aws:automate:local-1:ec2:stop|terminate|reboot|recover)."
    )]
    Syntax(String),
    /// Another region.
    #[error("Invalid region {0} specified. Only local-1 is supported.")]
    Region(String),
}

/// Parses action `arn`.
pub fn parse_action(arn: &str) -> Result<Action, BadAction> {
    let syntax = || BadAction::Syntax(arn.to_string());
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [arn_word, "aws", service, region, account, resource] = parts[..] else {
        return Err(syntax());
    };
    if arn_word != "arn" {
        return Err(syntax());
    }
    if !matches!(service, "automate" | "sns" | "autoscaling") {
        return Err(syntax());
    }
    if region != REGION {
        return Err(BadAction::Region(region.to_string()));
    }
    match service {
        "autoscaling" => {
            let digits = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
            if !digits
                || !resource.starts_with("scalingPolicy:")
                || !resource.contains(":autoScalingGroupName/")
                || !resource.contains(":policyName/")
            {
                return Err(syntax());
            }
            Ok(Action::AutoScaling(arn.to_string()))
        }
        "automate" => {
            let action = match (account, resource) {
                ("ec2", "stop") => Ec2Action::Stop,
                ("ec2", "terminate") => Ec2Action::Terminate,
                ("ec2", "reboot") => Ec2Action::Reboot,
                ("ec2", "recover") => Ec2Action::Recover,
                _ => return Err(syntax()),
            };
            Ok(Action::Ec2(action))
        }
        _ => {
            let topic_ok = (1..=256).contains(&resource.len())
                && resource
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) || !topic_ok {
                return Err(syntax());
            }
            Ok(Action::Sns {
                account: account.to_string(),
                topic: resource.to_string(),
            })
        }
    }
}

/// What running one action came to, for the alarm's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionOutcome {
    /// The action's ARN.
    pub arn: String,
    /// Whether it was done.
    pub ok: bool,
    /// What was done, or why it failed.
    pub detail: String,
}

impl ActionOutcome {
    /// The history item's summary, in CloudWatch's words.
    pub fn summary(&self) -> String {
        if self.ok {
            format!("Successfully executed action {}", self.arn)
        } else {
            format!("Failed to execute action {}", self.arn)
        }
    }

    /// The history item's data.
    pub fn data(&self) -> Value {
        if self.ok {
            json!({"actionState": "Succeeded", "notificationResource": self.arn, "detail": self.detail})
        } else {
            json!({"actionState": "Failed", "notificationResource": self.arn, "error": self.detail})
        }
    }
}

/// A state change to act on.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The alarm, in its new state.
    pub alarm: Alarm,
    /// The state before.
    pub old_state: StateValue,
}

/// Runs an alarm's action naming scaling policy `arn` for the alarm's new state: what it
/// did, or why it failed (both go in the alarm's history).
pub type ScalingActionRunner = fn(&Plane, &str, &Alarm) -> Result<String, String>;

/// Runs action `arn` for `transition`; the outcome goes in the alarm's history.
pub async fn run_action(plane: &Plane, transition: &Transition, arn: &str) -> ActionOutcome {
    let outcome = |ok: bool, detail: String| ActionOutcome {
        arn: arn.to_string(),
        ok,
        detail,
    };
    let action = match parse_action(arn) {
        Ok(a) => a,
        Err(e) => return outcome(false, e.to_string()),
    };
    match action {
        Action::Ec2(a) => {
            let instance = match &transition.alarm.config.kind {
                AlarmKind::Metric(m) => m.dimension("InstanceId").map(str::to_string),
                AlarmKind::Composite(_) => None,
            };
            let Some(id) = instance else {
                return outcome(
                    false,
                    "The alarm's metric has no InstanceId dimension.".into(),
                );
            };
            match run_ec2(plane, a, &id).await {
                Ok(()) => outcome(true, format!("{} {id}", ec2_verb(a))),
                Err(e) => outcome(false, format!("{}: {e}", ec2_verb(a))),
            }
        }
        Action::AutoScaling(policy) => {
            let Some(run) = plane.scaling_alarm_action else {
                return outcome(false, "Auto Scaling does not run on this agent.".into());
            };
            match run(plane, &policy, &transition.alarm) {
                Ok(done) => outcome(true, done),
                Err(e) => outcome(false, e),
            }
        }
        Action::Sns { account, topic } => {
            let message = notification(&plane.account_id, transition).to_string();
            let subject = subject(transition);
            tracing::debug!(%arn, %account, %topic, %subject, "alarm notification");
            match publish_to_topic(plane, arn, &subject, &message).await {
                Ok(message_id) => outcome(true, format!("message {message_id}")),
                Err(e) => outcome(false, e),
            }
        }
    }
}

/// Publishes an alarm's notification to SNS topic `topic_arn` (well formed, checked when
/// the alarm was put): `subject` is [`subject`]'s line, `message` CloudWatch's alarm JSON
/// ([`notification`]); the message id, or why it was not published.
///
/// Publishes an alarm's notification to SNS topic `topic_arn`: its MessageId, or why not (a
/// topic that does not exist is a failure of the action, recorded in the alarm's history,
/// never an error of the evaluation). The publish is one short transaction on the state
/// database, which puts one delivery per confirmed subscription in the outbox and wakes the
/// delivery loop: it does not wait for the deliveries.
async fn publish_to_topic(
    plane: &Plane,
    topic_arn: &str,
    subject: &str,
    message: &str,
) -> Result<String, String> {
    crate::sns::publish(plane, topic_arn, Some(subject), message).map_err(|e| host::error_chain(&e))
}

fn ec2_verb(a: Ec2Action) -> &'static str {
    match a {
        Ec2Action::Stop => "stopping",
        Ec2Action::Terminate => "terminating",
        Ec2Action::Reboot => "rebooting",
        Ec2Action::Recover => "recovering",
    }
}

/// An EC2 action on instance `id`, through the commands the API uses.
async fn run_ec2(plane: &Plane, a: Ec2Action, id: &str) -> Result<(), String> {
    let ids = [id.to_string()];
    let r = match a {
        Ec2Action::Stop => plane
            .stop_instances(&ids, crate::ec2::instances::StopMode::Graceful)
            .await
            .map(drop),
        Ec2Action::Terminate => plane.terminate_instances(&ids).await.map(drop),
        Ec2Action::Reboot => plane.reboot_instances(&ids).await,
        Ec2Action::Recover => plane.compute.recover_instances(&ids).await,
    };
    r.map_err(|e| host::error_chain(&e))
}

/// The subject of an alarm's notification: `ALARM: "name" in local-1`.
pub fn subject(t: &Transition) -> String {
    let s = format!(
        "{}: \"{}\" in {REGION}",
        t.alarm.state.as_str(),
        t.alarm.config.name
    );
    // SNS subjects are at most 100 characters.
    s.chars().take(100).collect()
}

/// CloudWatch's alarm notification JSON, as an SNS subscriber gets it.
pub fn notification(account: &str, t: &Transition) -> Value {
    let a = &t.alarm;
    let c = &a.config;
    let mut v = json!({
        "AlarmName": c.name,
        "AlarmDescription": c.description,
        "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": json_time(a.config_updated_ms),
        "NewStateValue": a.state.as_str(),
        "NewStateReason": a.reason,
        "StateChangeTime": json_time(a.state_updated_ms),
        "Region": REGION,
        "AlarmArn": alarm_arn(account, &c.name),
        "OldStateValue": t.old_state.as_str(),
        "OKActions": c.ok_actions,
        "AlarmActions": c.alarm_actions,
        "InsufficientDataActions": c.insufficient_data_actions,
    });
    match &c.kind {
        AlarmKind::Metric(m) => {
            let (statistic_type, statistic) = match (&m.statistic, &m.extended_statistic) {
                (Some(s), _) => ("Statistic", s.to_uppercase()),
                (None, Some(p)) => ("ExtendedStatistic", p.clone()),
                (None, None) => ("Metrics", String::new()),
            };
            let mut trigger = json!({
                "MetricName": m.metric_name,
                "Namespace": m.namespace,
                "StatisticType": statistic_type,
                "Statistic": statistic,
                "Unit": m.unit,
                "Dimensions": m.dimensions.iter()
                    .map(|(n, v)| json!({"value": v, "name": n}))
                    .collect::<Vec<_>>(),
                "Period": m.period,
                "EvaluationPeriods": m.evaluation_periods,
                "DatapointsToAlarm": m.m(),
                "ComparisonOperator": m.comparison.as_str(),
                "Threshold": m.threshold,
                "TreatMissingData": m.treat_missing_data.clone().unwrap_or_else(|| "missing".into()),
                "EvaluateLowSampleCountPercentile":
                    m.evaluate_low_sample_count_percentile.clone().unwrap_or_default(),
            });
            if !m.metrics.is_empty() {
                trigger["Metrics"] = json!(
                    m.metrics
                        .iter()
                        .map(|q| json!({
                            "Id": q.id, "Expression": q.expression, "Label": q.label,
                            "ReturnData": q.return_data.unwrap_or(true),
                        }))
                        .collect::<Vec<_>>()
                );
            }
            v["Trigger"] = trigger;
        }
        AlarmKind::Composite(r) => {
            v["AlarmRule"] = json!(r.rule);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_arns_are_parsed_and_checked() {
        assert_eq!(
            parse_action("arn:aws:automate:local-1:ec2:stop"),
            Ok(Action::Ec2(Ec2Action::Stop))
        );
        assert_eq!(
            parse_action("arn:aws:automate:local-1:ec2:recover"),
            Ok(Action::Ec2(Ec2Action::Recover))
        );
        assert_eq!(
            parse_action("arn:aws:sns:local-1:123456789012:ops-alerts"),
            Ok(Action::Sns {
                account: "123456789012".into(),
                topic: "ops-alerts".into()
            })
        );
        assert!(matches!(
            parse_action("arn:aws:automate:us-east-1:ec2:stop"),
            Err(BadAction::Region(_))
        ));
        for bad in [
            "",
            "stop",
            "arn:aws:automate:local-1:ec2:explode",
            "arn:aws:sns:local-1:12345:topic",
            "arn:aws:sns:local-1:123456789012:",
            "arn:aws:sns:local-1:123456789012:bad topic",
            "arn:aws:lambda:local-1:123456789012:function:f",
            "arn:aws:automate:local-1:ec2",
        ] {
            assert!(
                matches!(parse_action(bad), Err(BadAction::Syntax(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_notification_is_cloudwatch_alarm_json() {
        use crate::monitoring::alarms::config::{AlarmConfig, Comparison, MetricAlarmConfig};
        let alarm = Alarm {
            config: AlarmConfig {
                name: "cpu-high".into(),
                description: Some("CPU above 70%".into()),
                ok_actions: vec![],
                alarm_actions: vec!["arn:aws:sns:local-1:123456789012:ops".into()],
                insufficient_data_actions: vec![],
                tags: vec![],
                kind: AlarmKind::Metric(Box::new(MetricAlarmConfig {
                    namespace: Some("AWS/EC2".into()),
                    metric_name: Some("CPUUtilization".into()),
                    dimensions: vec![("InstanceId".into(), "i-0abc".into())],
                    statistic: Some("Average".into()),
                    extended_statistic: None,
                    metrics: vec![],
                    period: 10,
                    unit: None,
                    evaluation_periods: 3,
                    datapoints_to_alarm: None,
                    threshold: 70.0,
                    comparison: Comparison::GreaterThanThreshold,
                    treat_missing_data: None,
                    evaluate_low_sample_count_percentile: None,
                })),
            },
            actions_enabled: true,
            state: StateValue::Alarm,
            reason: "Threshold Crossed: ...".into(),
            reason_data: None,
            state_updated_ms: 1_796_652_190_000,
            state_transitioned_ms: 1_796_652_190_000,
            config_updated_ms: 1_796_652_180_000,
        };
        let t = Transition {
            alarm,
            old_state: StateValue::Ok,
        };
        assert_eq!(subject(&t), "ALARM: \"cpu-high\" in local-1");
        let n = notification("123456789012", &t);
        assert_eq!(n["AlarmName"], "cpu-high");
        assert_eq!(n["AWSAccountId"], "123456789012");
        assert_eq!(n["NewStateValue"], "ALARM");
        assert_eq!(n["OldStateValue"], "OK");
        assert_eq!(n["Region"], "local-1");
        assert_eq!(n["StateChangeTime"], "2026-12-07T14:03:10.000+0000");
        assert_eq!(
            n["AlarmArn"],
            "arn:aws:cloudwatch:local-1:123456789012:alarm:cpu-high"
        );
        let trigger = &n["Trigger"];
        assert_eq!(trigger["StatisticType"], "Statistic");
        assert_eq!(trigger["Statistic"], "AVERAGE");
        assert_eq!(
            trigger["Dimensions"],
            json!([{"value": "i-0abc", "name": "InstanceId"}])
        );
        assert_eq!(
            (
                trigger["Period"].as_i64(),
                trigger["DatapointsToAlarm"].as_i64()
            ),
            (Some(10), Some(3))
        );
        assert_eq!(trigger["ComparisonOperator"], "GreaterThanThreshold");
        assert_eq!(trigger["TreatMissingData"], "missing");
    }
}
