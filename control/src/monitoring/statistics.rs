//! What both queries share: the periods CloudWatch allows, the statistics it computes
//! (SampleCount, Average, Sum, Minimum, Maximum and percentiles `pNN.NN`), the resolution a
//! period is read at, and stored points merged into periods.

use std::collections::BTreeMap;

use state::metrics::{Aggregate, MetricKey, MetricsStore, PointRow, Resolution, StoreError};

/// One of the five basic statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Statistic {
    /// How many values.
    SampleCount,
    /// Sum divided by SampleCount.
    Average,
    /// The total.
    Sum,
    /// The lowest value.
    Minimum,
    /// The highest value.
    Maximum,
}

impl Statistic {
    /// Its name as CloudWatch spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::SampleCount => "SampleCount",
            Self::Average => "Average",
            Self::Sum => "Sum",
            Self::Minimum => "Minimum",
            Self::Maximum => "Maximum",
        }
    }

    /// The statistic named `s`, if it is one of the five.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "SampleCount" => Self::SampleCount,
            "Average" => Self::Average,
            "Sum" => Self::Sum,
            "Minimum" => Self::Minimum,
            "Maximum" => Self::Maximum,
            _ => return None,
        })
    }

    /// Its value over `a`.
    pub fn of(self, a: &Aggregate) -> f64 {
        match self {
            Self::SampleCount => a.count,
            Self::Average if a.count > 0.0 => a.sum / a.count,
            Self::Average => 0.0,
            Self::Sum => a.sum,
            Self::Minimum => a.min,
            Self::Maximum => a.max,
        }
    }
}

/// A percentile, `p90` or `p99.9`: its quantile (0 to 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentile(pub f64);

impl Percentile {
    /// `p` (or `P`) followed by a number from 0 to 100 with at most 10 decimals.
    pub fn parse(s: &str) -> Option<Self> {
        let n = s.strip_prefix(['p', 'P'])?;
        let (whole, fraction) = n.split_once('.').unwrap_or((n, ""));
        let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || whole.len() > 3 || !digits(whole) || !digits(fraction) {
            return None;
        }
        if n.contains('.') && (fraction.is_empty() || fraction.len() > 10) {
            return None;
        }
        let v: f64 = n.parse().ok()?;
        (0.0..=100.0).contains(&v).then_some(Self(v / 100.0))
    }

    /// Its value over `a`: the sketch's, kept within the period's minimum and maximum;
    /// `None` when the values are unknown (statistic sets only).
    pub fn of(self, a: &Aggregate) -> Option<f64> {
        let v = a.sketch.quantile(self.0)?;
        Some(v.clamp(a.min.min(a.max), a.max.max(a.min)))
    }
}

/// A statistic a query asks for: one of the five or a percentile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// A basic statistic.
    Basic(Statistic),
    /// A percentile.
    Percentile(Percentile),
}

impl Stat {
    /// `Sum`, `p90`, ...
    pub fn parse(s: &str) -> Option<Self> {
        Statistic::parse(s)
            .map(Self::Basic)
            .or_else(|| Percentile::parse(s).map(Self::Percentile))
    }

    /// Its value over `a`, if it has one.
    pub fn of(self, a: &Aggregate) -> Option<f64> {
        match self {
            Self::Basic(s) => Some(s.of(a)),
            Self::Percentile(p) => p.of(a),
        }
    }
}

/// Why a period is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("The parameter Period must be 1, 5, 10, 30 or a multiple of 60 (seconds); {0} is not.")]
pub struct BadPeriod(pub i32);

/// Checks a period: 1, 5, 10 or 30 seconds (for high-resolution metrics) or a multiple of
/// 60.
pub fn check_period(period: i32) -> Result<i64, BadPeriod> {
    match period {
        1 | 5 | 10 | 30 => Ok(i64::from(period)),
        p if p > 0 && p % 60 == 0 => Ok(i64::from(p)),
        p => Err(BadPeriod(p)),
    }
}

/// The resolution a query of `period` from `start` reads at: seconds for a period under a
/// minute; else the finest resolution dividing the period that still keeps points as old
/// as `start` (minutes for 15 days, 5 minutes for 63, then hours).
pub fn resolution_for(period: i64, start: i64, now: i64) -> Resolution {
    if period % 60 != 0 {
        return Resolution::Second;
    }
    let fits = [
        Resolution::Minute,
        Resolution::FiveMinutes,
        Resolution::Hour,
    ]
    .into_iter()
    .filter(|r| period % r.seconds() == 0);
    let mut coarsest = Resolution::Minute;
    for r in fits {
        if start >= now - r.retention() {
            return r;
        }
        coarsest = r;
    }
    coarsest
}

/// `t` rounded down to a multiple of `period`.
pub fn align(t: i64, period: i64) -> i64 {
    t.div_euclid(period) * period
}

/// The points of `key` from `start` to `end` merged into periods of `period` seconds (by
/// period start and unit, in time order), read at [`resolution_for`].
pub fn periods(
    store: &MetricsStore,
    key: &MetricKey,
    range: (i64, i64),
    period: i64,
    unit: Option<&str>,
    now: i64,
) -> Result<BTreeMap<(i64, String), Aggregate>, StoreError> {
    let (start, end) = range;
    let r = resolution_for(period, start, now);
    let from = r.align(align(start, period));
    let points = store.points(key, r, from, end, unit)?;
    Ok(merge_into_periods(points, period))
}

/// Stored points merged into periods of `period` seconds, by period start and unit.
pub fn merge_into_periods(
    points: Vec<PointRow>,
    period: i64,
) -> BTreeMap<(i64, String), Aggregate> {
    let mut out: BTreeMap<(i64, String), Aggregate> = BTreeMap::new();
    for p in points {
        let key = (align(p.time, period), p.unit);
        match out.get_mut(&key) {
            Some(a) => a.merge(&p.aggregate),
            None => {
                out.insert(key, p.aggregate);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_sub_minute_steps_or_whole_minutes() {
        for ok in [1, 5, 10, 30, 60, 120, 300, 3600, 86_400] {
            assert_eq!(check_period(ok), Ok(i64::from(ok)));
        }
        for bad in [0, -60, 2, 15, 59, 61, 90] {
            assert_eq!(check_period(bad), Err(BadPeriod(bad)));
        }
    }

    #[test]
    fn percentiles_are_p_and_a_number_from_0_to_100() {
        assert_eq!(Percentile::parse("p90"), Some(Percentile(0.9)));
        assert_eq!(
            Percentile::parse("p99.9").map(|p| (p.0 * 1000.0).round()),
            Some(999.0)
        );
        assert_eq!(Percentile::parse("p0"), Some(Percentile(0.0)));
        assert_eq!(Percentile::parse("p100"), Some(Percentile(1.0)));
        for bad in [
            "p", "p101", "p-1", "p9x", "p.5", "p5.", "q50", "tm99", "p1e2", "p 5",
        ] {
            assert_eq!(Percentile::parse(bad), None, "{bad}");
        }
        assert_eq!(Stat::parse("Sum"), Some(Stat::Basic(Statistic::Sum)));
        assert_eq!(Stat::parse("Median"), None);
    }

    #[test]
    fn a_period_is_read_at_the_finest_resolution_that_still_holds_its_start() {
        let now = 100 * 86_400;
        assert_eq!(resolution_for(10, now - 60, now), Resolution::Second);
        assert_eq!(resolution_for(60, now - 60, now), Resolution::Minute);
        assert_eq!(resolution_for(300, now - 86_400, now), Resolution::Minute);
        assert_eq!(
            resolution_for(300, now - 20 * 86_400, now),
            Resolution::FiveMinutes
        );
        assert_eq!(
            resolution_for(3600, now - 90 * 86_400, now),
            Resolution::Hour
        );
        // A period no coarser resolution divides stays at minutes.
        assert_eq!(
            resolution_for(120, now - 20 * 86_400, now),
            Resolution::Minute
        );
    }
}
