//! A scaling policy's settings as stored (target tracking, customized metrics, predictive
//! scaling) and the checks of those that PutScalingPolicy takes.

use serde::{Deserialize, Serialize};

use super::capacity::{AdjustmentType, Step};
use super::checks::{ScalingError, invalid};

/// Target tracking's metric and target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetTracking {
    /// `ASGAverageCPUUtilization`, `ASGAverageNetworkIn`, `ASGAverageNetworkOut`,
    /// `ALBRequestCountPerTarget` (or none with a customized metric).
    pub predefined: Option<String>,
    /// `ResourceLabel` (`app/LB/ID/targetgroup/TG/ID`).
    pub resource_label: Option<String>,
    /// A customized metric.
    pub customized: Option<CustomMetric>,
    /// `TargetValue`.
    pub target_value: f64,
    /// `DisableScaleIn`.
    pub disable_scale_in: bool,
}

/// A `CustomizedMetricSpecification`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomMetric {
    /// The namespace.
    pub namespace: String,
    /// The metric.
    pub metric_name: String,
    /// Its dimensions.
    pub dimensions: Vec<(String, String)>,
    /// `Average`, `Sum`, ...
    pub statistic: String,
    /// The unit.
    pub unit: Option<String>,
}

/// A policy's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyConfig {
    /// `SimpleScaling`, `StepScaling`, `TargetTrackingScaling` or `PredictiveScaling`.
    pub policy_type: String,
    /// Simple and step scaling.
    pub adjustment_type: Option<AdjustmentType>,
    /// Simple scaling's adjustment.
    pub scaling_adjustment: Option<i32>,
    /// `MinAdjustmentMagnitude`.
    pub min_adjustment_magnitude: Option<i32>,
    /// Simple scaling's `Cooldown`.
    pub cooldown: Option<i32>,
    /// Step scaling's `MetricAggregationType`.
    pub metric_aggregation_type: Option<String>,
    /// Step scaling's steps.
    pub steps: Vec<Step>,
    /// `EstimatedInstanceWarmup`.
    pub estimated_instance_warmup: Option<i32>,
    /// Target tracking.
    pub target: Option<TargetTracking>,
    /// Predictive scaling.
    pub predictive: Option<PredictiveConfig>,
    /// Whether it acts.
    pub enabled: bool,
    /// The alarms it owns (target tracking), by name.
    pub alarms: Vec<String>,
    /// When it last scaled out (milliseconds since the epoch).
    pub last_scale_out_ms: i64,
}

/// A `PredictiveScalingConfiguration` (one metric specification).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PredictiveConfig {
    /// `TargetValue`.
    pub target_value: f64,
    /// `PredefinedMetricPairSpecification`'s type.
    pub metric_pair: Option<String>,
    /// `PredefinedLoadMetricSpecification`'s type.
    pub load_metric: Option<String>,
    /// `PredefinedScalingMetricSpecification`'s type.
    pub scaling_metric: Option<String>,
    /// A customized load metric.
    pub custom_load: Option<CustomMetric>,
    /// `ForecastOnly` or `ForecastAndScale`.
    pub mode: String,
    /// `SchedulingBufferTime`, seconds.
    pub buffer_time: i32,
    /// `HonorMaxCapacity` or `IncreaseMaxCapacity`.
    pub breach: String,
    /// `MaxCapacityBuffer`, percent.
    pub max_capacity_buffer: Option<i32>,
}

/// Checks a target tracking configuration.
pub fn check_target_tracking(t: &TargetTracking) -> Result<(), ScalingError> {
    if !t.target_value.is_finite() || t.target_value <= 0.0 {
        return Err(invalid("TargetValue must be a positive number."));
    }
    match (&t.predefined, &t.customized) {
        (Some(_), Some(_)) | (None, None) => Err(invalid(
            "Exactly one of PredefinedMetricSpecification and CustomizedMetricSpecification must be given.",
        )),
        (Some(p), None) => match p.as_str() {
            "ASGAverageCPUUtilization" | "ASGAverageNetworkIn" | "ASGAverageNetworkOut" => Ok(()),
            "ALBRequestCountPerTarget" => match &t.resource_label {
                Some(l) if target_group_dimension(l).is_some() => Ok(()),
                _ => Err(invalid(
                    "ResourceLabel is required for ALBRequestCountPerTarget: app/<load-balancer-name>/<id>/targetgroup/<target-group-name>/<id>",
                )),
            },
            other => Err(invalid(format!("Invalid predefined metric type: {other}"))),
        },
        (None, Some(c)) => {
            if c.namespace.is_empty() || c.metric_name.is_empty() || c.statistic.is_empty() {
                return Err(invalid(
                    "A CustomizedMetricSpecification needs Namespace, MetricName and Statistic.",
                ));
            }
            Ok(())
        }
    }
}

/// The `TargetGroup` dimension (`targetgroup/NAME/ID`) of a resource label.
pub fn target_group_dimension(label: &str) -> Option<String> {
    let i = label.find("/targetgroup/")?;
    let tg = &label[i + 1..];
    (label.starts_with("app/") && tg.split('/').count() == 3).then(|| tg.to_string())
}

/// Checks a predictive configuration.
pub fn check_predictive(c: &PredictiveConfig) -> Result<(), ScalingError> {
    if !c.target_value.is_finite() || c.target_value <= 0.0 {
        return Err(invalid("TargetValue must be a positive number."));
    }
    if !matches!(c.mode.as_str(), "ForecastOnly" | "ForecastAndScale") {
        return Err(invalid(format!("Invalid Mode: {}", c.mode)));
    }
    if !(0..=3600).contains(&c.buffer_time) {
        return Err(invalid(
            "SchedulingBufferTime must be between 0 and 3600 seconds.",
        ));
    }
    if !matches!(
        c.breach.as_str(),
        "HonorMaxCapacity" | "IncreaseMaxCapacity"
    ) {
        return Err(invalid(format!(
            "Invalid MaxCapacityBreachBehavior: {}",
            c.breach
        )));
    }
    if c.max_capacity_buffer
        .is_some_and(|b| !(0..=100).contains(&b))
    {
        return Err(invalid("MaxCapacityBuffer must be between 0 and 100."));
    }
    if c.metric_pair.is_none() && c.load_metric.is_none() && c.custom_load.is_none() {
        return Err(invalid(
            "A metric specification needs a metric pair, a load metric or a customized load metric.",
        ));
    }
    let known = [
        "ASGCPUUtilization",
        "ASGNetworkIn",
        "ASGNetworkOut",
        "ALBRequestCount",
    ];
    if let Some(p) = c.metric_pair.as_deref().filter(|p| !known.contains(p)) {
        return Err(invalid(format!("Invalid predefined metric pair type: {p}")));
    }
    Ok(())
}
