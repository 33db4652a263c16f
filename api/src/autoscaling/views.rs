//! What Auto Scaling's Describe actions answer: groups (names, tag filters, pages),
//! instances, scaling activities (newest first), tags, target groups, and the process and
//! termination-policy types.

use control::autoscaling::groups;
use control::autoscaling::launch::Resolved;
use control::autoscaling::model::{Group, PROCESSES, TERMINATION_POLICIES, ZONE};
use serde_json::Value;
use shapes::autoscaling::{
    ActivitiesType, Activity, AutoScalingGroup, AutoScalingGroupsType, AutoScalingInstanceDetails,
    AutoScalingInstancesType, DescribeLoadBalancerTargetGroupsResponse,
    DescribeTerminationPolicyTypesAnswer, Filter, Instance, LaunchTemplateSpecification,
    LifecycleState, LoadBalancerTargetGroupState, ProcessType, ProcessesType,
    ScalingActivityStatusCode, SuspendedProcess, TagDescription, TagsType, ops,
};
use state::autoscaling::{self as db, ActivityRow, MemberRow};

use super::{page, refused, time};
use crate::errors::ApiError;
use crate::operation::{input, output};
use crate::{Call, Reply};

/// An activity as Auto Scaling shows it.
pub(super) fn activity(a: ActivityRow, group_arn: Option<String>) -> Activity {
    Activity {
        activity_id: a.id,
        auto_scaling_group_name: a.group_name,
        description: Some(a.description),
        cause: a.cause,
        start_time: time(a.start_ms),
        end_time: a.end_ms.map(time),
        status_code: ScalingActivityStatusCode::from_wire(&a.status)
            .unwrap_or(ScalingActivityStatusCode::InProgress),
        status_message: a.status_message,
        progress: Some(a.progress as i32),
        details: Some(a.details),
        auto_scaling_group_arn: group_arn,
        auto_scaling_group_state: None,
    }
}

fn template_of(m: &MemberRow) -> Option<LaunchTemplateSpecification> {
    let t: Resolved = serde_json::from_str(&m.template).ok()?;
    Some(LaunchTemplateSpecification {
        launch_template_id: Some(t.id),
        launch_template_name: Some(t.name),
        version: Some(t.version.to_string()),
    })
}

fn instance(m: &MemberRow) -> Instance {
    Instance {
        instance_id: m.instance_id.clone(),
        instance_type: Some(m.instance_type.clone()),
        availability_zone: ZONE.into(),
        lifecycle_state: LifecycleState::from_wire(&m.lifecycle).unwrap_or(LifecycleState::Pending),
        health_status: m.health.clone(),
        launch_template: template_of(m),
        protected_from_scale_in: m.protected,
        availability_zone_id: None,
        launch_configuration_name: None,
        image_id: None,
        weighted_capacity: None,
    }
}

fn tag_descriptions(g: &Group) -> Vec<TagDescription> {
    g.config
        .tags
        .iter()
        .map(|t| TagDescription {
            resource_id: Some(g.name.clone()),
            resource_type: Some("auto-scaling-group".into()),
            key: Some(t.key.clone()),
            value: Some(t.value.clone()),
            propagate_at_launch: Some(t.propagate),
        })
        .collect()
}

fn group_view(g: Group, members: &[MemberRow]) -> AutoScalingGroup {
    let c = &g.config;
    let t = &c.template;
    AutoScalingGroup {
        auto_scaling_group_name: g.name.clone(),
        auto_scaling_group_arn: Some(g.arn.clone()),
        launch_template: Some(LaunchTemplateSpecification {
            launch_template_id: t.id.clone(),
            launch_template_name: t.name.clone(),
            version: Some(t.version.clone().unwrap_or_else(|| "$Default".into())),
        }),
        min_size: c.min,
        max_size: c.max,
        desired_capacity: c.desired,
        predicted_capacity: c.forecast_min,
        default_cooldown: c.default_cooldown,
        default_instance_warmup: c.default_instance_warmup,
        availability_zones: vec![ZONE.into()],
        load_balancer_names: Some(Vec::new()),
        target_group_ar_ns: Some(c.target_groups.clone()),
        health_check_type: c.health_check_type.clone(),
        health_check_grace_period: Some(c.grace),
        instances: Some(members.iter().map(instance).collect()),
        created_time: time(g.created_ms),
        suspended_processes: Some(
            c.suspended
                .iter()
                .map(|(p, why)| SuspendedProcess {
                    process_name: Some(p.clone()),
                    suspension_reason: Some(why.clone()),
                })
                .collect(),
        ),
        vpc_zone_identifier: Some(c.subnets.join(",")),
        enabled_metrics: Some(Vec::new()),
        status: c.deleting.then(|| "Delete in progress".to_string()),
        tags: Some(tag_descriptions(&g)),
        termination_policies: Some(c.termination_policies()),
        new_instances_protected_from_scale_in: Some(c.protect_new),
        ..Default::default()
    }
}

/// Whether group `g` passes every filter (`tag-key`, `tag-value`, `tag:<key>`).
fn filtered(g: &Group, filters: &[Filter]) -> bool {
    filters.iter().all(|f| {
        let values = f.values.clone().unwrap_or_default();
        let name = f.name.as_deref().unwrap_or("");
        let tags = &g.config.tags;
        match name {
            "tag-key" => tags.iter().any(|t| values.contains(&t.key)),
            "tag-value" => tags.iter().any(|t| values.contains(&t.value)),
            n => match n.strip_prefix("tag:") {
                Some(k) => tags.iter().any(|t| t.key == k && values.contains(&t.value)),
                None => false,
            },
        }
    })
}

fn check_filters(filters: &[Filter]) -> Result<(), ApiError> {
    for f in filters {
        let n = f.name.as_deref().unwrap_or("");
        let known = matches!(
            n,
            "tag-key"
                | "tag-value"
                | "auto-scaling-group"
                | "key"
                | "value"
                | "propagate-at-launch"
        ) || n.starts_with("tag:");
        if !known {
            return Err(ApiError::new(
                "ValidationError",
                format!("Filter type {n} is not correct."),
            ));
        }
    }
    Ok(())
}

/// DescribeAutoScalingGroups.
pub(super) fn describe_groups(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DescribeAutoScalingGroups>(value)?;
    let filters = r.filters.unwrap_or_default();
    check_filters(&filters)?;
    let conn = c.st.plane.db.lock();
    let names = r.auto_scaling_group_names.unwrap_or_default();
    let all = groups::groups(&conn, &names).map_err(|e| refused(&e))?;
    let chosen: Vec<Group> = all.into_iter().filter(|g| filtered(g, &filters)).collect();
    let (chosen, next) = page(chosen, r.next_token.as_deref(), r.max_records, 50, 100)?;
    let mut out = Vec::new();
    for g in chosen {
        let members = db::members_of(&conn, &g.name).map_err(|e| ApiError::internal(&e))?;
        out.push(group_view(g, &members));
    }
    drop(conn);
    output::<ops::DescribeAutoScalingGroups>(AutoScalingGroupsType {
        auto_scaling_groups: out,
        next_token: next,
    })
}

/// DescribeAutoScalingInstances.
pub(super) fn describe_instances(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DescribeAutoScalingInstances>(value)?;
    let ids = r.instance_ids.unwrap_or_default();
    let members = db::members(&c.st.plane.db.lock()).map_err(|e| ApiError::internal(&e))?;
    let chosen: Vec<MemberRow> = members
        .into_iter()
        .filter(|m| ids.is_empty() || ids.contains(&m.instance_id))
        .collect();
    let (chosen, next) = page(chosen, r.next_token.as_deref(), r.max_records, 50, 50)?;
    output::<ops::DescribeAutoScalingInstances>(AutoScalingInstancesType {
        auto_scaling_instances: Some(
            chosen
                .iter()
                .map(|m| AutoScalingInstanceDetails {
                    instance_id: m.instance_id.clone(),
                    instance_type: Some(m.instance_type.clone()),
                    auto_scaling_group_name: m.group_name.clone(),
                    availability_zone: ZONE.into(),
                    lifecycle_state: m.lifecycle.clone(),
                    health_status: m.health.to_uppercase(),
                    launch_template: template_of(m),
                    protected_from_scale_in: m.protected,
                    ..Default::default()
                })
                .collect(),
        ),
        next_token: next,
    })
}

/// DescribeScalingActivities: newest first.
pub(super) fn describe_activities(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DescribeScalingActivities>(value)?;
    let conn = c.st.plane.db.lock();
    let group = r.auto_scaling_group_name.as_deref();
    let arn = match group {
        Some(g) => Some(groups::group(&conn, g).map_err(|e| refused(&e))?.arn),
        None => None,
    };
    let ids = r.activity_ids.unwrap_or_default();
    let rows =
        db::activities(&conn, group, i64::MAX, 10_000).map_err(|e| ApiError::internal(&e))?;
    drop(conn);
    let rows: Vec<ActivityRow> = rows
        .into_iter()
        .filter(|a| ids.is_empty() || ids.contains(&a.id))
        .collect();
    let (rows, next) = page(rows, r.next_token.as_deref(), r.max_records, 100, 100)?;
    output::<ops::DescribeScalingActivities>(ActivitiesType {
        activities: rows.into_iter().map(|a| activity(a, arn.clone())).collect(),
        next_token: next,
    })
}

/// DescribeTags: every group's tags, filtered by `auto-scaling-group`, `key`, `value`,
/// `propagate-at-launch`.
pub(super) fn describe_tags(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DescribeTags>(value)?;
    let filters = r.filters.unwrap_or_default();
    check_filters(&filters)?;
    let all = groups::groups(&c.st.plane.db.lock(), &[]).map_err(|e| refused(&e))?;
    let tags: Vec<TagDescription> = all
        .iter()
        .flat_map(tag_descriptions)
        .filter(|t| {
            filters.iter().all(|f| {
                let v = f.values.clone().unwrap_or_default();
                let has = |x: &Option<String>| x.as_ref().is_some_and(|x| v.contains(x));
                match f.name.as_deref().unwrap_or("") {
                    "auto-scaling-group" => has(&t.resource_id),
                    "key" => has(&t.key),
                    "value" => has(&t.value),
                    "propagate-at-launch" => {
                        v.contains(&t.propagate_at_launch.unwrap_or(false).to_string())
                    }
                    _ => true,
                }
            })
        })
        .collect();
    let (tags, next) = page(tags, r.next_token.as_deref(), r.max_records, 50, 100)?;
    output::<ops::DescribeTags>(TagsType {
        tags: Some(tags),
        next_token: next,
    })
}

/// DescribeLoadBalancerTargetGroups.
pub(super) fn describe_target_groups(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DescribeLoadBalancerTargetGroups>(value)?;
    let g = groups::group(&c.st.plane.db.lock(), &r.auto_scaling_group_name)
        .map_err(|e| refused(&e))?;
    output::<ops::DescribeLoadBalancerTargetGroups>(DescribeLoadBalancerTargetGroupsResponse {
        load_balancer_target_groups: Some(
            g.config
                .target_groups
                .iter()
                .map(|a| LoadBalancerTargetGroupState {
                    load_balancer_target_group_arn: Some(a.clone()),
                    state: Some("InService".into()),
                })
                .collect(),
        ),
        next_token: None,
    })
}

/// DescribeScalingProcessTypes.
pub(super) fn process_types() -> Result<Reply, ApiError> {
    output::<ops::DescribeScalingProcessTypes>(ProcessesType {
        processes: Some(
            PROCESSES
                .iter()
                .map(|p| ProcessType {
                    process_name: p.to_string(),
                })
                .collect(),
        ),
    })
}

/// DescribeTerminationPolicyTypes.
pub(super) fn termination_policy_types() -> Result<Reply, ApiError> {
    output::<ops::DescribeTerminationPolicyTypes>(DescribeTerminationPolicyTypesAnswer {
        termination_policy_types: Some(
            TERMINATION_POLICIES.iter().map(|s| s.to_string()).collect(),
        ),
    })
}
