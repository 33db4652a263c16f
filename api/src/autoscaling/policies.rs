//! Policies (PutScalingPolicy, ExecutePolicy, DescribePolicies, DeletePolicy,
//! GetPredictiveScalingForecast) and scheduled actions (Put, BatchPut, Describe, Delete) as
//! `control::autoscaling`'s commands.

use control::autoscaling::activities::DesiredChange;
use control::autoscaling::capacity::Step;
use control::autoscaling::checks::{ScalingError, invalid};
use control::autoscaling::model::now_ms;
use control::autoscaling::policies::{
    self, CustomMetric, Execution, Policy, PolicyInput, TargetTracking,
};
use control::autoscaling::predictive::{self, PredictiveConfig};
use control::autoscaling::scheduled::{self, Scheduled, ScheduledConfig};
use serde_json::Value;
use shapes::autoscaling::{
    Alarm, BatchPutScheduledUpdateGroupActionAnswer, CapacityForecast,
    CustomizedMetricSpecification, FailedScheduledUpdateGroupActionRequest,
    GetPredictiveScalingForecastAnswer, LoadForecast, Metric, MetricDataQuery, MetricDimension,
    MetricStat, MetricStatistic, MetricType, PoliciesType, PolicyARNType, PredefinedLoadMetricType,
    PredefinedMetricPairType, PredefinedMetricSpecification, PredefinedScalingMetricType,
    PredictiveScalingConfiguration, PredictiveScalingCustomizedLoadMetric,
    PredictiveScalingMaxCapacityBreachBehavior, PredictiveScalingMetricSpecification,
    PredictiveScalingMode, PredictiveScalingPredefinedLoadMetric,
    PredictiveScalingPredefinedMetricPair, PredictiveScalingPredefinedScalingMetric, ScalingPolicy,
    ScheduledActionsType, ScheduledUpdateGroupAction, StepAdjustment, TargetTrackingConfiguration,
    ops,
};

use super::{page, refused, time};
use crate::errors::ApiError;
use crate::operation::{input, output};
use crate::{Call, Reply};

fn target(t: TargetTrackingConfiguration) -> TargetTracking {
    TargetTracking {
        predefined: t
            .predefined_metric_specification
            .as_ref()
            .map(|p| p.predefined_metric_type.as_str().to_string()),
        resource_label: t
            .predefined_metric_specification
            .and_then(|p| p.resource_label),
        customized: t.customized_metric_specification.map(|c| CustomMetric {
            namespace: c.namespace.unwrap_or_default(),
            metric_name: c.metric_name.unwrap_or_default(),
            dimensions: c
                .dimensions
                .unwrap_or_default()
                .into_iter()
                .map(|d| (d.name, d.value))
                .collect(),
            statistic: c
                .statistic
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            unit: c.unit,
        }),
        target_value: t.target_value,
        disable_scale_in: t.disable_scale_in.unwrap_or(false),
    }
}

fn target_view(t: &TargetTracking) -> TargetTrackingConfiguration {
    TargetTrackingConfiguration {
        predefined_metric_specification: t.predefined.as_deref().and_then(|p| {
            Some(PredefinedMetricSpecification {
                predefined_metric_type: MetricType::from_wire(p)?,
                resource_label: t.resource_label.clone(),
            })
        }),
        customized_metric_specification: t.customized.as_ref().map(|c| {
            CustomizedMetricSpecification {
                metric_name: Some(c.metric_name.clone()),
                namespace: Some(c.namespace.clone()),
                dimensions: Some(
                    c.dimensions
                        .iter()
                        .map(|(n, v)| MetricDimension {
                            name: n.clone(),
                            value: v.clone(),
                        })
                        .collect(),
                ),
                statistic: MetricStatistic::from_wire(&c.statistic),
                unit: c.unit.clone(),
                ..Default::default()
            }
        }),
        target_value: t.target_value,
        disable_scale_in: Some(t.disable_scale_in),
    }
}

fn predictive_config(p: &PredictiveScalingConfiguration) -> Result<PredictiveConfig, ApiError> {
    let [m] = &p.metric_specifications[..] else {
        return Err(refused(&invalid(
            "Exactly one MetricSpecification is served.",
        )));
    };
    let custom_load = match &m.customized_load_metric_specification {
        None => None,
        Some(c) => {
            let stat = c
                .metric_data_queries
                .iter()
                .find_map(|q| q.metric_stat.clone())
                .ok_or_else(|| {
                    refused(&invalid(
                        "A customized load metric needs a MetricStat query.",
                    ))
                })?;
            Some(CustomMetric {
                namespace: stat.metric.namespace,
                metric_name: stat.metric.metric_name,
                dimensions: stat
                    .metric
                    .dimensions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|d| (d.name, d.value))
                    .collect(),
                statistic: stat.stat,
                unit: stat.unit,
            })
        }
    };
    Ok(PredictiveConfig {
        target_value: m.target_value,
        metric_pair: m
            .predefined_metric_pair_specification
            .as_ref()
            .map(|x| x.predefined_metric_type.as_str().to_string()),
        load_metric: m
            .predefined_load_metric_specification
            .as_ref()
            .map(|x| x.predefined_metric_type.as_str().to_string()),
        scaling_metric: m
            .predefined_scaling_metric_specification
            .as_ref()
            .map(|x| x.predefined_metric_type.as_str().to_string()),
        custom_load,
        mode: p.mode.map_or("ForecastOnly", |m| m.as_str()).to_string(),
        buffer_time: p.scheduling_buffer_time.unwrap_or(0),
        breach: p
            .max_capacity_breach_behavior
            .map_or("HonorMaxCapacity", |b| b.as_str())
            .to_string(),
        max_capacity_buffer: p.max_capacity_buffer,
    })
}

fn metric_query(id: &str, m: &CustomMetric) -> MetricDataQuery {
    MetricDataQuery {
        id: id.to_string(),
        metric_stat: Some(MetricStat {
            metric: Metric {
                namespace: m.namespace.clone(),
                metric_name: m.metric_name.clone(),
                dimensions: Some(
                    m.dimensions
                        .iter()
                        .map(|(n, v)| MetricDimension {
                            name: n.clone(),
                            value: v.clone(),
                        })
                        .collect(),
                ),
            },
            stat: m.statistic.clone(),
            unit: m.unit.clone(),
        }),
        return_data: Some(true),
        ..Default::default()
    }
}

fn predictive_view(p: &PredictiveConfig) -> PredictiveScalingConfiguration {
    let spec = PredictiveScalingMetricSpecification {
        target_value: p.target_value,
        predefined_metric_pair_specification: p.metric_pair.as_deref().and_then(|t| {
            Some(PredictiveScalingPredefinedMetricPair {
                predefined_metric_type: PredefinedMetricPairType::from_wire(t)?,
                resource_label: None,
            })
        }),
        predefined_load_metric_specification: p.load_metric.as_deref().and_then(|t| {
            Some(PredictiveScalingPredefinedLoadMetric {
                predefined_metric_type: PredefinedLoadMetricType::from_wire(t)?,
                resource_label: None,
            })
        }),
        predefined_scaling_metric_specification: p.scaling_metric.as_deref().and_then(|t| {
            Some(PredictiveScalingPredefinedScalingMetric {
                predefined_metric_type: PredefinedScalingMetricType::from_wire(t)?,
                resource_label: None,
            })
        }),
        customized_load_metric_specification: p.custom_load.as_ref().map(|m| {
            PredictiveScalingCustomizedLoadMetric {
                metric_data_queries: vec![metric_query("load", m)],
            }
        }),
        ..Default::default()
    };
    PredictiveScalingConfiguration {
        metric_specifications: vec![spec],
        mode: PredictiveScalingMode::from_wire(&p.mode),
        scheduling_buffer_time: Some(p.buffer_time),
        max_capacity_breach_behavior: PredictiveScalingMaxCapacityBreachBehavior::from_wire(
            &p.breach,
        ),
        max_capacity_buffer: p.max_capacity_buffer,
    }
}

/// The alarms that name policy `p` (its own, and any other whose actions name it).
fn alarms_of(c: &Call<'_>, p: &Policy) -> Vec<Alarm> {
    let filter = state::metrics::AlarmFilter {
        action_prefix: Some(p.arn.clone()),
        ..Default::default()
    };
    let mut names: Vec<String> =
        c.st.plane
            .metrics
            .alarms(&filter, None, 100)
            .map(|(rows, _)| rows.into_iter().map(|r| r.name).collect())
            .unwrap_or_default();
    for a in &p.config.alarms {
        if !names.contains(a) {
            names.push(a.clone());
        }
    }
    names
        .into_iter()
        .map(|n| Alarm {
            alarm_arn: Some(control::monitoring::alarms::config::alarm_arn(
                &c.st.account_id,
                &n,
            )),
            alarm_name: Some(n),
        })
        .collect()
}

/// PutScalingPolicy.
pub(super) fn put_policy(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::PutScalingPolicy>(value)?;
    let predictive = match &r.predictive_scaling_configuration {
        Some(p) => Some(predictive_config(p)?),
        None => None,
    };
    let input = PolicyInput {
        group: r.auto_scaling_group_name,
        name: r.policy_name,
        policy_type: r.policy_type,
        adjustment_type: r.adjustment_type,
        scaling_adjustment: r.scaling_adjustment,
        min_adjustment_magnitude: r.min_adjustment_magnitude.or(r.min_adjustment_step),
        cooldown: r.cooldown,
        metric_aggregation_type: r.metric_aggregation_type,
        steps: r
            .step_adjustments
            .unwrap_or_default()
            .into_iter()
            .map(|s| Step {
                lower: s.metric_interval_lower_bound,
                upper: s.metric_interval_upper_bound,
                adjustment: s.scaling_adjustment,
            })
            .collect(),
        estimated_instance_warmup: r.estimated_instance_warmup,
        target: r.target_tracking_configuration.map(target),
        predictive,
        enabled: r.enabled,
    };
    let p =
        c.st.plane
            .put_scaling_policy(&input)
            .map_err(|e| refused(&e))?;
    let alarms = alarms_of(c, &p);
    output::<ops::PutScalingPolicy>(PolicyARNType {
        policy_arn: Some(p.arn),
        alarms: Some(alarms),
    })
}

/// ExecutePolicy.
pub(super) fn execute_policy(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::ExecutePolicy>(value)?;
    c.st.plane
        .asg_write(|tx| {
            let mut p =
                policies::policy_named(tx, r.auto_scaling_group_name.as_deref(), &r.policy_name)?;
            let name = p.name.clone();
            let e = Execution {
                by: DesiredChange::UserPolicy(&name),
                metric_value: r.metric_value,
                breach_threshold: r.breach_threshold,
                honor_cooldown: r.honor_cooldown.unwrap_or(false),
                scale_in_only: false,
            };
            if p.config.policy_type == "TargetTrackingScaling"
                || p.config.policy_type == "PredictiveScaling"
            {
                return Err(invalid(format!(
                    "A {} policy cannot be executed.",
                    p.config.policy_type
                )));
            }
            match policies::execute(tx, &mut p, &e, now_ms())? {
                policies::Executed::CoolingDown => Err(ScalingError::ActivityInProgress(
                    "Scaling activity is in progress or the group is in its cooldown period."
                        .into(),
                )),
                _ => Ok(()),
            }
        })
        .map_err(|e| refused(&e))?;
    output::<ops::ExecutePolicy>(shapes::Empty {})
}

fn policy_view(c: &Call<'_>, p: Policy) -> ScalingPolicy {
    let alarms = alarms_of(c, &p);
    let k = &p.config;
    ScalingPolicy {
        auto_scaling_group_name: Some(p.group.clone()),
        policy_name: Some(p.name.clone()),
        policy_arn: Some(p.arn.clone()),
        policy_type: Some(k.policy_type.clone()),
        adjustment_type: k.adjustment_type.map(|a| a.as_str().to_string()),
        min_adjustment_magnitude: k.min_adjustment_magnitude,
        scaling_adjustment: k.scaling_adjustment,
        cooldown: k.cooldown,
        step_adjustments: (!k.steps.is_empty()).then(|| {
            k.steps
                .iter()
                .map(|s| StepAdjustment {
                    metric_interval_lower_bound: s.lower,
                    metric_interval_upper_bound: s.upper,
                    scaling_adjustment: s.adjustment,
                })
                .collect()
        }),
        metric_aggregation_type: k.metric_aggregation_type.clone(),
        estimated_instance_warmup: k.estimated_instance_warmup,
        alarms: Some(alarms),
        target_tracking_configuration: k.target.as_ref().map(target_view),
        enabled: Some(k.enabled),
        predictive_scaling_configuration: k.predictive.as_ref().map(predictive_view),
        ..Default::default()
    }
}

/// DescribePolicies.
pub(super) fn describe_policies(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DescribePolicies>(value)?;
    let found = policies::policies(
        &c.st.plane.db.lock(),
        r.auto_scaling_group_name.as_deref(),
        &r.policy_names.unwrap_or_default(),
        &r.policy_types.unwrap_or_default(),
    )
    .map_err(|e| refused(&e))?;
    let (found, next) = page(found, r.next_token.as_deref(), r.max_records, 50, 50)?;
    output::<ops::DescribePolicies>(PoliciesType {
        scaling_policies: Some(found.into_iter().map(|p| policy_view(c, p)).collect()),
        next_token: next,
    })
}

/// DeletePolicy.
pub(super) fn delete_policy(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DeletePolicy>(value)?;
    c.st.plane
        .delete_scaling_policy(r.auto_scaling_group_name.as_deref(), &r.policy_name)
        .map_err(|e| refused(&e))?;
    output::<ops::DeletePolicy>(shapes::Empty {})
}

/// GetPredictiveScalingForecast.
pub(super) fn forecast(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::GetPredictiveScalingForecast>(value)?;
    let (p, load, capacity) = predictive::get_forecast(
        &c.st.plane,
        &r.auto_scaling_group_name,
        &r.policy_name,
        r.start_time.timestamp(),
        r.end_time.timestamp(),
    )
    .map_err(|e| refused(&e))?;
    let stamps: Vec<_> = load.timestamps.iter().map(|t| time(t * 1000)).collect();
    let spec = policy_view(c, p)
        .predictive_scaling_configuration
        .and_then(|c| c.metric_specifications.into_iter().next())
        .unwrap_or_default();
    output::<ops::GetPredictiveScalingForecast>(GetPredictiveScalingForecastAnswer {
        load_forecast: vec![LoadForecast {
            timestamps: stamps.clone(),
            values: load.values,
            metric_specification: spec,
        }],
        capacity_forecast: CapacityForecast {
            timestamps: stamps,
            values: capacity.into_iter().map(f64::from).collect(),
        },
        update_time: time(now_ms()),
    })
}

fn scheduled_config(
    time_: Option<chrono::DateTime<chrono::Utc>>,
    start: Option<chrono::DateTime<chrono::Utc>>,
    end: Option<chrono::DateTime<chrono::Utc>>,
    recurrence: Option<String>,
    (min, max, desired): (Option<i32>, Option<i32>, Option<i32>),
    time_zone: Option<String>,
) -> ScheduledConfig {
    ScheduledConfig {
        start_ms: start.or(time_).map(|t| t.timestamp_millis()),
        end_ms: end.map(|t| t.timestamp_millis()),
        recurrence,
        time_zone,
        min,
        max,
        desired,
    }
}

/// PutScheduledUpdateGroupAction.
pub(super) fn put_scheduled(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::PutScheduledUpdateGroupAction>(value)?;
    let cfg = scheduled_config(
        r.time,
        r.start_time,
        r.end_time,
        r.recurrence,
        (r.min_size, r.max_size, r.desired_capacity),
        r.time_zone,
    );
    let plane = &c.st.plane;
    plane
        .asg_write(|tx| {
            scheduled::put_scheduled(
                tx,
                &plane.account_id,
                &r.auto_scaling_group_name,
                &r.scheduled_action_name,
                &cfg,
                now_ms(),
            )
        })
        .map_err(|e| refused(&e))?;
    output::<ops::PutScheduledUpdateGroupAction>(shapes::Empty {})
}

/// BatchPutScheduledUpdateGroupAction: each action on its own; the failures listed.
pub(super) fn batch_put_scheduled(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::BatchPutScheduledUpdateGroupAction>(value)?;
    let plane = &c.st.plane;
    let mut failed = Vec::new();
    for a in r.scheduled_update_group_actions {
        let cfg = scheduled_config(
            None,
            a.start_time,
            a.end_time,
            a.recurrence,
            (a.min_size, a.max_size, a.desired_capacity),
            a.time_zone,
        );
        let done = plane.asg_write(|tx| {
            scheduled::put_scheduled(
                tx,
                &plane.account_id,
                &r.auto_scaling_group_name,
                &a.scheduled_action_name,
                &cfg,
                now_ms(),
            )
        });
        if let Err(e) = done {
            let code = control::Refusal::code(&e).unwrap_or("InternalFailure");
            failed.push(FailedScheduledUpdateGroupActionRequest {
                scheduled_action_name: a.scheduled_action_name,
                error_code: Some(code.to_string()),
                error_message: Some(e.to_string()),
            });
        }
    }
    output::<ops::BatchPutScheduledUpdateGroupAction>(BatchPutScheduledUpdateGroupActionAnswer {
        failed_scheduled_update_group_actions: Some(failed),
    })
}

fn scheduled_view(s: Scheduled) -> ScheduledUpdateGroupAction {
    let k = s.config;
    ScheduledUpdateGroupAction {
        auto_scaling_group_name: Some(s.group),
        scheduled_action_name: Some(s.name),
        scheduled_action_arn: Some(s.arn),
        time: s.next_ms.or(k.start_ms).map(time),
        start_time: s.next_ms.or(k.start_ms).map(time),
        end_time: k.end_ms.map(time),
        recurrence: k.recurrence,
        min_size: k.min,
        max_size: k.max,
        desired_capacity: k.desired,
        time_zone: k.time_zone,
    }
}

/// DescribeScheduledActions.
pub(super) fn describe_scheduled(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DescribeScheduledActions>(value)?;
    let found = scheduled::scheduled(
        &c.st.plane.db.lock(),
        r.auto_scaling_group_name.as_deref(),
        &r.scheduled_action_names.unwrap_or_default(),
    )
    .map_err(|e| refused(&e))?;
    let (found, next) = page(found, r.next_token.as_deref(), r.max_records, 50, 100)?;
    output::<ops::DescribeScheduledActions>(ScheduledActionsType {
        scheduled_update_group_actions: Some(found.into_iter().map(scheduled_view).collect()),
        next_token: next,
    })
}

/// DeleteScheduledAction.
pub(super) fn delete_scheduled(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DeleteScheduledAction>(value)?;
    c.st.plane
        .asg_write(|tx| {
            scheduled::delete_scheduled(tx, &r.auto_scaling_group_name, &r.scheduled_action_name)
        })
        .map_err(|e| refused(&e))?;
    output::<ops::DeleteScheduledAction>(shapes::Empty {})
}
