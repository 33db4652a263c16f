//! Scaling policies: PutScalingPolicy (simple, step, target tracking, predictive),
//! DescribePolicies, DeletePolicy, and executing a policy (ExecutePolicy, or an alarm naming
//! its ARN) into a new desired capacity.

use rusqlite::Connection;
use state::autoscaling::{self as db, Named, NamedRow};

use super::activities::DesiredChange;
use super::capacity::{self, AdjustmentType, Step};
use super::checks::{ScalingError, check_name, invalid};
use super::groups::{change_desired, cooling_down, group};
use super::model::{Group, policy_arn};
pub use super::policy_config::{CustomMetric, PolicyConfig, TargetTracking};
use super::policy_config::{PredictiveConfig, check_predictive, check_target_tracking};

/// A policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Its ARN.
    pub arn: String,
    /// Its group.
    pub group: String,
    /// Its name.
    pub name: String,
    /// Its settings.
    pub config: PolicyConfig,
}

impl Policy {
    /// The policy a row holds.
    pub fn from_row(r: NamedRow) -> Self {
        Self {
            config: serde_json::from_str(&r.config).unwrap_or_default(),
            arn: r.arn,
            group: r.group_name,
            name: r.name,
        }
    }

    fn row(&self) -> NamedRow {
        NamedRow {
            seq: 0,
            arn: self.arn.clone(),
            group_name: self.group.clone(),
            name: self.name.clone(),
            config: serde_json::to_string(&self.config).unwrap_or_else(|_| "{}".into()),
            next_ms: None,
        }
    }
}

/// PutScalingPolicy, as given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyInput {
    /// The group.
    pub group: String,
    /// The name.
    pub name: String,
    /// `PolicyType` (`SimpleScaling` when absent).
    pub policy_type: Option<String>,
    /// `AdjustmentType`.
    pub adjustment_type: Option<String>,
    /// `ScalingAdjustment`.
    pub scaling_adjustment: Option<i32>,
    /// `MinAdjustmentMagnitude`.
    pub min_adjustment_magnitude: Option<i32>,
    /// `Cooldown`.
    pub cooldown: Option<i32>,
    /// `MetricAggregationType`.
    pub metric_aggregation_type: Option<String>,
    /// `StepAdjustments`.
    pub steps: Vec<Step>,
    /// `EstimatedInstanceWarmup`.
    pub estimated_instance_warmup: Option<i32>,
    /// `TargetTrackingConfiguration`.
    pub target: Option<TargetTracking>,
    /// `PredictiveScalingConfiguration`.
    pub predictive: Option<PredictiveConfig>,
    /// `Enabled`.
    pub enabled: Option<bool>,
}

/// The policy `name` of group `group`.
pub fn policy(conn: &Connection, group_name: &str, name: &str) -> Result<Policy, ScalingError> {
    db::named_by_name(conn, Named::Policy, group_name, name)?
        .map(Policy::from_row)
        .ok_or_else(|| invalid(format!("No scaling policy found for service namespace: autoscaling, resource ID: autoScalingGroup/{group_name}, scalable dimension: autoscaling:autoScalingGroup:DesiredCapacity, policy name: {name}")))
}

/// A policy named by its name (with its group) or its ARN.
pub fn policy_named(
    conn: &Connection,
    group_name: Option<&str>,
    name: &str,
) -> Result<Policy, ScalingError> {
    if name.starts_with("arn:") {
        return db::named_by_arn(conn, Named::Policy, name)?
            .map(Policy::from_row)
            .ok_or_else(|| invalid(format!("No scaling policy found: {name}")));
    }
    let g =
        group_name.ok_or_else(|| invalid("AutoScalingGroupName is required with a policy name"))?;
    policy(conn, g, name)
}

fn check_input(p: &PolicyInput) -> Result<PolicyConfig, ScalingError> {
    check_name("PolicyName", &p.name)?;
    let kind = p
        .policy_type
        .clone()
        .unwrap_or_else(|| "SimpleScaling".into());
    let adjustment_type = p
        .adjustment_type
        .as_deref()
        .map(|a| {
            AdjustmentType::parse(a).ok_or_else(|| invalid(format!("Invalid adjustment type: {a}")))
        })
        .transpose()?;
    let mut c = PolicyConfig {
        policy_type: kind.clone(),
        adjustment_type,
        scaling_adjustment: p.scaling_adjustment,
        min_adjustment_magnitude: p.min_adjustment_magnitude,
        cooldown: p.cooldown,
        metric_aggregation_type: p.metric_aggregation_type.clone(),
        steps: p.steps.clone(),
        estimated_instance_warmup: p.estimated_instance_warmup,
        target: p.target.clone(),
        predictive: p.predictive.clone(),
        enabled: p.enabled.unwrap_or(true),
        ..Default::default()
    };
    match kind.as_str() {
        "SimpleScaling" => {
            if c.scaling_adjustment.is_none() {
                return Err(invalid(
                    "ScalingAdjustment is required for a SimpleScaling policy.",
                ));
            }
            c.adjustment_type
                .get_or_insert(AdjustmentType::ChangeInCapacity);
        }
        "StepScaling" => {
            if c.steps.is_empty() {
                return Err(invalid(
                    "StepAdjustments is required for a StepScaling policy.",
                ));
            }
            if c.adjustment_type.is_none() {
                return Err(invalid(
                    "AdjustmentType is required for a StepScaling policy.",
                ));
            }
            check_steps(&c.steps)?;
        }
        "TargetTrackingScaling" => {
            let t = c.target.as_ref().ok_or_else(|| {
                invalid(
                    "TargetTrackingConfiguration is required for a TargetTrackingScaling policy.",
                )
            })?;
            check_target_tracking(t)?;
        }
        "PredictiveScaling" => {
            let pc = c.predictive.as_ref().ok_or_else(|| {
                invalid(
                    "PredictiveScalingConfiguration is required for a PredictiveScaling policy.",
                )
            })?;
            check_predictive(pc)?;
        }
        other => return Err(invalid(format!("Invalid policy type: {other}"))),
    }
    if c.adjustment_type != Some(AdjustmentType::PercentChangeInCapacity)
        && c.min_adjustment_magnitude.is_some()
    {
        return Err(invalid(
            "MinAdjustmentMagnitude may only be used with PercentChangeInCapacity.",
        ));
    }
    Ok(c)
}

/// Steps must not overlap and at most one may be open at each end.
fn check_steps(steps: &[Step]) -> Result<(), ScalingError> {
    let mut sorted: Vec<&Step> = steps.iter().collect();
    sorted.sort_by(|a, b| {
        a.lower
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&b.lower.unwrap_or(f64::NEG_INFINITY))
    });
    for s in &sorted {
        if let (Some(l), Some(u)) = (s.lower, s.upper)
            && l >= u
        {
            return Err(invalid(
                "Step adjustment's lower bound must be less than its upper bound.",
            ));
        }
    }
    for w in sorted.windows(2) {
        if w[0].upper.is_none_or(|u| w[1].lower.is_none_or(|l| l < u)) {
            return Err(invalid("Step adjustments must not overlap."));
        }
    }
    Ok(())
}

/// PutScalingPolicy: stores the policy (a new one gets its ARN; an existing one keeps it),
/// giving it.
pub fn put_policy(
    conn: &Connection,
    account: &str,
    p: &PolicyInput,
) -> Result<Policy, ScalingError> {
    let config = check_input(p)?;
    group(conn, &p.group)?;
    let existing = db::named_by_name(conn, Named::Policy, &p.group, &p.name)?.map(Policy::from_row);
    if let Some(e) = &existing
        && e.config.policy_type != config.policy_type
    {
        return Err(invalid("A policy's type cannot be changed."));
    }
    let policy = Policy {
        arn: existing.as_ref().map_or_else(
            || policy_arn(account, &crate::sns::new_uuid(), &p.group, &p.name),
            |e| e.arn.clone(),
        ),
        group: p.group.clone(),
        name: p.name.clone(),
        config: PolicyConfig {
            alarms: existing.map(|e| e.config.alarms).unwrap_or_default(),
            ..config
        },
    };
    store(conn, &policy)?;
    Ok(policy)
}

/// Writes a policy back.
pub fn store(conn: &Connection, p: &Policy) -> Result<(), ScalingError> {
    db::put_named(conn, Named::Policy, &p.row())?;
    Ok(())
}

/// The policies of a group (or all), restricted to `names` and `types` when given.
pub fn policies(
    conn: &Connection,
    group_name: Option<&str>,
    names: &[String],
    types: &[String],
) -> Result<Vec<Policy>, ScalingError> {
    if let Some(g) = group_name {
        group(conn, g)?;
    }
    Ok(db::named_rows(conn, Named::Policy, group_name)?
        .into_iter()
        .map(Policy::from_row)
        .filter(|p| names.is_empty() || names.contains(&p.name) || names.contains(&p.arn))
        .filter(|p| types.is_empty() || types.contains(&p.config.policy_type))
        .collect())
}

/// What executing a policy asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution<'a> {
    /// Who: a user or an alarm.
    pub by: DesiredChange<'a>,
    /// The metric's value (step scaling; target tracking's current value).
    pub metric_value: Option<f64>,
    /// The alarm's threshold (step scaling).
    pub breach_threshold: Option<f64>,
    /// Whether the cooldown holds it back.
    pub honor_cooldown: bool,
    /// Whether the alarm is a target-tracking low alarm (scale in only).
    pub scale_in_only: bool,
}

/// What an execution did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executed {
    /// The desired capacity changed from the first to the second.
    Changed(i32, i32),
    /// Nothing to change (already there, or within bounds).
    Unchanged,
    /// The cooldown (or a scaling activity) held it back.
    CoolingDown,
}

/// The capacity `p` asks for from group `g`'s desired capacity.
fn wanted(p: &Policy, g: &Group, e: &Execution<'_>) -> Result<Option<i32>, ScalingError> {
    let c = &p.config;
    let current = g.config.desired;
    Ok(match c.policy_type.as_str() {
        "SimpleScaling" => c.scaling_adjustment.map(|adj| {
            capacity::adjusted(
                current,
                c.adjustment_type
                    .unwrap_or(AdjustmentType::ChangeInCapacity),
                adj,
                c.min_adjustment_magnitude,
            )
        }),
        "StepScaling" => {
            let (Some(v), Some(t)) = (e.metric_value, e.breach_threshold) else {
                return Err(invalid(
                    "MetricValue and BreachThreshold are required for a StepScaling policy.",
                ));
            };
            capacity::step_adjustment(&c.steps, v, t).map(|adj| {
                capacity::adjusted(
                    current,
                    c.adjustment_type
                        .unwrap_or(AdjustmentType::ChangeInCapacity),
                    adj,
                    c.min_adjustment_magnitude,
                )
            })
        }
        "TargetTrackingScaling" => {
            let (Some(t), Some(v)) = (&c.target, e.metric_value) else {
                return Ok(None);
            };
            let n = capacity::target_tracking(current, v, t.target_value);
            let out = n > current && !e.scale_in_only;
            let into = n < current && e.scale_in_only && !t.disable_scale_in;
            (out || into).then_some(n)
        }
        _ => {
            return Err(invalid(format!(
                "A {} policy cannot be executed.",
                c.policy_type
            )));
        }
    })
}

/// Executes policy `p` at `now_ms`.
pub fn execute(
    conn: &Connection,
    p: &mut Policy,
    e: &Execution<'_>,
    now_ms: i64,
) -> Result<Executed, ScalingError> {
    let mut g = group(conn, &p.group)?;
    if !p.config.enabled {
        return Ok(Executed::Unchanged);
    }
    let Some(want) = wanted(p, &g, e)? else {
        return Ok(Executed::Unchanged);
    };
    let to = capacity::clamp(want, g.config.min, g.config.max);
    let from = g.config.desired;
    if to == from {
        return Ok(Executed::Unchanged);
    }
    if held_back(conn, p, &g, to > from, e.honor_cooldown, now_ms)? {
        return Ok(Executed::CoolingDown);
    }
    change_desired(conn, &mut g, to, &e.by, now_ms)?;
    if let Some(cd) = p
        .config
        .cooldown
        .filter(|_| p.config.policy_type == "SimpleScaling")
    {
        g.config.cooldown_until_ms = now_ms + i64::from(cd) * 1000;
        db::set_group_config(conn, &g.name, &g.config_text())?;
    }
    if to > from {
        p.config.last_scale_out_ms = now_ms;
        store(conn, p)?;
    }
    Ok(Executed::Changed(from, to))
}

/// Whether the cooldown holds an execution back: simple scaling (and `HonorCooldown`) waits
/// for the group's cooldown; step and target tracking use no cooldown, as on AWS: they scale
/// out again once the last scale out's instances warmed up, and scale in once no scaling
/// activity is under way.
fn held_back(
    conn: &Connection,
    p: &Policy,
    g: &Group,
    out: bool,
    honor_cooldown: bool,
    now_ms: i64,
) -> Result<bool, ScalingError> {
    if !honor_cooldown {
        return Ok(false);
    }
    if p.config.policy_type == "SimpleScaling" {
        return cooling_down(conn, g, now_ms);
    }
    if !out {
        return Ok(db::open_activities(conn)?
            .iter()
            .any(|a| a.group_name == g.name));
    }
    let warmup = p
        .config
        .estimated_instance_warmup
        .or(g.config.default_instance_warmup)
        .unwrap_or(g.config.default_cooldown);
    Ok(now_ms < p.config.last_scale_out_ms + i64::from(warmup) * 1000)
}

/// DeletePolicy: the policy and the alarms it owns.
pub fn delete_policy(
    conn: &Connection,
    group_name: Option<&str>,
    name: &str,
) -> Result<Policy, ScalingError> {
    let p = policy_named(conn, group_name, name)?;
    db::delete_named(conn, Named::Policy, &p.group, &p.name)?;
    Ok(p)
}
