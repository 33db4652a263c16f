//! CloudWatch dashboards: a name, a body (checked by the control plane) and when it last
//! changed.

use std::collections::BTreeSet;

use rusqlite::{OptionalExtension, params};

use super::{MetricsStore, StoreError};

/// A stored dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardRow {
    /// Its name.
    pub name: String,
    /// Its body, CloudWatch's dashboard JSON.
    pub body: String,
    /// When it was last put, in milliseconds since the epoch.
    pub last_modified_ms: i64,
}

/// A page of dashboards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardsPage {
    /// The dashboards, by name.
    pub dashboards: Vec<DashboardRow>,
    /// The last name of this page, when another follows.
    pub next: Option<String>,
}

impl MetricsStore {
    /// Makes or replaces dashboard `name`, unless that would make more than `max`
    /// dashboards; returns whether it was stored.
    pub fn put_dashboard(
        &self,
        name: &str,
        body: &str,
        now_ms: i64,
        max: usize,
    ) -> Result<bool, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let exists = tx
            .query_row("SELECT 1 FROM dashboards WHERE name = ?1", [name], |_| {
                Ok(())
            })
            .optional()?
            .is_some();
        if !exists {
            let count: i64 = tx.query_row("SELECT count(*) FROM dashboards", [], |r| r.get(0))?;
            if count as usize >= max {
                return Ok(false);
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO dashboards (name, body, last_modified) VALUES (?1, ?2, ?3)",
            params![name, body, now_ms],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Dashboard `name`, if there is one.
    pub fn dashboard(&self, name: &str) -> Result<Option<DashboardRow>, StoreError> {
        let conn = self.lock();
        Ok(conn
            .query_row(
                "SELECT name, body, last_modified FROM dashboards WHERE name = ?1",
                [name],
                |r| {
                    Ok(DashboardRow {
                        name: r.get(0)?,
                        body: r.get(1)?,
                        last_modified_ms: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Up to `limit` dashboards whose names start with `prefix`, by name, after name
    /// `after`.
    pub fn dashboards(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<DashboardsPage, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT name, body, last_modified FROM dashboards
             WHERE name > ?1 AND substr(name, 1, length(?2)) = ?2
             ORDER BY name LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![after.unwrap_or(""), prefix, limit.saturating_add(1) as i64],
            |r| {
                Ok(DashboardRow {
                    name: r.get(0)?,
                    body: r.get(1)?,
                    last_modified_ms: r.get(2)?,
                })
            },
        )?;
        let mut dashboards = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        let next = if dashboards.len() > limit {
            dashboards.truncate(limit);
            dashboards.last().map(|d| d.name.clone())
        } else {
            None
        };
        Ok(DashboardsPage { dashboards, next })
    }

    /// Deletes every dashboard named, or none when some do not exist: then the names
    /// missing, in the order given (each once).
    pub fn delete_dashboards(&self, names: &[String]) -> Result<Vec<String>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut seen = BTreeSet::new();
        let mut missing = Vec::new();
        for name in names {
            if seen.insert(name.as_str())
                && tx.execute("DELETE FROM dashboards WHERE name = ?1", [name])? == 0
            {
                missing.push(name.clone());
            }
        }
        if missing.is_empty() {
            tx.commit()?;
        }
        Ok(missing)
    }
}
