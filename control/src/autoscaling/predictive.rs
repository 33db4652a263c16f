//! Predictive scaling: a `PredictiveScaling` policy's configuration, the load and capacity
//! forecast of its group (`forecast.rs` over the load metric's hourly history, read from
//! CloudWatch's store), GetPredictiveScalingForecast, and in `ForecastAndScale` the minimum
//! capacity raised ahead of the forecast by the scheduling buffer time (never lowered by
//! it: predictive scaling does not scale in).
//!
//! The load metric: a customized one (`CustomizedLoadMetricSpecification` with one
//! `MetricStat`), summed or averaged per hour by its statistic; or, for the predefined pairs
//! (`ASGCPUUtilization`, `ASGNetworkIn`, `ASGNetworkOut`) and loads (`ASGTotalCPUUtilization`,
//! ...), the group's `AWS/EC2` average per hour times its desired capacity (the total load
//! the group carried, as near as the store's averages tell it).

use state::autoscaling::{self as db, Named};
use state::metrics::{MetricKey, Resolution};

use super::activities::DesiredChange;
use super::checks::{ScalingError, invalid};
use super::forecast::{LoadForecast, capacity_forecast, forecast_load};
use super::groups::change_desired;
use super::model::Group;
use super::policies::Policy;
pub use super::policy_config::PredictiveConfig;
use crate::Plane;

/// How much history the forecast learns from.
pub const HISTORY_SECONDS: i64 = 14 * 86_400;
/// How many hours a forecast covers at most (GetPredictiveScalingForecast).
pub const MAX_HOURS: usize = 56;

/// The `AWS/EC2` metric a predefined pair or load names.
fn predefined_metric(c: &PredictiveConfig) -> &'static str {
    let name = c
        .metric_pair
        .as_deref()
        .or(c.load_metric.as_deref())
        .unwrap_or("");
    if name.contains("NetworkIn") {
        "NetworkIn"
    } else if name.contains("NetworkOut") {
        "NetworkOut"
    } else {
        "CPUUtilization"
    }
}

/// The hourly load history of group `g` for `c`, up to `now` (seconds).
fn history(plane: &Plane, g: &Group, c: &PredictiveConfig, now: i64) -> Vec<(i64, f64)> {
    let (key, stat, scale) = match &c.custom_load {
        Some(m) => (
            MetricKey::new(
                m.namespace.clone(),
                m.metric_name.clone(),
                m.dimensions.clone(),
            ),
            m.statistic.clone(),
            1.0,
        ),
        None => (
            MetricKey::new(
                "AWS/EC2",
                predefined_metric(c),
                vec![("AutoScalingGroupName".into(), g.name.clone())],
            ),
            "Average".to_string(),
            f64::from(g.config.desired.max(1)),
        ),
    };
    let points = plane
        .metrics
        .points(
            &key,
            Resolution::Minute,
            now - HISTORY_SECONDS,
            now + 1,
            None,
        )
        .unwrap_or_default();
    let mut hours: std::collections::BTreeMap<i64, (f64, f64)> = Default::default();
    for p in points {
        let e = hours.entry(p.time.div_euclid(3600) * 3600).or_default();
        e.0 += p.aggregate.sum;
        e.1 += p.aggregate.count;
    }
    hours
        .into_iter()
        .map(|(h, (sum, count))| {
            let v = if stat == "Sum" {
                sum
            } else {
                sum / count.max(1.0)
            };
            (h, v * scale)
        })
        .collect()
}

/// A group's forecast: the load and the capacity it needs, hourly from the first hour at or
/// after `start` (seconds), `hours` long.
pub fn forecast(
    plane: &Plane,
    g: &Group,
    c: &PredictiveConfig,
    start: i64,
    hours: usize,
) -> (LoadForecast, Vec<i32>) {
    let now = super::model::now_ms() / 1000;
    let load = forecast_load(&history(plane, g, c, now), start, hours.clamp(1, MAX_HOURS));
    let max = if c.breach == "IncreaseMaxCapacity" {
        i32::MAX / 2
    } else {
        g.config.max
    };
    let capacity = capacity_forecast(&load, c.target_value, g.config.min, max);
    (load, capacity)
}

/// In `ForecastAndScale`, raises each group's capacity to what the forecast asks for at
/// now + the buffer time (once a minute per policy, when that is more than it has).
pub fn apply(plane: &Plane, now_ms: i64) -> rusqlite::Result<()> {
    if (now_ms / 1000) % 60 > 5 {
        return Ok(());
    }
    let rows = db::named_rows(&plane.db.lock(), Named::Policy, None)?;
    for p in rows.into_iter().map(Policy::from_row) {
        let Some(c) = p
            .config
            .predictive
            .clone()
            .filter(|c| c.mode == "ForecastAndScale")
        else {
            continue;
        };
        if !p.config.enabled {
            continue;
        }
        let Some(g) = db::group_by_name(&plane.db.lock(), &p.group)?.map(Group::from_row) else {
            continue;
        };
        let at = now_ms / 1000 + i64::from(c.buffer_time);
        let hour_start = at.div_euclid(3600) * 3600;
        let (_, capacity) = forecast(plane, &g, &c, hour_start, 1);
        let Some(&want) = capacity.first() else {
            continue;
        };
        if want <= g.config.desired || g.config.forecast_min == Some(want) {
            continue;
        }
        let r = plane.asg_write(|tx| {
            let Some(mut g) = db::group_by_name(tx, &p.group)?.map(Group::from_row) else {
                return Ok(());
            };
            if want > g.config.max {
                let buffer = c.max_capacity_buffer.unwrap_or(0);
                g.config.max = want + want * buffer / 100;
            }
            g.config.forecast_min = Some(want);
            db::set_group_config(tx, &g.name, &g.config_text())?;
            change_desired(tx, &mut g, want, &DesiredChange::Forecast(&p.name), now_ms).map(drop)
        });
        if let Err(e) = r {
            tracing::warn!(policy = %p.name, error = %host::error_chain(&e), "predictive scaling failed");
        }
    }
    Ok(())
}

/// GetPredictiveScalingForecast: the forecast of group `group`'s policy `policy` from
/// `start` to `end` (seconds).
pub fn get_forecast(
    plane: &Plane,
    group: &str,
    policy: &str,
    start: i64,
    end: i64,
) -> Result<(Policy, LoadForecast, Vec<i32>), ScalingError> {
    let (g, p) = {
        let conn = plane.db.lock();
        (
            super::groups::group(&conn, group)?,
            super::policies::policy(&conn, group, policy)?,
        )
    };
    let c = p.config.predictive.clone().ok_or_else(|| {
        invalid(format!(
            "Policy {policy} is not a PredictiveScaling policy."
        ))
    })?;
    if end <= start {
        return Err(invalid("EndTime must be after StartTime."));
    }
    let hours = ((end - start + 3599) / 3600) as usize;
    let (load, capacity) = forecast(plane, &g, &c, start, hours);
    Ok((p, load, capacity))
}
