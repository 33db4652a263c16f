//! Writing observations and reading points back.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::{MetricKey, MetricsStore, Resolution, Sketch, StoreError, done_until};

/// What a point (or an observation) holds: the statistics CloudWatch keeps and a sketch of
/// the values for percentiles.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// SampleCount.
    pub count: f64,
    /// Sum.
    pub sum: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
    /// The values, for percentiles (empty for a statistic set whose values are unknown).
    pub sketch: Sketch,
}

impl Aggregate {
    /// `value` seen `count` times.
    pub fn of_value(value: f64, count: f64) -> Self {
        let mut sketch = Sketch::new();
        sketch.add(value, count);
        Self {
            count,
            sum: value * count,
            min: value,
            max: value,
            sketch,
        }
    }

    /// A statistic set: its values are unknown, so the sketch holds them only when they are
    /// all one value (minimum equal to maximum).
    pub fn of_statistics(count: f64, sum: f64, min: f64, max: f64) -> Self {
        let mut sketch = Sketch::new();
        if min == max {
            sketch.add(min, count);
        }
        Self {
            count,
            sum,
            min,
            max,
            sketch,
        }
    }

    /// Adds `other`'s values.
    pub fn merge(&mut self, other: &Aggregate) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sketch.merge(&other.sketch);
    }
}

/// One datum to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The metric.
    pub key: MetricKey,
    /// When, in seconds since the epoch.
    pub time: i64,
    /// Whether it is kept at 1-second resolution as well (`StorageResolution=1`).
    pub high_resolution: bool,
    /// Its unit (`None` when not given).
    pub unit: String,
    /// Its values.
    pub aggregate: Aggregate,
}

/// A stored point.
#[derive(Debug, Clone, PartialEq)]
pub struct PointRow {
    /// Its start, in seconds since the epoch (a multiple of its resolution).
    pub time: i64,
    /// Its unit.
    pub unit: String,
    /// Its values.
    pub aggregate: Aggregate,
}

/// Why observations were not recorded.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// Recording them would pass the cap on distinct metrics; nothing was recorded.
    #[error("the store holds {limit} distinct metrics, its limit")]
    TooManyMetrics {
        /// The cap.
        limit: usize,
    },
    /// The store failed.
    #[error("cannot record the metric data")]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for PutError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.into())
    }
}

/// A point's identity: metric id, resolution in seconds, start, unit.
type PointKey = (i64, i64, i64, String);

impl MetricsStore {
    /// Records `observations`, put at `now` (seconds since the epoch), in one transaction:
    /// all or, when the cap on distinct metrics would be passed, none.
    pub fn put(&self, observations: &[Observation], now: i64) -> Result<(), PutError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut ids: BTreeMap<&MetricKey, i64> = BTreeMap::new();
        // The number of metrics, counted once, when the first new one comes.
        let mut stored: Option<usize> = None;
        for o in observations {
            if !ids.contains_key(&o.key) {
                let id = metric_id_for_put(&tx, &o.key, now, self.max_metrics, &mut stored)?;
                ids.insert(&o.key, id);
            }
        }
        let done: Vec<(Resolution, i64)> = [Resolution::FiveMinutes, Resolution::Hour]
            .into_iter()
            .map(|r| Ok(done_until(&tx, r)?.map(|d| (r, d))))
            .filter_map(|r: rusqlite::Result<_>| r.transpose())
            .collect::<rusqlite::Result<_>>()?;
        let mut grouped: BTreeMap<PointKey, Aggregate> = BTreeMap::new();
        for o in observations {
            let id = ids[&o.key];
            let mut add = |r: Resolution| {
                let key = (id, r.seconds(), r.align(o.time), o.unit.clone());
                match grouped.get_mut(&key) {
                    Some(a) => a.merge(&o.aggregate),
                    None => {
                        grouped.insert(key, o.aggregate.clone());
                    }
                }
            };
            if o.high_resolution {
                add(Resolution::Second);
            }
            add(Resolution::Minute);
            // Later than a roll-up went: straight into the rolled-up resolution too.
            for &(r, until) in &done {
                if o.time < until {
                    add(r);
                }
            }
        }
        for (key, aggregate) in grouped {
            merge_point(&tx, &key, aggregate)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The points of metric `key` at resolution `r` from `start` (inclusive) to `end`
    /// (exclusive), of `unit` when one is given, in time order. Where `r` is a rolled-up
    /// resolution whose roll-ups have not reached `end`, the rest comes from the finer
    /// resolution below.
    pub fn points(
        &self,
        key: &MetricKey,
        r: Resolution,
        start: i64,
        end: i64,
        unit: Option<&str>,
    ) -> Result<Vec<PointRow>, StoreError> {
        if start >= end {
            return Ok(Vec::new());
        }
        let conn = self.lock();
        let Some(id) = metric_id(&conn, key)? else {
            return Ok(Vec::new());
        };
        let (mut r, mut start) = (r, start);
        let mut out = Vec::new();
        loop {
            match r.rolled_from() {
                Some(finer) => {
                    let until = done_until(&conn, r)?
                        .unwrap_or(i64::MIN)
                        .max(start)
                        .min(end);
                    out.extend(read_points(&conn, id, r, start, until, unit)?);
                    (r, start) = (finer, until);
                }
                None => {
                    out.extend(read_points(&conn, id, r, start, end, unit)?);
                    return Ok(out);
                }
            }
        }
    }
}

/// The id of `key`, made when new unless the cap is reached; its put time set to `now`.
/// `stored` is the number of metrics, once counted.
fn metric_id_for_put(
    conn: &Connection,
    key: &MetricKey,
    now: i64,
    max_metrics: usize,
    stored: &mut Option<usize>,
) -> Result<i64, PutError> {
    if let Some(id) = metric_id(conn, key)? {
        conn.execute(
            "UPDATE metrics SET last_put = max(last_put, ?2) WHERE id = ?1",
            params![id, now],
        )?;
        return Ok(id);
    }
    let count = match *stored {
        Some(n) => n,
        None => {
            conn.query_row("SELECT count(*) FROM metrics", [], |r| r.get::<_, i64>(0))? as usize
        }
    };
    if count >= max_metrics {
        return Err(PutError::TooManyMetrics { limit: max_metrics });
    }
    *stored = Some(count + 1);
    conn.execute(
        "INSERT INTO metrics (namespace, name, dimensions, last_put) VALUES (?1, ?2, ?3, ?4)",
        params![key.namespace, key.name, key.canonical_dimensions(), now],
    )?;
    Ok(conn.last_insert_rowid())
}

/// The id of `key`, if it was ever put.
pub(super) fn metric_id(conn: &Connection, key: &MetricKey) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT id FROM metrics WHERE namespace = ?1 AND name = ?2 AND dimensions = ?3",
        params![key.namespace, key.name, key.canonical_dimensions()],
        |r| r.get(0),
    )
    .optional()
}

/// Adds `aggregate` to the point `key`, making it when new.
pub(super) fn merge_point(
    conn: &Connection,
    key: &PointKey,
    mut aggregate: Aggregate,
) -> Result<(), StoreError> {
    let (metric, resolution, ts, unit) = key;
    let existing = conn
        .query_row(
            "SELECT sample_count, sum, minimum, maximum, sketch FROM points
             WHERE metric = ?1 AND resolution = ?2 AND ts = ?3 AND unit = ?4",
            params![metric, resolution, ts, unit],
            row_aggregate,
        )
        .optional()?;
    if let Some(old) = existing {
        aggregate.merge(&old?);
    }
    conn.execute(
        "INSERT OR REPLACE INTO points
         (metric, resolution, ts, unit, sample_count, sum, minimum, maximum, sketch)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            metric,
            resolution,
            ts,
            unit,
            aggregate.count,
            aggregate.sum,
            aggregate.min,
            aggregate.max,
            aggregate.sketch.to_bytes()
        ],
    )?;
    Ok(())
}

/// The aggregate of a row whose first five columns are count, sum, min, max and sketch.
pub(super) fn row_aggregate(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<Result<Aggregate, StoreError>> {
    let bytes: Vec<u8> = row.get(4)?;
    Ok(Sketch::from_bytes(&bytes)
        .map_err(StoreError::from)
        .map(|sketch| Aggregate {
            count: row.get(0).unwrap_or(0.0),
            sum: row.get(1).unwrap_or(0.0),
            min: row.get(2).unwrap_or(0.0),
            max: row.get(3).unwrap_or(0.0),
            sketch,
        }))
}

fn read_points(
    conn: &Connection,
    id: i64,
    r: Resolution,
    start: i64,
    end: i64,
    unit: Option<&str>,
) -> Result<Vec<PointRow>, StoreError> {
    if start >= end {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT sample_count, sum, minimum, maximum, sketch, ts, unit FROM points
         WHERE metric = ?1 AND resolution = ?2 AND ts >= ?3 AND ts < ?4
           AND (?5 IS NULL OR unit = ?5)
         ORDER BY ts, unit",
    )?;
    let rows = stmt.query_map(params![id, r.seconds(), start, end, unit], |row| {
        let aggregate = row_aggregate(row)?;
        Ok((row.get::<_, i64>(5)?, row.get::<_, String>(6)?, aggregate))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (time, unit, aggregate) = row?;
        out.push(PointRow {
            time,
            unit,
            aggregate: aggregate?,
        });
    }
    Ok(out)
}
