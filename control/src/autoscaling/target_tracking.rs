//! Target tracking: the metric a policy tracks and the two CloudWatch alarms it creates and
//! owns, as AWS names them (`TargetTracking-<group>-AlarmHigh-<uuid>`: above the target
//! for 3 periods scales out; `…-AlarmLow-…`: below 90 % of it for 15 periods scales in),
//! whose actions name the policy's ARN. They are replaced when the policy is put again and
//! deleted with it (and with its group).

use state::autoscaling::{self as db, Named};

use super::checks::{ScalingError, invalid};
use super::policies::{Policy, PolicyInput, TargetTracking, put_policy, store};
use super::policy_config::target_group_dimension;
use crate::Plane;
use crate::monitoring::alarms::put::{PutMetricAlarm, put_metric_alarm};

/// AlarmHigh's evaluation periods.
pub const HIGH_PERIODS: i32 = 3;
/// AlarmLow's evaluation periods.
pub const LOW_PERIODS: i32 = 15;
/// AlarmLow's threshold as a share of the target.
pub const LOW_SHARE: f64 = 0.9;

/// The metric a target tracking policy watches.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    /// The namespace.
    pub namespace: String,
    /// The metric's name.
    pub name: String,
    /// Its dimensions.
    pub dimensions: Vec<(String, String)>,
    /// The statistic.
    pub statistic: String,
    /// The unit.
    pub unit: Option<String>,
}

/// The metric group `group`'s policy tracks.
pub fn tracked(group: &str, t: &TargetTracking) -> Tracked {
    let asg = |name: &str| Tracked {
        namespace: "AWS/EC2".into(),
        name: name.into(),
        dimensions: vec![("AutoScalingGroupName".into(), group.into())],
        statistic: "Average".into(),
        unit: None,
    };
    match (t.predefined.as_deref(), &t.customized) {
        (Some("ASGAverageNetworkIn"), _) => asg("NetworkIn"),
        (Some("ASGAverageNetworkOut"), _) => asg("NetworkOut"),
        (Some("ALBRequestCountPerTarget"), _) => Tracked {
            namespace: "AWS/ApplicationELB".into(),
            name: "RequestCountPerTarget".into(),
            dimensions: vec![(
                "TargetGroup".into(),
                t.resource_label
                    .as_deref()
                    .and_then(target_group_dimension)
                    .unwrap_or_default(),
            )],
            statistic: "Sum".into(),
            unit: None,
        },
        (_, Some(c)) => Tracked {
            namespace: c.namespace.clone(),
            name: c.metric_name.clone(),
            dimensions: c.dimensions.clone(),
            statistic: c.statistic.clone(),
            unit: c.unit.clone(),
        },
        _ => asg("CPUUtilization"),
    }
}

/// The alarm `p` would have on `side` (`High` or `Low`), named with `uuid`.
fn alarm(p: &Policy, t: &TargetTracking, side: &str, uuid: &str, period: i32) -> PutMetricAlarm {
    let m = tracked(&p.group, t);
    let high = side == "High";
    PutMetricAlarm {
        name: format!("TargetTracking-{}-Alarm{side}-{uuid}", p.group),
        description: Some(format!(
            "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {}.",
            p.arn
        )),
        actions_enabled: Some(true),
        alarm_actions: vec![p.arn.clone()],
        namespace: Some(m.namespace),
        metric_name: Some(m.name),
        dimensions: m.dimensions,
        statistic: Some(m.statistic),
        unit: m.unit,
        period: Some(period),
        evaluation_periods: Some(if high { HIGH_PERIODS } else { LOW_PERIODS }),
        datapoints_to_alarm: Some(if high { HIGH_PERIODS } else { LOW_PERIODS }),
        threshold: Some(if high {
            t.target_value
        } else {
            t.target_value * LOW_SHARE
        }),
        comparison_operator: Some(
            if high {
                "GreaterThanThreshold"
            } else {
                "LessThanThreshold"
            }
            .into(),
        ),
        ..Default::default()
    }
}

/// Deletes alarms by name (those already gone are fine).
fn delete_alarms(plane: &Plane, names: &[String]) {
    if names.is_empty() {
        return;
    }
    if let Err(e) = plane.metrics.delete_alarms(names) {
        tracing::warn!(error = %host::error_chain(&e), "cannot delete a target tracking policy's alarms");
    }
}

/// The alarms every policy of group `group` owns.
fn group_alarm_names(conn: &rusqlite::Connection, group: &str) -> Vec<String> {
    db::named_rows(conn, Named::Policy, Some(group))
        .unwrap_or_default()
        .into_iter()
        .map(Policy::from_row)
        .flat_map(|p| p.config.alarms)
        .collect()
}

/// Deletes the alarms every policy of group `group` owns (the group is being deleted).
pub fn delete_group_alarms(plane: &Plane, conn: &rusqlite::Connection, group: &str) {
    delete_alarms(plane, &group_alarm_names(conn, group));
}

impl Plane {
    /// PutScalingPolicy: the policy stored, then a target tracking policy's alarms put
    /// (replacing those it had).
    pub fn put_scaling_policy(&self, input: &PolicyInput) -> Result<Policy, ScalingError> {
        let mut p = self.asg_write(|tx| put_policy(tx, &self.account_id, input))?;
        let Some(t) = p.config.target.clone() else {
            return Ok(p);
        };
        let old = std::mem::take(&mut p.config.alarms);
        delete_alarms(self, &old);
        let uuid = crate::sns::new_uuid();
        let period = self.autoscaling.alarm_period;
        let mut sides = vec!["High"];
        if !t.disable_scale_in {
            sides.push("Low");
        }
        let now = super::model::now_ms();
        for side in sides {
            let a = alarm(&p, &t, side, &uuid, period);
            put_metric_alarm(&self.metrics, &a, now)
                .map_err(|e| invalid(format!("Cannot create the alarm {}: {e}", a.name)))?;
            p.config.alarms.push(a.name);
        }
        self.asg_write(|tx| store(tx, &p))?;
        Ok(p)
    }

    /// DeleteAutoScalingGroup: a group without instances goes at once with its policies and
    /// the alarms they own; with `force`, the reconciler terminates its instances first.
    pub fn delete_auto_scaling_group(&self, name: &str, force: bool) -> Result<(), ScalingError> {
        let (gone, alarms) = self.asg_write(|tx| {
            let alarms = group_alarm_names(tx, name);
            super::groups::delete_group(tx, name, force)?;
            Ok::<_, ScalingError>((db::group_by_name(tx, name)?.is_none(), alarms))
        })?;
        if gone {
            delete_alarms(self, &alarms);
        }
        Ok(())
    }

    /// DeletePolicy: the policy and the alarms it owns.
    pub fn delete_scaling_policy(
        &self,
        group: Option<&str>,
        name: &str,
    ) -> Result<(), ScalingError> {
        let p = self.asg_write(|tx| super::policies::delete_policy(tx, group, name))?;
        delete_alarms(self, &p.config.alarms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoscaling::policy_config::check_target_tracking as check;

    #[test]
    fn predefined_metrics_map_to_the_group_average_or_the_target_group() {
        let t = TargetTracking {
            predefined: Some("ASGAverageCPUUtilization".into()),
            target_value: 50.0,
            ..Default::default()
        };
        check(&t).unwrap();
        let m = tracked("web", &t);
        assert_eq!(
            (m.namespace.as_str(), m.name.as_str(), m.statistic.as_str()),
            ("AWS/EC2", "CPUUtilization", "Average")
        );
        assert_eq!(
            m.dimensions,
            vec![("AutoScalingGroupName".to_string(), "web".to_string())]
        );
        let alb = TargetTracking {
            predefined: Some("ALBRequestCountPerTarget".into()),
            resource_label: Some("app/lb/0123/targetgroup/tg/4567".into()),
            target_value: 100.0,
            ..Default::default()
        };
        check(&alb).unwrap();
        assert_eq!(
            tracked("web", &alb).dimensions,
            vec![("TargetGroup".to_string(), "targetgroup/tg/4567".to_string())]
        );
        let unlabelled = TargetTracking {
            resource_label: None,
            ..alb
        };
        assert!(check(&unlabelled).is_err());
        assert!(
            check(&TargetTracking {
                target_value: 0.0,
                ..t
            })
            .is_err()
        );
    }
}
