//! The desired-capacity arithmetic of scaling policies (pure): simple and step scaling's
//! adjustments (`ChangeInCapacity`, `ExactCapacity`, `PercentChangeInCapacity` with
//! `MinAdjustmentMagnitude`), the step a breach falls in, and target tracking's
//! proportional capacity; each result is kept within the group's min and max.

use serde::{Deserialize, Serialize};

/// How a policy's adjustment applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdjustmentType {
    /// Add the adjustment (negative removes).
    ChangeInCapacity,
    /// Set the capacity to the adjustment.
    ExactCapacity,
    /// Add the adjustment's percentage of the current capacity.
    PercentChangeInCapacity,
}

impl AdjustmentType {
    /// The type named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ChangeInCapacity" => Self::ChangeInCapacity,
            "ExactCapacity" => Self::ExactCapacity,
            "PercentChangeInCapacity" => Self::PercentChangeInCapacity,
            _ => return None,
        })
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChangeInCapacity => "ChangeInCapacity",
            Self::ExactCapacity => "ExactCapacity",
            Self::PercentChangeInCapacity => "PercentChangeInCapacity",
        }
    }
}

/// One step of a step scaling policy: bounds relative to the alarm's threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// `MetricIntervalLowerBound` (none: minus infinity).
    pub lower: Option<f64>,
    /// `MetricIntervalUpperBound` (none: infinity).
    pub upper: Option<f64>,
    /// `ScalingAdjustment`.
    pub adjustment: i32,
}

/// The capacity an adjustment of `adjustment` of type `kind` gives from `current`.
pub fn adjusted(
    current: i32,
    kind: AdjustmentType,
    adjustment: i32,
    min_magnitude: Option<i32>,
) -> i32 {
    match kind {
        AdjustmentType::ChangeInCapacity => current.saturating_add(adjustment),
        AdjustmentType::ExactCapacity => adjustment,
        AdjustmentType::PercentChangeInCapacity => {
            let exact = f64::from(current) * f64::from(adjustment) / 100.0;
            // As on AWS: between 0 and 1 counts as 1 (and -1 for negative), beyond that the
            // fraction is dropped.
            let mut delta = if exact > 0.0 && exact < 1.0 {
                1
            } else if exact < 0.0 && exact > -1.0 {
                -1
            } else {
                exact.trunc() as i32
            };
            if let Some(m) = min_magnitude
                && delta != 0
                && delta.abs() < m
            {
                delta = m * delta.signum();
            }
            current.saturating_add(delta)
        }
    }
}

/// The adjustment of the step `metric` falls in, for an alarm of `threshold`: at or above
/// the threshold the lower bound is inclusive and the upper exclusive, below it the other
/// way round (`None`: no step covers it).
pub fn step_adjustment(steps: &[Step], metric: f64, threshold: f64) -> Option<i32> {
    let d = metric - threshold;
    steps
        .iter()
        .find(|s| {
            if d >= 0.0 {
                s.lower.is_none_or(|l| d >= l) && s.upper.is_none_or(|u| d < u)
            } else {
                s.lower.is_none_or(|l| d > l) && s.upper.is_none_or(|u| d <= u)
            }
        })
        .map(|s| s.adjustment)
}

/// Target tracking's capacity for `metric` against `target` from `current` instances: the
/// capacity that brings the average to the target, rounded up.
pub fn target_tracking(current: i32, metric: f64, target: f64) -> i32 {
    if target <= 0.0 || !metric.is_finite() {
        return current;
    }
    let base = f64::from(current.max(1));
    let want = (base * metric / target).ceil();
    want.clamp(0.0, f64::from(i32::MAX)) as i32
}

/// `desired` kept within `min..=max`.
pub fn clamp(desired: i32, min: i32, max: i32) -> i32 {
    desired.max(min).min(max.max(min))
}

#[cfg(test)]
mod tests {
    use super::*;
    use AdjustmentType::*;

    #[test]
    fn simple_adjustments() {
        assert_eq!(adjusted(2, ChangeInCapacity, 2, None), 4);
        assert_eq!(adjusted(4, ChangeInCapacity, -1, None), 3);
        assert_eq!(adjusted(4, ExactCapacity, 6, None), 6);
        // 10 % of 4 is 0.4: counts as 1.
        assert_eq!(adjusted(4, PercentChangeInCapacity, 10, None), 5);
        // 50 % of 5 is 2.5: 2.
        assert_eq!(adjusted(5, PercentChangeInCapacity, 50, None), 7);
        assert_eq!(adjusted(5, PercentChangeInCapacity, -50, None), 3);
        assert_eq!(adjusted(10, PercentChangeInCapacity, 10, Some(3)), 13);
        assert_eq!(adjusted(10, PercentChangeInCapacity, -10, Some(3)), 7);
    }

    #[test]
    fn the_step_a_breach_falls_in() {
        let steps = [
            Step {
                lower: Some(0.0),
                upper: Some(10.0),
                adjustment: 1,
            },
            Step {
                lower: Some(10.0),
                upper: Some(20.0),
                adjustment: 2,
            },
            Step {
                lower: Some(20.0),
                upper: None,
                adjustment: 3,
            },
        ];
        assert_eq!(step_adjustment(&steps, 60.0, 60.0), Some(1));
        assert_eq!(step_adjustment(&steps, 69.9, 60.0), Some(1));
        assert_eq!(step_adjustment(&steps, 70.0, 60.0), Some(2));
        assert_eq!(step_adjustment(&steps, 95.0, 60.0), Some(3));
        assert_eq!(step_adjustment(&steps, 50.0, 60.0), None);
        let down = [
            Step {
                lower: Some(-10.0),
                upper: Some(0.0),
                adjustment: -1,
            },
            Step {
                lower: None,
                upper: Some(-10.0),
                adjustment: -2,
            },
        ];
        assert_eq!(step_adjustment(&down, 29.9, 30.0), Some(-1));
        assert_eq!(step_adjustment(&down, 30.0, 30.0), None);
        assert_eq!(step_adjustment(&down, 20.0, 30.0), Some(-2));
        assert_eq!(step_adjustment(&down, 25.0, 30.0), Some(-1));
    }

    #[test]
    fn target_tracking_is_proportional_and_rounds_up() {
        assert_eq!(target_tracking(2, 90.0, 50.0), 4);
        assert_eq!(target_tracking(2, 80.0, 50.0), 4);
        assert_eq!(target_tracking(4, 45.0, 50.0), 4);
        assert_eq!(target_tracking(4, 1.0, 50.0), 1);
        assert_eq!(target_tracking(0, 90.0, 50.0), 2);
        assert_eq!(clamp(1, 2, 6), 2);
        assert_eq!(clamp(9, 2, 6), 6);
    }
}
