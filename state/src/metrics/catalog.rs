//! Listing the metrics put.

use rusqlite::params;

use super::{MetricKey, MetricsStore, StoreError};

/// A dimension a listed metric must have: a name, and a value when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimensionFilter {
    /// The dimension's name.
    pub name: String,
    /// Its value, or any.
    pub value: Option<String>,
}

/// Which metrics to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this metric name.
    pub name: Option<String>,
    /// Only metrics with every one of these dimensions.
    pub dimensions: Vec<DimensionFilter>,
    /// Only metrics put at or after this time (seconds since the epoch).
    pub put_since: i64,
}

/// A page of metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The metrics, in the order they were first put.
    pub metrics: Vec<MetricKey>,
    /// Where the next page starts, when there is one.
    pub next: Option<i64>,
}

impl ListFilter {
    fn keeps(&self, key: &MetricKey) -> bool {
        self.dimensions.iter().all(|f| {
            key.dimensions
                .iter()
                .any(|(n, v)| *n == f.name && f.value.as_ref().is_none_or(|want| want == v))
        })
    }
}

impl MetricsStore {
    /// Up to `limit` metrics that `filter` keeps, from position `after` (0 for the first
    /// page, else a page's `next`). One pass over the metrics of the namespace and name
    /// asked for.
    pub fn list(
        &self,
        filter: &ListFilter,
        after: i64,
        limit: usize,
    ) -> Result<Listed, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, namespace, name, dimensions FROM metrics
             WHERE id > ?1 AND (?2 IS NULL OR namespace = ?2) AND (?3 IS NULL OR name = ?3)
               AND last_put >= ?4
             ORDER BY id",
        )?;
        let mut rows = stmt.query(params![
            after,
            filter.namespace,
            filter.name,
            filter.put_since
        ])?;
        let mut metrics = Vec::new();
        let mut last = after;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let dimensions: String = row.get(3)?;
            let key = MetricKey {
                namespace: row.get(1)?,
                name: row.get(2)?,
                // Written by this module from a list of pairs; a row that does not read
                // back is listed without dimensions rather than failing the whole list.
                dimensions: serde_json::from_str(&dimensions).unwrap_or_default(),
            };
            if !filter.keeps(&key) {
                continue;
            }
            if metrics.len() == limit {
                return Ok(Listed {
                    metrics,
                    next: Some(last),
                });
            }
            last = id;
            metrics.push(key);
        }
        Ok(Listed {
            metrics,
            next: None,
        })
    }
}
