//! The group commands: Create/Update/DeleteAutoScalingGroup, SetDesiredCapacity, the
//! instance commands, Suspend/ResumeProcesses, tags and target groups, as
//! `control::autoscaling`'s commands.

use control::autoscaling::checks::{ScalingError, TagInput, invalid};
use control::autoscaling::groups::{self, GroupInput};
use control::autoscaling::instances;
use control::autoscaling::model::{TemplateSpec, now_ms};
use serde_json::Value;
use shapes::autoscaling::{
    ActivityType, DetachInstancesAnswer, LaunchTemplateSpecification, MixedInstancesPolicy, Tag,
    ops,
};

use super::refused;
use super::views::activity;
use crate::errors::ApiError;
use crate::operation::{input, output};
use crate::{Call, Reply};

fn template(t: Option<LaunchTemplateSpecification>) -> Option<TemplateSpec> {
    t.map(|t| TemplateSpec {
        id: t.launch_template_id,
        name: t.launch_template_name,
        version: t.version,
    })
}

/// The template and instance types of a `MixedInstancesPolicy`.
fn mixed(m: Option<MixedInstancesPolicy>) -> (Option<TemplateSpec>, Option<Vec<String>>) {
    let Some(lt) = m.and_then(|m| m.launch_template) else {
        return (None, None);
    };
    let types = lt
        .overrides
        .unwrap_or_default()
        .into_iter()
        .filter_map(|o| o.instance_type)
        .collect();
    (template(lt.launch_template_specification), Some(types))
}

/// The request's tags.
pub(super) fn tag_inputs(tags: Vec<Tag>) -> Vec<TagInput> {
    tags.into_iter()
        .map(|t| TagInput {
            resource_id: t.resource_id,
            resource_type: t.resource_type,
            key: t.key,
            value: t.value,
            propagate: t.propagate_at_launch,
        })
        .collect()
}

/// Refuses a template that does not resolve.
fn check_template(c: &Call<'_>, t: Option<&TemplateSpec>) -> Result<(), ApiError> {
    if let Some(t) = t {
        if t.id.is_some() == t.name.is_some() {
            return Err(refused(&invalid(
                "Valid requests must contain either LaunchTemplateId or LaunchTemplateName",
            )));
        }
        control::autoscaling::launch::resolve(&c.st.plane, t)
            .map_err(|e| refused(&ScalingError::Validation(e)))?;
    }
    Ok(())
}

/// CreateAutoScalingGroup.
pub(super) fn create(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::CreateAutoScalingGroup>(value)?;
    let (mixed_template, instance_types) = mixed(r.mixed_instances_policy);
    let unsupported = if r.launch_configuration_name.is_some() {
        Some("LaunchConfigurationName")
    } else if r.instance_id.is_some() {
        Some("InstanceId")
    } else if r.load_balancer_names.is_some() {
        Some("LoadBalancerNames")
    } else {
        None
    };
    let input = GroupInput {
        name: r.auto_scaling_group_name,
        template: template(r.launch_template).or(mixed_template),
        instance_types,
        min: Some(r.min_size),
        max: Some(r.max_size),
        desired: r.desired_capacity,
        default_cooldown: r.default_cooldown,
        default_instance_warmup: r.default_instance_warmup,
        zones: r.availability_zones,
        vpc_zone_identifier: r.vpc_zone_identifier,
        health_check_type: r.health_check_type,
        grace: r.health_check_grace_period,
        target_groups: r.target_group_ar_ns,
        termination_policies: r.termination_policies,
        protect_new: r.new_instances_protected_from_scale_in,
        tags: tag_inputs(r.tags.unwrap_or_default()),
        unsupported,
    };
    let plane = &c.st.plane;
    if input.unsupported.is_none() {
        check_template(c, input.template.as_ref())?;
    }
    for tg in input.target_groups.iter().flatten() {
        if !control::autoscaling::targets::exists(plane, tg) {
            return Err(refused(&invalid(format!("Target group not found: {tg}"))));
        }
    }
    plane
        .asg_write(|tx| groups::create_group(tx, &plane.account_id, &input, now_ms()))
        .map_err(|e| refused(&e))?;
    output::<ops::CreateAutoScalingGroup>(shapes::Empty {})
}

/// UpdateAutoScalingGroup.
pub(super) fn update(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::UpdateAutoScalingGroup>(value)?;
    let (mixed_template, instance_types) = mixed(r.mixed_instances_policy);
    let input = GroupInput {
        name: r.auto_scaling_group_name,
        template: template(r.launch_template).or(mixed_template),
        instance_types,
        min: r.min_size,
        max: r.max_size,
        desired: r.desired_capacity,
        default_cooldown: r.default_cooldown,
        default_instance_warmup: r.default_instance_warmup,
        zones: r.availability_zones,
        vpc_zone_identifier: r.vpc_zone_identifier,
        health_check_type: r.health_check_type,
        grace: r.health_check_grace_period,
        termination_policies: r.termination_policies,
        protect_new: r.new_instances_protected_from_scale_in,
        unsupported: r
            .launch_configuration_name
            .map(|_| "LaunchConfigurationName"),
        ..Default::default()
    };
    check_template(c, input.template.as_ref())?;
    let plane = &c.st.plane;
    plane
        .asg_write(|tx| groups::update_group(tx, &input, now_ms()))
        .map_err(|e| refused(&e))?;
    output::<ops::UpdateAutoScalingGroup>(shapes::Empty {})
}

/// DeleteAutoScalingGroup.
pub(super) fn delete(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DeleteAutoScalingGroup>(value)?;
    let plane = &c.st.plane;
    plane
        .delete_auto_scaling_group(&r.auto_scaling_group_name, r.force_delete.unwrap_or(false))
        .map_err(|e| refused(&e))?;
    output::<ops::DeleteAutoScalingGroup>(shapes::Empty {})
}

/// SetDesiredCapacity.
pub(super) fn set_desired_capacity(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::SetDesiredCapacity>(value)?;
    c.st.plane
        .asg_write(|tx| {
            groups::set_desired_capacity(
                tx,
                &r.auto_scaling_group_name,
                r.desired_capacity,
                r.honor_cooldown.unwrap_or(false),
                now_ms(),
            )
        })
        .map_err(|e| refused(&e))?;
    output::<ops::SetDesiredCapacity>(shapes::Empty {})
}

/// TerminateInstanceInAutoScalingGroup.
pub(super) fn terminate_instance(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::TerminateInstanceInAutoScalingGroup>(value)?;
    let id = r
        .instance_id
        .or_else(|| r.instance_ids.and_then(|v| v.into_iter().next()))
        .ok_or_else(|| ApiError::new("ValidationError", "InstanceId is required"))?;
    let plane = &c.st.plane;
    let a = plane
        .asg_write(|tx| {
            instances::terminate_instance(tx, &id, r.should_decrement_desired_capacity, now_ms())
        })
        .map_err(|e| refused(&e))?;
    output::<ops::TerminateInstanceInAutoScalingGroup>(ActivityType {
        activity: Some(activity(a, None)),
        activities: None,
    })
}

/// AttachInstances.
pub(super) fn attach_instances(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::AttachInstances>(value)?;
    let ids = r.instance_ids.unwrap_or_default();
    c.st.plane
        .asg_write(|tx| instances::attach_instances(tx, &r.auto_scaling_group_name, &ids, now_ms()))
        .map_err(|e| refused(&e))?;
    output::<ops::AttachInstances>(shapes::Empty {})
}

/// DetachInstances.
pub(super) fn detach_instances(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DetachInstances>(value)?;
    let ids = r.instance_ids.unwrap_or_default();
    let done =
        c.st.plane
            .asg_write(|tx| {
                instances::detach_instances(
                    tx,
                    &r.auto_scaling_group_name,
                    &ids,
                    r.should_decrement_desired_capacity,
                    now_ms(),
                )
            })
            .map_err(|e| refused(&e))?;
    output::<ops::DetachInstances>(DetachInstancesAnswer {
        activities: Some(done.into_iter().map(|a| activity(a, None)).collect()),
    })
}

/// SetInstanceHealth.
pub(super) fn set_instance_health(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::SetInstanceHealth>(value)?;
    c.st.plane
        .asg_write(|tx| {
            instances::set_instance_health(
                tx,
                &r.instance_id,
                &r.health_status,
                r.should_respect_grace_period.unwrap_or(true),
                now_ms(),
            )
        })
        .map_err(|e| refused(&e))?;
    output::<ops::SetInstanceHealth>(shapes::Empty {})
}

/// SetInstanceProtection.
pub(super) fn set_instance_protection(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::SetInstanceProtection>(value)?;
    c.st.plane
        .asg_write(|tx| {
            instances::set_instance_protection(
                tx,
                &r.auto_scaling_group_name,
                &r.instance_ids,
                r.protected_from_scale_in,
            )
        })
        .map_err(|e| refused(&e))?;
    output::<ops::SetInstanceProtection>(Default::default())
}

/// SuspendProcesses (`suspend`) or ResumeProcesses.
pub(super) fn processes(c: &Call<'_>, value: Value, suspend: bool) -> Result<Reply, ApiError> {
    let r = input::<ops::SuspendProcesses>(value)?;
    let names = r.scaling_processes.unwrap_or_default();
    c.st.plane
        .asg_write(|tx| groups::set_processes(tx, &r.auto_scaling_group_name, &names, suspend))
        .map_err(|e| refused(&e))?;
    output::<ops::SuspendProcesses>(shapes::Empty {})
}

/// CreateOrUpdateTags.
pub(super) fn put_tags(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::CreateOrUpdateTags>(value)?;
    let tags = tag_inputs(r.tags);
    c.st.plane
        .asg_write(|tx| groups::put_tags(tx, &tags))
        .map_err(|e| refused(&e))?;
    output::<ops::CreateOrUpdateTags>(shapes::Empty {})
}

/// DeleteTags.
pub(super) fn delete_tags(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DeleteTags>(value)?;
    let tags = tag_inputs(r.tags);
    c.st.plane
        .asg_write(|tx| groups::delete_tags(tx, &tags))
        .map_err(|e| refused(&e))?;
    output::<ops::DeleteTags>(shapes::Empty {})
}

/// Attach/DetachLoadBalancerTargetGroups.
pub(super) fn target_groups(c: &Call<'_>, value: Value, attach: bool) -> Result<Reply, ApiError> {
    let r = input::<ops::AttachLoadBalancerTargetGroups>(value)?;
    let plane = &c.st.plane;
    if attach {
        for tg in &r.target_group_ar_ns {
            if !control::autoscaling::targets::exists(plane, tg) {
                return Err(refused(&invalid(format!("Target group not found: {tg}"))));
            }
        }
    }
    plane
        .asg_write(|tx| {
            groups::set_target_groups(
                tx,
                &r.auto_scaling_group_name,
                &r.target_group_ar_ns,
                attach,
            )
        })
        .map_err(|e| refused(&e))?;
    if attach {
        output::<ops::AttachLoadBalancerTargetGroups>(Default::default())
    } else {
        output::<ops::DetachLoadBalancerTargetGroups>(Default::default())
    }
}
