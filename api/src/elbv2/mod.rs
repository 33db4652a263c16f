//! Elastic Load Balancing v2 over awsQuery: target groups and targets (`target_groups.rs`),
//! load balancers (`load_balancers.rs`), listeners, rules and tags (`listeners.rs`), the
//! translation of actions and conditions (`actions.rs`). Each handler turns the typed input
//! into a command of `control::elbv2` and its result into the typed output; a refusal is
//! answered with ELB's code (HTTP 400, `ValidationError` for malformed input).

mod actions;
mod listeners;
mod load_balancers;
mod target_groups;

use serde_json::Value;

use super::errors::ApiError;
use super::operation::not_served;
use super::{Call, Reply};

/// Runs one ELB operation.
pub fn dispatch(operation: &str, c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    match operation {
        "CreateTargetGroup" => target_groups::create(c, value),
        "DescribeTargetGroups" => target_groups::describe(c, value),
        "ModifyTargetGroup" => target_groups::modify(c, value),
        "DeleteTargetGroup" => target_groups::delete(c, value),
        "DescribeTargetGroupAttributes" => target_groups::describe_attributes(c, value),
        "ModifyTargetGroupAttributes" => target_groups::modify_attributes(c, value),
        "RegisterTargets" => target_groups::register(c, value),
        "DeregisterTargets" => target_groups::deregister(c, value),
        "DescribeTargetHealth" => target_groups::health(c, value),
        "CreateLoadBalancer" => load_balancers::create(c, value),
        "DescribeLoadBalancers" => load_balancers::describe(c, value),
        "DeleteLoadBalancer" => load_balancers::delete(c, value),
        "DescribeLoadBalancerAttributes" => load_balancers::describe_attributes(c, value),
        "ModifyLoadBalancerAttributes" => load_balancers::modify_attributes(c, value),
        "CreateListener" => listeners::create(c, value),
        "DescribeListeners" => listeners::describe(c, value),
        "ModifyListener" => listeners::modify(c, value),
        "DeleteListener" => listeners::delete(c, value),
        "CreateRule" => listeners::create_rule(c, value),
        "DescribeRules" => listeners::describe_rules(c, value),
        "ModifyRule" => listeners::modify_rule(c, value),
        "DeleteRule" => listeners::delete_rule(c, value),
        "SetRulePriorities" => listeners::set_rule_priorities(c, value),
        "AddTags" => listeners::add_tags(c, value),
        "RemoveTags" => listeners::remove_tags(c, value),
        "DescribeTags" => listeners::describe_tags(c, value),
        other => Err(not_served(other)),
    }
}

/// A command's refusal with ELB's code; a failure of the agent's is `InternalFailure`.
fn refused<E: control::Refusal>(e: &E) -> ApiError {
    ApiError::refused(e)
}

/// ELB's `ValidationError` for a request's form.
fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new("ValidationError", message)
}

/// The request's tags as pairs.
fn pairs(tags: Option<Vec<shapes::elbv2::Tag>>) -> Vec<(String, String)> {
    tags.unwrap_or_default()
        .into_iter()
        .map(|t| (t.key, t.value.unwrap_or_default()))
        .collect()
}

/// One page of `items` after `marker` (an index this endpoint gave), `page_size` long (at
/// most 400, as ELB allows); gives the page and the next marker.
fn page<T>(
    items: Vec<T>,
    marker: Option<&str>,
    page_size: Option<i32>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = page_size.unwrap_or(400);
    if !(1..=400).contains(&size) {
        return Err(invalid("PageSize must be between 1 and 400"));
    }
    let start = match marker {
        None | Some("") => 0,
        Some(m) => m
            .strip_prefix("elb1-")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| invalid("The marker is not one this endpoint gave"))?,
    };
    let total = items.len();
    let end = (start + size as usize).min(total);
    let next = (end < total).then(|| format!("elb1-{end}"));
    Ok((
        items
            .into_iter()
            .skip(start)
            .take(end.saturating_sub(start))
            .collect(),
        next,
    ))
}

/// Milliseconds since the epoch as a time.
fn time(ms: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_millis(ms)
}
