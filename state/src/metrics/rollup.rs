//! Roll-ups (1-minute points into 5-minute ones, those into 1-hour ones) and retention.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use super::points::{Aggregate, merge_point, row_aggregate};
use super::{MetricsStore, Resolution, StoreError, done_until};

/// What one [`MetricsStore::prune_and_roll_up`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupReport {
    /// Points written at 5-minute and 1-hour resolution.
    pub rolled_up: usize,
    /// Points deleted past their resolution's retention.
    pub pruned_points: usize,
    /// Metrics deleted for having no put for longer than the longest retention.
    pub pruned_metrics: usize,
}

impl MetricsStore {
    /// Rolls up every complete 5-minute and 1-hour period before `now` (seconds since the
    /// epoch) not rolled up yet, then deletes the points older than their resolution keeps
    /// (1 second: 3 hours, 1 minute: 15 days, 5 minutes: 63 days, 1 hour: 455 days), and the
    /// metrics not put for 455 days. One transaction; calling it again at the same `now`
    /// changes nothing.
    pub fn prune_and_roll_up(&self, now: i64) -> Result<RollupReport, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut report = RollupReport::default();
        for target in [Resolution::FiveMinutes, Resolution::Hour] {
            report.rolled_up += roll_up(&tx, target, now)?;
        }
        for r in Resolution::ALL {
            report.pruned_points += tx.execute(
                "DELETE FROM points WHERE resolution = ?1 AND ts < ?2",
                params![r.seconds(), now - r.retention()],
            )?;
        }
        let forgotten = now - Resolution::Hour.retention();
        tx.execute(
            "DELETE FROM points WHERE metric IN (SELECT id FROM metrics WHERE last_put < ?1)",
            [forgotten],
        )?;
        report.pruned_metrics =
            tx.execute("DELETE FROM metrics WHERE last_put < ?1", [forgotten])?;
        tx.commit()?;
        Ok(report)
    }
}

/// Rolls the points of `target`'s finer resolution from where the last roll-up stopped to
/// the last complete `target` period before `now` into `target`; returns how many points
/// it wrote.
fn roll_up(conn: &Connection, target: Resolution, now: i64) -> Result<usize, StoreError> {
    let Some(source) = target.rolled_from() else {
        return Ok(0);
    };
    let until = target.align(now);
    let from = match done_until(conn, target)? {
        Some(d) => d,
        // The first roll-up: from the oldest point kept.
        None => conn
            .query_row(
                "SELECT min(ts) FROM points WHERE resolution = ?1",
                [source.seconds()],
                |r| r.get::<_, Option<i64>>(0),
            )?
            .map_or(until, |t| target.align(t)),
    };
    let mut grouped: BTreeMap<(i64, i64, String), Aggregate> = BTreeMap::new();
    if from < until {
        let mut stmt = conn.prepare_cached(
            "SELECT sample_count, sum, minimum, maximum, sketch, metric, ts, unit FROM points
             WHERE resolution = ?1 AND ts >= ?2 AND ts < ?3",
        )?;
        let rows = stmt.query_map(params![source.seconds(), from, until], |row| {
            let aggregate = row_aggregate(row)?;
            Ok((
                row.get::<_, i64>(5)?,
                row.get::<_, i64>(6)?,
                row.get::<_, String>(7)?,
                aggregate,
            ))
        })?;
        for row in rows {
            let (metric, ts, unit, aggregate) = row?;
            let aggregate = aggregate?;
            match grouped.get_mut(&(metric, target.align(ts), unit.clone())) {
                Some(a) => a.merge(&aggregate),
                None => {
                    grouped.insert((metric, target.align(ts), unit), aggregate);
                }
            }
        }
    }
    let written = grouped.len();
    for ((metric, ts, unit), aggregate) in grouped {
        merge_point(conn, &(metric, target.seconds(), ts, unit), aggregate)?;
    }
    conn.execute(
        "INSERT INTO rollups (resolution, done_until) VALUES (?1, ?2)
         ON CONFLICT (resolution) DO UPDATE SET done_until = max(done_until, excluded.done_until)",
        params![target.seconds(), until.max(from)],
    )?;
    Ok(written)
}
