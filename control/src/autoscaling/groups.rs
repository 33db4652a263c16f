//! Groups: CreateAutoScalingGroup, UpdateAutoScalingGroup, DeleteAutoScalingGroup,
//! SetDesiredCapacity, Suspend/ResumeProcesses, the tag and target-group commands. Each is
//! a plain function over a connection (the unit tests drive them with a database alone); a
//! change of desired capacity leaves its cause on the group for the activities the
//! reconciler starts.

use rusqlite::Connection;
use state::autoscaling::{self as db, GroupRow};

use super::activities::{DesiredChange, desired_cause};
use super::checks::{
    MAX_GROUPS, ScalingError, TagInput, check_health_check_type, check_name, check_sizes,
    check_tag, check_termination_policies, invalid, merge_tags, resolve_subnets,
};
use super::model::{Group, GroupConfig, PROCESSES, TemplateSpec, counts, group_arn};

/// CreateAutoScalingGroup or UpdateAutoScalingGroup, as given (the template resolved by
/// the caller).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupInput {
    /// The group's name.
    pub name: String,
    /// The launch template.
    pub template: Option<TemplateSpec>,
    /// A `MixedInstancesPolicy`'s instance types.
    pub instance_types: Option<Vec<String>>,
    /// `MinSize`.
    pub min: Option<i32>,
    /// `MaxSize`.
    pub max: Option<i32>,
    /// `DesiredCapacity`.
    pub desired: Option<i32>,
    /// `DefaultCooldown`.
    pub default_cooldown: Option<i32>,
    /// `DefaultInstanceWarmup`.
    pub default_instance_warmup: Option<i32>,
    /// `AvailabilityZones`.
    pub zones: Option<Vec<String>>,
    /// `VPCZoneIdentifier`.
    pub vpc_zone_identifier: Option<String>,
    /// `HealthCheckType`.
    pub health_check_type: Option<String>,
    /// `HealthCheckGracePeriod`.
    pub grace: Option<i32>,
    /// `TargetGroupARNs` (create only).
    pub target_groups: Option<Vec<String>>,
    /// `TerminationPolicies`.
    pub termination_policies: Option<Vec<String>>,
    /// `NewInstancesProtectedFromScaleIn`.
    pub protect_new: Option<bool>,
    /// `Tags` (create only).
    pub tags: Vec<TagInput>,
    /// The first member given that this endpoint does not serve.
    pub unsupported: Option<&'static str>,
}

/// The group named `name`, or Auto Scaling's ValidationError.
pub fn group(conn: &Connection, name: &str) -> Result<Group, ScalingError> {
    db::group_by_name(conn, name)?
        .map(Group::from_row)
        .ok_or_else(|| {
            invalid(format!(
                "AutoScalingGroup name not found - AutoScalingGroup {name} not found"
            ))
        })
}

fn store(conn: &Connection, g: &Group) -> Result<(), ScalingError> {
    db::set_group_config(conn, &g.name, &g.config_text())?;
    Ok(())
}

/// Checks the target-group ARNs' form.
pub fn check_target_group_arns(arns: &[String]) -> Result<(), ScalingError> {
    for a in arns {
        if !a.starts_with("arn:aws:elasticloadbalancing:") || !a.contains(":targetgroup/") {
            return Err(invalid(format!("Invalid target group ARN: {a}")));
        }
    }
    Ok(())
}

/// CreateAutoScalingGroup at `now_ms`.
pub fn create_group(
    conn: &Connection,
    account: &str,
    input: &GroupInput,
    now_ms: i64,
) -> Result<Group, ScalingError> {
    check_name("AutoScalingGroupName", &input.name)?;
    if let Some(m) = input.unsupported {
        return Err(invalid(format!(
            "The parameter {m} is not supported by this endpoint."
        )));
    }
    let template = input.template.clone().ok_or_else(|| {
        invalid("Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.")
    })?;
    let (min, max) = (input.min.unwrap_or(0), input.max.unwrap_or(0));
    let desired = input.desired.unwrap_or(min);
    check_sizes(min, max, desired)?;
    let subnets = resolve_subnets(
        conn,
        input.vpc_zone_identifier.as_deref(),
        input.zones.as_deref(),
    )?;
    let hc = input
        .health_check_type
        .clone()
        .unwrap_or_else(|| "EC2".into());
    check_health_check_type(&hc)?;
    let termination = input.termination_policies.clone().unwrap_or_default();
    check_termination_policies(&termination)?;
    let target_groups = input.target_groups.clone().unwrap_or_default();
    check_target_group_arns(&target_groups)?;
    check_times(input)?;
    let mut tags = Vec::new();
    let checked = input
        .tags
        .iter()
        .map(|t| check_tag(t, &input.name))
        .collect::<Result<Vec<_>, _>>()?;
    merge_tags(&mut tags, checked)?;
    if db::group_by_name(conn, &input.name)?.is_some() {
        return Err(ScalingError::AlreadyExists(format!(
            "AutoScalingGroup by this name already exists - A group with the name {} already exists",
            input.name
        )));
    }
    if db::group_count(conn)? >= MAX_GROUPS {
        return Err(ScalingError::Limit(format!(
            "You have reached your limit of {MAX_GROUPS} Auto Scaling groups."
        )));
    }
    let config = GroupConfig {
        template,
        instance_types: input.instance_types.clone().unwrap_or_default(),
        min,
        max,
        desired,
        default_cooldown: input.default_cooldown.unwrap_or(300),
        default_instance_warmup: input.default_instance_warmup,
        subnets,
        health_check_type: hc,
        grace: input.grace.unwrap_or(0),
        target_groups,
        termination_policies: termination,
        protect_new: input.protect_new.unwrap_or(false),
        tags,
        pending_cause: (desired > 0)
            .then(|| desired_cause(&DesiredChange::Created, 0, desired, now_ms)),
        ..Default::default()
    };
    let g = Group {
        seq: 0,
        name: input.name.clone(),
        arn: group_arn(account, &crate::sns::new_uuid(), &input.name),
        created_ms: now_ms,
        config,
    };
    db::insert_group(
        conn,
        &GroupRow {
            seq: 0,
            name: g.name.clone(),
            arn: g.arn.clone(),
            config: g.config_text(),
            created_ms: now_ms,
        },
    )?;
    Ok(g)
}

fn check_times(input: &GroupInput) -> Result<(), ScalingError> {
    let fields = [
        ("DefaultCooldown", input.default_cooldown),
        ("HealthCheckGracePeriod", input.grace),
        ("DefaultInstanceWarmup", input.default_instance_warmup),
    ];
    for (name, v) in fields {
        if v.is_some_and(|v| !(0..=86_400).contains(&v)) {
            return Err(invalid(format!(
                "{name} must be between 0 and 86400 seconds."
            )));
        }
    }
    Ok(())
}

/// UpdateAutoScalingGroup at `now_ms`.
pub fn update_group(
    conn: &Connection,
    input: &GroupInput,
    now_ms: i64,
) -> Result<Group, ScalingError> {
    if let Some(m) = input.unsupported {
        return Err(invalid(format!(
            "The parameter {m} is not supported by this endpoint."
        )));
    }
    let mut g = group(conn, &input.name)?;
    refuse_deleting(&g)?;
    let c = &mut g.config;
    let min = input.min.unwrap_or(c.min);
    let max = input.max.unwrap_or(c.max);
    // A new min or max alone moves the desired capacity into the new bounds, as on AWS.
    let desired = input.desired.unwrap_or(c.desired.clamp(min, max.max(min)));
    check_sizes(min, max, desired)?;
    check_times(input)?;
    if input.vpc_zone_identifier.is_some() || input.zones.is_some() {
        c.subnets = resolve_subnets(
            conn,
            input.vpc_zone_identifier.as_deref(),
            input.zones.as_deref(),
        )?;
    }
    if let Some(hc) = &input.health_check_type {
        check_health_check_type(hc)?;
        c.health_check_type = hc.clone();
    }
    if let Some(p) = &input.termination_policies {
        check_termination_policies(p)?;
        c.termination_policies = p.clone();
    }
    if let Some(t) = &input.template {
        c.template = t.clone();
    }
    if let Some(t) = &input.instance_types {
        c.instance_types = t.clone();
    }
    if let Some(v) = input.default_cooldown {
        c.default_cooldown = v;
    }
    if let Some(v) = input.default_instance_warmup {
        c.default_instance_warmup = Some(v);
    }
    if let Some(v) = input.grace {
        c.grace = v;
    }
    if let Some(v) = input.protect_new {
        c.protect_new = v;
    }
    let from = c.desired;
    (c.min, c.max, c.desired) = (min, max, desired);
    if desired != from {
        c.pending_cause = Some(desired_cause(
            &DesiredChange::Updated(min, max, desired),
            from,
            desired,
            now_ms,
        ));
    }
    store(conn, &g)?;
    Ok(g)
}

fn refuse_deleting(g: &Group) -> Result<(), ScalingError> {
    if g.config.deleting {
        return Err(ScalingError::ActivityInProgress(format!(
            "AutoScalingGroup {} is pending delete.",
            g.name
        )));
    }
    Ok(())
}

/// DeleteAutoScalingGroup: gone at once without instances; with `force`, marked so that
/// the reconciler terminates its instances and then deletes it.
pub fn delete_group(conn: &Connection, name: &str, force: bool) -> Result<(), ScalingError> {
    let mut g = group(conn, name)?;
    let members = db::members_of(conn, name)?;
    let open = db::open_activities(conn)?
        .into_iter()
        .any(|a| a.group_name == name);
    if !members.is_empty() || open {
        if !force {
            return Err(if members.is_empty() {
                ScalingError::ActivityInProgress(
                    "You cannot delete an AutoScalingGroup while there are scaling activities in progress for that group.".into(),
                )
            } else {
                ScalingError::InUse(
                    "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.".into(),
                )
            });
        }
        let c = &mut g.config;
        c.deleting = true;
        (c.min, c.max, c.desired) = (0, 0, 0);
        c.pending_cause = None;
        store(conn, &g)?;
        return Ok(());
    }
    db::delete_group(conn, name)?;
    Ok(())
}

/// Whether the group's cooldown or a scaling activity keeps `HonorCooldown` from acting.
pub fn cooling_down(conn: &Connection, g: &Group, now_ms: i64) -> Result<bool, ScalingError> {
    let open = db::open_activities(conn)?
        .into_iter()
        .any(|a| a.group_name == g.name);
    Ok(open || now_ms < g.config.cooldown_until_ms)
}

/// Sets group `g`'s desired capacity to `to` for `change` (within min and max: the caller
/// checks or clamps), starting the cooldown.
pub fn change_desired(
    conn: &Connection,
    g: &mut Group,
    to: i32,
    change: &DesiredChange<'_>,
    now_ms: i64,
) -> Result<bool, ScalingError> {
    let from = g.config.desired;
    if from == to {
        return Ok(false);
    }
    g.config.desired = to;
    g.config.pending_cause = Some(desired_cause(change, from, to, now_ms));
    g.config.cooldown_until_ms = now_ms + i64::from(g.config.default_cooldown) * 1000;
    store(conn, g)?;
    Ok(true)
}

/// SetDesiredCapacity.
pub fn set_desired_capacity(
    conn: &Connection,
    name: &str,
    desired: i32,
    honor_cooldown: bool,
    now_ms: i64,
) -> Result<(), ScalingError> {
    let mut g = group(conn, name)?;
    refuse_deleting(&g)?;
    if desired > g.config.max {
        return Err(invalid(format!(
            "New SetDesiredCapacity value {desired} is above max value {} for the AutoScalingGroup.",
            g.config.max
        )));
    }
    if desired < g.config.min {
        return Err(invalid(format!(
            "New SetDesiredCapacity value {desired} is below min value {} for the AutoScalingGroup.",
            g.config.min
        )));
    }
    if honor_cooldown && cooling_down(conn, &g, now_ms)? {
        return Err(ScalingError::ActivityInProgress(
            "Scaling activity is in progress or the group is in its cooldown period; with HonorCooldown the request was not applied.".into(),
        ));
    }
    change_desired(conn, &mut g, desired, &DesiredChange::SetDesired, now_ms)?;
    Ok(())
}

/// SuspendProcesses (`suspend`) or ResumeProcesses: the processes named, or all of them.
pub fn set_processes(
    conn: &Connection,
    name: &str,
    processes: &[String],
    suspend: bool,
) -> Result<(), ScalingError> {
    let mut g = group(conn, name)?;
    if let Some(bad) = processes.iter().find(|p| !PROCESSES.contains(&p.as_str())) {
        return Err(invalid(format!(
            "Process {bad} is not a valid scaling process."
        )));
    }
    let all: Vec<String> = if processes.is_empty() {
        PROCESSES.iter().map(|s| s.to_string()).collect()
    } else {
        processes.to_vec()
    };
    for p in all {
        if suspend {
            g.config.suspended.entry(p).or_insert_with(|| {
                "User suspended at ".to_string() + &super::model::cause_time(super::model::now_ms())
            });
        } else {
            g.config.suspended.remove(&p);
        }
    }
    store(conn, &g)
}

/// CreateOrUpdateTags: tags of one or more groups, all or nothing.
pub fn put_tags(conn: &Connection, tags: &[TagInput]) -> Result<(), ScalingError> {
    for t in tags {
        let name = t
            .resource_id
            .clone()
            .ok_or_else(|| invalid("A tag's ResourceId is required"))?;
        let mut g = group(conn, &name)?;
        let tag = check_tag(t, &name)?;
        merge_tags(&mut g.config.tags, vec![tag])?;
        store(conn, &g)?;
    }
    Ok(())
}

/// DeleteTags (a tag given with a value goes only when the value matches).
pub fn delete_tags(conn: &Connection, tags: &[TagInput]) -> Result<(), ScalingError> {
    for t in tags {
        let name = t
            .resource_id
            .clone()
            .ok_or_else(|| invalid("A tag's ResourceId is required"))?;
        let mut g = group(conn, &name)?;
        g.config
            .tags
            .retain(|x| x.key != t.key || t.value.as_ref().is_some_and(|v| *v != x.value));
        store(conn, &g)?;
    }
    Ok(())
}

/// AttachLoadBalancerTargetGroups (`attach`) or DetachLoadBalancerTargetGroups.
pub fn set_target_groups(
    conn: &Connection,
    name: &str,
    arns: &[String],
    attach: bool,
) -> Result<Group, ScalingError> {
    check_target_group_arns(arns)?;
    let mut g = group(conn, name)?;
    for a in arns {
        if attach && !g.config.target_groups.contains(a) {
            g.config.target_groups.push(a.clone());
        }
        if !attach {
            g.config.target_groups.retain(|x| x != a);
        }
    }
    store(conn, &g)?;
    Ok(g)
}

/// How many of a group's members count toward its capacity.
pub fn capacity(conn: &Connection, name: &str) -> Result<usize, ScalingError> {
    Ok(db::members_of(conn, name)?
        .iter()
        .filter(|m| counts(m))
        .count())
}

/// The groups named (all when `names` is empty), in creation order.
pub fn groups(conn: &Connection, names: &[String]) -> Result<Vec<Group>, ScalingError> {
    Ok(db::groups(conn)?
        .into_iter()
        .filter(|g| names.is_empty() || names.contains(&g.name))
        .map(Group::from_row)
        .collect())
}
