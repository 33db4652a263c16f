//! Predictive scaling's forecast: the next hours of a group's load from its hourly history,
//! and the capacity that load needs. Pure functions, no I/O.
//!
//! The model is additive and seasonal, as a user reading the forecast can follow it:
//!
//! - a **local level** for each hour of history: the mean of the week centred on it, which
//!   holds every hour of the day and of the week once, so a trend stays in it and the
//!   seasons do not;
//! - a **daily profile**: how far each hour of the day sits, on average, from its local
//!   level;
//! - a **weekly profile**: what is left, per hour of the week, once the daily profile is
//!   taken out too (a quiet weekend), used only once a whole week of history is there;
//! - a **level**: the mean of the last day's history with both profiles taken out, so a
//!   rise or fall of the whole curve carries into the forecast (half a day behind a steady
//!   trend: the model does not extrapolate one).
//!
//! A forecast hour is `level + daily[hour of day] + weekly[hour of week]`, never below zero.
//! With less than a day of history there is no profile to learn and the forecast is the
//! mean. The cost is O(n log n) in the history's length.

use std::collections::BTreeMap;

/// Seconds in an hour, the forecast's step.
const HOUR: i64 = 3600;
/// Hours in a day and in a week.
const DAY_HOURS: i64 = 24;
const WEEK_HOURS: i64 = 7 * DAY_HOURS;
/// How far back the level looks, in hours.
const LEVEL_HOURS: i64 = DAY_HOURS;

/// A load forecast: one value an hour.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadForecast {
    /// Seconds since the epoch, on hour boundaries, ascending.
    pub timestamps: Vec<i64>,
    /// The load forecast for each timestamp.
    pub values: Vec<f64>,
}

/// The hourly means of `history` (`(seconds since the epoch, value)` in any order, with
/// gaps), keyed by hour number (seconds / 3600). Non-finite values are left out.
fn hourly(history: &[(i64, f64)]) -> BTreeMap<i64, f64> {
    let mut sums: BTreeMap<i64, (f64, u32)> = BTreeMap::new();
    for &(t, v) in history.iter().filter(|(_, v)| v.is_finite()) {
        let s = sums.entry(t.div_euclid(HOUR)).or_insert((0.0, 0));
        s.0 += v;
        s.1 += 1;
    }
    sums.into_iter()
        .map(|(h, (sum, n))| (h, sum / f64::from(n)))
        .collect()
}

/// The local level of each hour: the mean of the values within half a week either side
/// (a centred week holds each hour of the day and of the week once, so the seasons average
/// out of it and a trend stays). `hours` is ascending.
fn local_levels(hours: &[(i64, f64)]) -> Vec<f64> {
    let mut prefix = Vec::with_capacity(hours.len() + 1);
    prefix.push(0.0);
    for (_, v) in hours {
        prefix.push(prefix[prefix.len() - 1] + v);
    }
    hours
        .iter()
        .map(|&(h, _)| {
            let from = hours.partition_point(|&(k, _)| k < h - WEEK_HOURS / 2);
            let to = hours.partition_point(|&(k, _)| k < h + WEEK_HOURS / 2);
            (prefix[to] - prefix[from]) / (to - from) as f64
        })
        .collect()
}

/// The mean of `value(i)` per slot (`slot(hour)` in `0..slots`); zero where a slot has none.
fn profile(
    hours: &[(i64, f64)],
    slots: i64,
    slot: impl Fn(i64) -> i64,
    value: impl Fn(usize) -> f64,
) -> Vec<f64> {
    let mut sums = vec![(0.0, 0u32); slots as usize];
    for (i, &(h, _)) in hours.iter().enumerate() {
        let s = &mut sums[slot(h) as usize];
        s.0 += value(i);
        s.1 += 1;
    }
    sums.into_iter()
        .map(|(sum, n)| if n == 0 { 0.0 } else { sum / f64::from(n) })
        .collect()
}

/// The seasonal part of the model learnt from the hourly history: each value's distance
/// from its local level, averaged per hour of the day, then what is left per hour of the
/// week.
struct Seasons {
    daily: Vec<f64>,
    weekly: Vec<f64>,
}

impl Seasons {
    fn learn(hours: &[(i64, f64)]) -> Self {
        let span = match (hours.first(), hours.last()) {
            (Some(first), Some(last)) => last.0 - first.0 + 1,
            _ => 0,
        };
        let levels = local_levels(hours);
        let detrended = |i: usize| hours[i].1 - levels[i];
        let daily = if span >= DAY_HOURS {
            profile(hours, DAY_HOURS, |h| h.rem_euclid(DAY_HOURS), detrended)
        } else {
            vec![0.0; DAY_HOURS as usize]
        };
        let weekly = if span >= WEEK_HOURS {
            profile(
                hours,
                WEEK_HOURS,
                |h| h.rem_euclid(WEEK_HOURS),
                |i| detrended(i) - daily[hours[i].0.rem_euclid(DAY_HOURS) as usize],
            )
        } else {
            vec![0.0; WEEK_HOURS as usize]
        };
        Self { daily, weekly }
    }

    /// The seasonal offset of hour number `h`.
    fn at(&self, h: i64) -> f64 {
        self.daily[h.rem_euclid(DAY_HOURS) as usize]
            + self.weekly[h.rem_euclid(WEEK_HOURS) as usize]
    }
}

/// Forecasts `hours` hours of load from `history` (hourly `(seconds since the epoch,
/// value)` points of the load metric, in any order, gaps allowed), starting at the first
/// hour boundary at or after `now`. An empty history forecasts zero.
pub fn forecast_load(history: &[(i64, f64)], now: i64, hours: usize) -> LoadForecast {
    let by_hour: Vec<(i64, f64)> = hourly(history).into_iter().collect();
    let seasons = Seasons::learn(&by_hour);
    let level = match by_hour.last() {
        Some(&(last, _)) => {
            let recent = &by_hour[by_hour.partition_point(|&(h, _)| h <= last - LEVEL_HOURS)..];
            recent.iter().map(|&(h, v)| v - seasons.at(h)).sum::<f64>() / recent.len() as f64
        }
        None => 0.0,
    };
    let first = now.div_euclid(HOUR) + i64::from(now.rem_euclid(HOUR) != 0);
    let (timestamps, values) = (first..)
        .take(hours)
        .map(|h| (h * HOUR, (level + seasons.at(h)).max(0.0)))
        .unzip();
    LoadForecast { timestamps, values }
}

/// The capacity each forecast hour needs: the load over what one instance should carry
/// (`target_per_instance`, the policy's target value), rounded up, within `min..=max`.
/// A target that is not a positive number asks for `min`.
pub fn capacity_forecast(
    load: &LoadForecast,
    target_per_instance: f64,
    min: i32,
    max: i32,
) -> Vec<i32> {
    let max = max.max(min);
    load.values
        .iter()
        .map(|&v| {
            let usable = target_per_instance.is_finite() && target_per_instance > 0.0;
            if !usable || !v.is_finite() {
                return min;
            }
            let needed = (v / target_per_instance).ceil();
            if needed >= f64::from(max) {
                max
            } else {
                (needed as i32).max(min)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-02T00:00:00Z, a Monday.
    const MONDAY: i64 = 1_793_577_600;

    /// A daily pattern: quiet at night, a peak at 14:00 UTC.
    fn daily_load(t: i64) -> f64 {
        let hour = (t.rem_euclid(86_400) as f64) / 3600.0;
        100.0 + 60.0 * (std::f64::consts::PI * (hour - 8.0) / 12.0).sin()
    }

    /// A small deterministic noise in -5..5.
    fn noise(i: i64) -> f64 {
        ((i * 7_919) % 101) as f64 / 10.0 - 5.0
    }

    fn mean_abs_pct_error(forecast: &LoadForecast, truth: impl Fn(i64) -> f64) -> f64 {
        let errors: f64 = forecast
            .timestamps
            .iter()
            .zip(&forecast.values)
            .map(|(&t, &v)| ((v - truth(t)) / truth(t)).abs())
            .sum();
        errors / forecast.values.len() as f64
    }

    #[test]
    fn a_daily_pattern_is_forecast_within_five_percent() {
        let history: Vec<(i64, f64)> = (0..14 * 24)
            .map(|i| {
                let t = MONDAY + i * HOUR;
                (t, daily_load(t) + noise(i))
            })
            .collect();
        let now = MONDAY + 14 * 86_400 + 600;
        let f = forecast_load(&history, now, 48);
        assert_eq!(f.values.len(), 48);
        assert_eq!(f.timestamps[0], MONDAY + 14 * 86_400 + HOUR);
        let error = mean_abs_pct_error(&f, daily_load);
        assert!(error < 0.05, "mean error {error}");
        // The peak lands at the peak hour, not flattened to the mean.
        let peak = f.values.iter().cloned().fold(f64::MIN, f64::max);
        assert!(peak > 150.0, "peak {peak}");
    }

    #[test]
    fn a_quiet_weekend_is_forecast_quiet_once_a_week_is_known() {
        let weekly = |t: i64| {
            let weekday = (t - MONDAY).div_euclid(86_400).rem_euclid(7);
            let scale = if weekday >= 5 { 0.4 } else { 1.0 };
            daily_load(t) * scale
        };
        let history: Vec<(i64, f64)> = (0..14 * 24)
            .map(|i| (MONDAY + i * HOUR, weekly(MONDAY + i * HOUR)))
            .collect();
        // Forecast the third week's Friday and Saturday.
        let now = MONDAY + 18 * 86_400;
        let f = forecast_load(&history, now, 48);
        let friday: f64 = f.values[..24].iter().sum();
        let saturday: f64 = f.values[24..].iter().sum();
        assert!(
            saturday < friday * 0.6,
            "friday {friday} saturday {saturday}"
        );
        // The weekend here scales the day (a product), which the additive model follows
        // within 10 %.
        let error = mean_abs_pct_error(&f, weekly);
        assert!(error < 0.10, "mean error {error}: {:?}", f.values);
    }

    #[test]
    fn a_growing_load_is_forecast_at_its_latest_level_not_its_mean() {
        // Two weeks of the daily pattern, growing by 3 a day.
        let growing = |t: i64| daily_load(t) + 3.0 * (t - MONDAY) as f64 / 86_400.0;
        let history: Vec<(i64, f64)> = (0..14 * 24)
            .map(|i| (MONDAY + i * HOUR, growing(MONDAY + i * HOUR)))
            .collect();
        let f = forecast_load(&history, MONDAY + 14 * 86_400, 24);
        let mean_forecast: f64 = f.values.iter().sum::<f64>() / 24.0;
        let history_mean: f64 = history.iter().map(|p| p.1).sum::<f64>() / history.len() as f64;
        assert!(
            mean_forecast > history_mean + 15.0,
            "{mean_forecast} vs {history_mean}"
        );
        assert!(mean_abs_pct_error(&f, growing) < 0.05);
    }

    #[test]
    fn short_unsorted_or_gappy_history_gives_a_sane_forecast() {
        assert_eq!(forecast_load(&[], 0, 3).values, vec![0.0; 3]);
        let short = [
            (MONDAY + 7_200, 30.0),
            (MONDAY, 10.0),
            (MONDAY + 3_600, f64::NAN),
        ];
        let f = forecast_load(&short, MONDAY + 7_200, 2);
        assert_eq!(f.values, vec![20.0, 20.0]);
        assert_eq!(f.timestamps, vec![MONDAY + 7_200, MONDAY + 10_800]);
        // Several points in one hour are averaged; two days with a hole still forecast.
        let gappy: Vec<(i64, f64)> = (0..48)
            .filter(|i| i % 5 != 0)
            .flat_map(|i| {
                let t = MONDAY + i * HOUR;
                [(t, daily_load(t) - 1.0), (t + 60, daily_load(t) + 1.0)]
            })
            .collect();
        let f = forecast_load(&gappy, MONDAY + 2 * 86_400, 24);
        assert!(f.values.iter().all(|v| v.is_finite() && *v >= 0.0));
        assert!(mean_abs_pct_error(&f, daily_load) < 0.1);
    }

    #[test]
    fn a_load_never_forecasts_below_zero() {
        let history: Vec<(i64, f64)> = (0..48)
            .map(|i| (MONDAY + i * HOUR, if i % 24 < 12 { 0.0 } else { 100.0 }))
            .chain([(MONDAY + 47 * HOUR, -500.0)])
            .collect();
        let f = forecast_load(&history, MONDAY + 48 * HOUR, 24);
        assert!(f.values.iter().all(|v| *v >= 0.0), "{:?}", f.values);
    }

    #[test]
    fn capacity_is_the_load_over_the_target_rounded_up_within_the_bounds() {
        let load = LoadForecast {
            timestamps: vec![0, 3600, 7200, 10_800, 14_400],
            values: vec![0.0, 49.0, 101.0, 1e12, f64::NAN],
        };
        assert_eq!(capacity_forecast(&load, 50.0, 1, 6), vec![1, 1, 3, 6, 1]);
        assert_eq!(capacity_forecast(&load, 0.0, 2, 6), vec![2; 5]);
        assert_eq!(capacity_forecast(&load, 50.0, 4, 2), vec![4, 4, 4, 4, 4]);
    }
}
