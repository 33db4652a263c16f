//! Auto Scaling over awsQuery: groups, their instances, activities and tags
//! (`groups.rs`, `views.rs`), policies, scheduled actions and forecasts (`policies.rs`).
//! Each handler turns the operation's typed input into a command of `control::autoscaling`,
//! run in one transaction of the plane's database (which wakes the reconciler), and its
//! result into the typed output; a refusal is answered with Auto Scaling's code.

mod groups;
mod policies;
mod views;

use serde_json::Value;

use super::errors::ApiError;
use super::operation::not_served;
use super::{Call, Reply};

/// Runs one Auto Scaling operation.
pub fn dispatch(operation: &str, c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    match operation {
        "CreateAutoScalingGroup" => groups::create(c, value),
        "UpdateAutoScalingGroup" => groups::update(c, value),
        "DeleteAutoScalingGroup" => groups::delete(c, value),
        "DescribeAutoScalingGroups" => views::describe_groups(c, value),
        "SetDesiredCapacity" => groups::set_desired_capacity(c, value),
        "TerminateInstanceInAutoScalingGroup" => groups::terminate_instance(c, value),
        "DescribeAutoScalingInstances" => views::describe_instances(c, value),
        "AttachInstances" => groups::attach_instances(c, value),
        "DetachInstances" => groups::detach_instances(c, value),
        "SetInstanceHealth" => groups::set_instance_health(c, value),
        "SetInstanceProtection" => groups::set_instance_protection(c, value),
        "SuspendProcesses" => groups::processes(c, value, true),
        "ResumeProcesses" => groups::processes(c, value, false),
        "DescribeScalingProcessTypes" => views::process_types(),
        "DescribeTerminationPolicyTypes" => views::termination_policy_types(),
        "DescribeScalingActivities" => views::describe_activities(c, value),
        "CreateOrUpdateTags" => groups::put_tags(c, value),
        "DeleteTags" => groups::delete_tags(c, value),
        "DescribeTags" => views::describe_tags(c, value),
        "AttachLoadBalancerTargetGroups" => groups::target_groups(c, value, true),
        "DetachLoadBalancerTargetGroups" => groups::target_groups(c, value, false),
        "DescribeLoadBalancerTargetGroups" => views::describe_target_groups(c, value),
        "PutScalingPolicy" => policies::put_policy(c, value),
        "ExecutePolicy" => policies::execute_policy(c, value),
        "DescribePolicies" => policies::describe_policies(c, value),
        "DeletePolicy" => policies::delete_policy(c, value),
        "GetPredictiveScalingForecast" => policies::forecast(c, value),
        "PutScheduledUpdateGroupAction" => policies::put_scheduled(c, value),
        "BatchPutScheduledUpdateGroupAction" => policies::batch_put_scheduled(c, value),
        "DescribeScheduledActions" => policies::describe_scheduled(c, value),
        "DeleteScheduledAction" => policies::delete_scheduled(c, value),
        other => Err(not_served(other)),
    }
}

/// A command's refusal with Auto Scaling's code and the status its model gives it.
fn refused<E: control::Refusal>(e: &E) -> ApiError {
    let error = ApiError::refused(e);
    let status = crate::models::registry()
        .by_signing_name("autoscaling")
        .and_then(|m| m.error_shape(&error.code))
        .and_then(|(_, s)| s.error.as_ref()?.http_status_code);
    match status {
        Some(s) if error.status < 500 => error.with_status(s),
        _ => error,
    }
}

/// A time in milliseconds since the epoch as a timestamp.
fn time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The page of `items` a token and a size select, with the token of the next page.
fn page<T>(
    items: Vec<T>,
    token: Option<&str>,
    max: Option<i32>,
    default: usize,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let start = match token {
        None | Some("") => 0,
        Some(t) => t
            .strip_prefix("asg1-")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| ApiError::new("InvalidNextToken", "The token is not valid."))?,
    };
    let size = max.map_or(default, |m| (m.max(1) as usize).min(limit));
    let total = items.len();
    let out: Vec<T> = items.into_iter().skip(start).take(size).collect();
    let next = (start + size < total).then(|| format!("asg1-{}", start + size));
    Ok((out, next))
}
