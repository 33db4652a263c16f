//! The metrics store: CloudWatch's metrics, their points and the dashboards, in a SQLite
//! file of their own (`metrics.db` in the state directory) with its own connection, so that
//! frequent metric writes never wait on the control plane's database lock, nor it on them.
//!
//! - [`MetricsStore::put`] (`points.rs`) records observations: each metric (a namespace, a
//!   name and its dimensions, sorted by name) is a row of `metrics`; each (metric,
//!   resolution, aligned time, unit) a row of `points` holding SampleCount, Sum, Minimum,
//!   Maximum and a [`Sketch`] of the values for percentiles.
//! - Resolutions ([`Resolution`]): 1-second points for high-resolution metrics, 1-minute
//!   points for every metric (a high-resolution observation is written to both), and 5-minute
//!   and 1-hour points rolled up from them by [`MetricsStore::prune_and_roll_up`]
//!   (`rollup.rs`), which also drops points past CloudWatch's retention (3 hours, 15 days, 63
//!   days, 455 days).
//! - [`MetricsStore::points`] reads a resolution's points, taking the ones not rolled up yet
//!   from the finer resolution below; [`MetricsStore::list`] (`catalog.rs`) lists metrics.
//! - Dashboards (`dashboards.rs`): name, body, last change.
//! - Alarms (`alarms.rs`, from migration 2): each alarm's configuration (the control plane's
//!   JSON), its metric and actions as columns to select on, its state and state times; and
//!   the alarm history, kept 30 days and at most 200,000 items.
//!
//! The number of distinct metrics is capped ([`MetricsStore::max_metrics`]): a put that would
//! pass it is refused whole.

mod alarms;
mod catalog;
mod dashboards;
mod points;
mod rollup;
pub mod sketch;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

use super::migrations::{self, MigrateError};

pub use alarms::{
    AlarmFilter, AlarmRow, HISTORY_RETENTION_MS, HistoryFilter, HistoryPage, HistoryRow,
    MAX_HISTORY, StateUpdate,
};
pub use catalog::{DimensionFilter, ListFilter, Listed};
pub use dashboards::{DashboardRow, DashboardsPage};
pub use points::{Aggregate, Observation, PointRow, PutError};
pub use rollup::RollupReport;
pub use sketch::{Sketch, SketchError};

/// The default cap on distinct metrics.
pub const DEFAULT_MAX_METRICS: usize = 100_000;

/// The schema of `metrics.db`, one entry per version; never edit a released one.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE metrics (
        id INTEGER PRIMARY KEY,
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        dimensions TEXT NOT NULL,
        last_put INTEGER NOT NULL,
        UNIQUE (namespace, name, dimensions)
    );
    CREATE INDEX metrics_last_put ON metrics(last_put);
    CREATE TABLE points (
        metric INTEGER NOT NULL REFERENCES metrics(id),
        resolution INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        unit TEXT NOT NULL,
        sample_count REAL NOT NULL,
        sum REAL NOT NULL,
        minimum REAL NOT NULL,
        maximum REAL NOT NULL,
        sketch BLOB NOT NULL,
        PRIMARY KEY (metric, resolution, ts, unit)
    ) WITHOUT ROWID;
    CREATE INDEX points_age ON points(resolution, ts);
    CREATE TABLE rollups (
        resolution INTEGER PRIMARY KEY,
        done_until INTEGER NOT NULL
    );
    CREATE TABLE dashboards (
        name TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        last_modified INTEGER NOT NULL
    );
    "#,
    r#"
    CREATE TABLE alarms (
        name TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        config TEXT NOT NULL,
        namespace TEXT,
        metric_name TEXT,
        dimensions TEXT,
        actions TEXT NOT NULL,
        actions_enabled INTEGER NOT NULL,
        state TEXT NOT NULL,
        reason TEXT NOT NULL,
        reason_data TEXT,
        state_updated INTEGER NOT NULL,
        state_transitioned INTEGER NOT NULL,
        config_updated INTEGER NOT NULL,
        next_eval INTEGER NOT NULL
    );
    CREATE INDEX alarms_metric ON alarms(namespace, metric_name);
    CREATE INDEX alarms_due ON alarms(kind, next_eval);
    CREATE TABLE alarm_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        alarm_name TEXT NOT NULL,
        alarm_type TEXT NOT NULL,
        ts INTEGER NOT NULL,
        item_type TEXT NOT NULL,
        summary TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX alarm_history_alarm ON alarm_history(alarm_name, ts);
    CREATE INDEX alarm_history_ts ON alarm_history(ts);
    "#,
];

/// The resolutions points are kept at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resolution {
    /// 1 second, for high-resolution metrics (`StorageResolution=1`); kept 3 hours.
    Second,
    /// 1 minute, for every metric; kept 15 days.
    Minute,
    /// 5 minutes, rolled up from minutes; kept 63 days.
    FiveMinutes,
    /// 1 hour, rolled up from 5 minutes; kept 455 days.
    Hour,
}

impl Resolution {
    /// Every resolution, finest first.
    pub const ALL: [Resolution; 4] = [Self::Second, Self::Minute, Self::FiveMinutes, Self::Hour];

    /// Its length in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            Self::Second => 1,
            Self::Minute => 60,
            Self::FiveMinutes => 300,
            Self::Hour => 3600,
        }
    }

    /// How long its points are kept, in seconds.
    pub fn retention(self) -> i64 {
        const DAY: i64 = 86_400;
        match self {
            Self::Second => 3 * 3600,
            Self::Minute => 15 * DAY,
            Self::FiveMinutes => 63 * DAY,
            Self::Hour => 455 * DAY,
        }
    }

    /// The resolution its points are rolled up from (none for the two written directly).
    pub fn rolled_from(self) -> Option<Resolution> {
        match self {
            Self::Second | Self::Minute => None,
            Self::FiveMinutes => Some(Self::Minute),
            Self::Hour => Some(Self::FiveMinutes),
        }
    }

    /// `t` rounded down to a multiple of this resolution.
    pub fn align(self, t: i64) -> i64 {
        t.div_euclid(self.seconds()) * self.seconds()
    }
}

/// A metric: its namespace, name and dimensions (sorted by name, names distinct).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetricKey {
    /// The namespace (`AWS/EC2`, `MyApp`).
    pub namespace: String,
    /// The metric's name.
    pub name: String,
    /// Its dimensions as (name, value), sorted by name.
    pub dimensions: Vec<(String, String)>,
}

impl MetricKey {
    /// A key with its dimensions sorted by name.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        mut dimensions: Vec<(String, String)>,
    ) -> Self {
        dimensions.sort();
        Self {
            namespace: namespace.into(),
            name: name.into(),
            dimensions,
        }
    }

    /// The dimensions' canonical form, as stored: a JSON array of `[name, value]` pairs.
    fn canonical_dimensions(&self) -> String {
        serde_json::to_string(&self.dimensions).unwrap_or_else(|_| "[]".into())
    }
}

/// Errors opening the metrics store.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// SQLite could not open or configure the file.
    #[error("cannot open the metrics database {path}")]
    Sqlite {
        /// The database file.
        path: String,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The schema could not be migrated.
    #[error("cannot migrate the metrics database")]
    Migrate(#[source] MigrateError),
}

/// Errors reading or writing the metrics store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("the metrics database failed")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored sketch does not read back.
    #[error("a stored point does not read back")]
    Sketch(#[from] SketchError),
}

/// The metrics store: one connection behind a mutex that recovers from poisoning.
#[derive(Debug)]
pub struct MetricsStore {
    conn: Mutex<Connection>,
    max_metrics: usize,
}

impl MetricsStore {
    /// Opens (creating if needed) the store at `path` and migrates it, with the default cap
    /// on distinct metrics.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Self::open_with_cap(path, DEFAULT_MAX_METRICS)
    }

    /// Opens the store with at most `max_metrics` distinct metrics.
    pub fn open_with_cap(path: &Path, max_metrics: usize) -> Result<Self, OpenError> {
        let sqlite = |source| OpenError::Sqlite {
            path: path.display().to_string(),
            source,
        };
        let mut conn = crate::db::connect(path).map_err(sqlite)?;
        migrations::apply(&mut conn, MIGRATIONS).map_err(OpenError::Migrate)?;
        Ok(Self {
            conn: Mutex::new(conn),
            max_metrics,
        })
    }

    /// The cap on distinct metrics.
    pub fn max_metrics(&self) -> usize {
        self.max_metrics
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where each rolled-up resolution's roll-ups have reached: points before this time are
/// in it (and later observations before it are written to it directly).
fn done_until(conn: &Connection, r: Resolution) -> rusqlite::Result<Option<i64>> {
    use rusqlite::OptionalExtension;
    conn.query_row(
        "SELECT done_until FROM rollups WHERE resolution = ?1",
        [r.seconds()],
        |row| row.get(0),
    )
    .optional()
}

#[cfg(test)]
mod tests;
