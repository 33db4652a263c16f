//! CloudWatch alarms: one row per alarm (metric or composite) with its configuration, as the
//! control plane writes it (JSON), the columns the queries select on, and its state; and
//! the alarm history, kept 30 days and bounded in rows.

use rusqlite::{OptionalExtension, Row, params, params_from_iter};

use super::{MetricKey, MetricsStore, StoreError};

/// How long history items are kept, in milliseconds (CloudWatch keeps 30 days).
pub const HISTORY_RETENTION_MS: i64 = 30 * 86_400 * 1000;
/// The most history items kept; the oldest go first past it.
pub const MAX_HISTORY: i64 = 200_000;

/// A stored alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmRow {
    /// Its name.
    pub name: String,
    /// `MetricAlarm` or `CompositeAlarm`.
    pub kind: String,
    /// Its configuration, the control plane's JSON.
    pub config: String,
    /// The metric of a single-metric alarm, for DescribeAlarmsForMetric.
    pub metric: Option<MetricKey>,
    /// Every action of the alarm (OK, ALARM and INSUFFICIENT_DATA), for `ActionPrefix`.
    pub actions: Vec<String>,
    /// Whether its actions run.
    pub actions_enabled: bool,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    /// Why it is in that state.
    pub reason: String,
    /// The reason as JSON, when there is one.
    pub reason_data: Option<String>,
    /// When the state was last updated (milliseconds since the epoch).
    pub state_updated_ms: i64,
    /// When the state last changed value.
    pub state_transitioned_ms: i64,
    /// When the configuration was last put.
    pub config_updated_ms: i64,
    /// When it is next evaluated (seconds since the epoch).
    pub next_eval: i64,
}

/// One history item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The alarm's name.
    pub alarm_name: String,
    /// `MetricAlarm` or `CompositeAlarm`.
    pub alarm_type: String,
    /// When (milliseconds since the epoch).
    pub time_ms: i64,
    /// `ConfigurationUpdate`, `StateUpdate` or `Action`.
    pub item_type: String,
    /// The one-line summary.
    pub summary: String,
    /// The details, JSON.
    pub data: String,
}

/// What DescribeAlarms selects (all given conditions hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlarmFilter {
    /// Only these names (none: any).
    pub names: Vec<String>,
    /// Names starting with this.
    pub prefix: Option<String>,
    /// Only these kinds (none: any).
    pub kinds: Vec<String>,
    /// Only in this state.
    pub state: Option<String>,
    /// Only alarms with an action starting with this.
    pub action_prefix: Option<String>,
}

/// What DescribeAlarmHistory selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    /// One alarm's items.
    pub alarm_name: Option<String>,
    /// Only these alarm types (none: any).
    pub alarm_types: Vec<String>,
    /// Only this item type.
    pub item_type: Option<String>,
    /// From (inclusive, milliseconds).
    pub start_ms: Option<i64>,
    /// To (inclusive, milliseconds).
    pub end_ms: Option<i64>,
    /// Oldest first (else newest first).
    pub ascending: bool,
}

/// A page of history: the items and the id to continue after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The items.
    pub items: Vec<HistoryRow>,
    /// Where the next page starts (an item id), when there is one.
    pub next: Option<i64>,
}

const ALARM_COLUMNS: &str = "name, kind, config, namespace, metric_name, dimensions, actions,
    actions_enabled, state, reason, reason_data, state_updated, state_transitioned,
    config_updated, next_eval";

fn alarm_row(r: &Row<'_>) -> rusqlite::Result<AlarmRow> {
    let namespace: Option<String> = r.get(3)?;
    let metric_name: Option<String> = r.get(4)?;
    let dimensions: Option<String> = r.get(5)?;
    let metric = match (namespace, metric_name) {
        (Some(namespace), Some(name)) => Some(MetricKey {
            namespace,
            name,
            dimensions: dimensions
                .and_then(|d| serde_json::from_str(&d).ok())
                .unwrap_or_default(),
        }),
        _ => None,
    };
    let actions: String = r.get(6)?;
    Ok(AlarmRow {
        name: r.get(0)?,
        kind: r.get(1)?,
        config: r.get(2)?,
        metric,
        actions: serde_json::from_str(&actions).unwrap_or_default(),
        actions_enabled: r.get(7)?,
        state: r.get(8)?,
        reason: r.get(9)?,
        reason_data: r.get(10)?,
        state_updated_ms: r.get(11)?,
        state_transitioned_ms: r.get(12)?,
        config_updated_ms: r.get(13)?,
        next_eval: r.get(14)?,
    })
}

fn insert_history(tx: &rusqlite::Transaction<'_>, items: &[HistoryRow]) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO alarm_history (alarm_name, alarm_type, ts, item_type, summary, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for h in items {
        stmt.execute(params![
            h.alarm_name,
            h.alarm_type,
            h.time_ms,
            h.item_type,
            h.summary,
            h.data
        ])?;
    }
    Ok(())
}

impl MetricsStore {
    /// Makes alarm `row`, or replaces the configuration of the one of that name (its state,
    /// reason and state times kept, as CloudWatch keeps them), unless that would make more
    /// than `max` alarms; records `history` with it. Returns whether it was stored.
    pub fn put_alarm(
        &self,
        row: &AlarmRow,
        history: &HistoryRow,
        max: usize,
    ) -> Result<bool, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let exists = tx
            .query_row("SELECT 1 FROM alarms WHERE name = ?1", [&row.name], |_| {
                Ok(())
            })
            .optional()?
            .is_some();
        if !exists {
            let count: i64 = tx.query_row("SELECT count(*) FROM alarms", [], |r| r.get(0))?;
            if count as usize >= max {
                return Ok(false);
            }
        }
        let (namespace, metric_name, dimensions) = match &row.metric {
            Some(k) => (
                Some(k.namespace.as_str()),
                Some(k.name.as_str()),
                Some(k.canonical_dimensions()),
            ),
            None => (None, None, None),
        };
        let actions = serde_json::to_string(&row.actions).unwrap_or_else(|_| "[]".into());
        tx.execute(
            "INSERT INTO alarms (name, kind, config, namespace, metric_name, dimensions, actions,
                actions_enabled, state, reason, reason_data, state_updated, state_transitioned,
                config_updated, next_eval)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, config = excluded.config,
                namespace = excluded.namespace, metric_name = excluded.metric_name,
                dimensions = excluded.dimensions, actions = excluded.actions,
                actions_enabled = excluded.actions_enabled,
                config_updated = excluded.config_updated, next_eval = excluded.next_eval",
            params![
                row.name,
                row.kind,
                row.config,
                namespace,
                metric_name,
                dimensions,
                actions,
                row.actions_enabled,
                row.state,
                row.reason,
                row.reason_data,
                row.state_updated_ms,
                row.state_transitioned_ms,
                row.config_updated_ms,
                row.next_eval
            ],
        )?;
        insert_history(&tx, std::slice::from_ref(history))?;
        tx.commit()?;
        Ok(true)
    }

    /// Replaces alarm `name`'s configuration JSON without touching its configuration time
    /// (a change of its tags); returns whether it exists.
    pub fn set_alarm_config(&self, name: &str, config: &str) -> Result<bool, StoreError> {
        let conn = self.lock();
        Ok(conn.execute(
            "UPDATE alarms SET config = ?2 WHERE name = ?1",
            params![name, config],
        )? == 1)
    }

    /// Alarm `name`, if there is one.
    pub fn alarm(&self, name: &str) -> Result<Option<AlarmRow>, StoreError> {
        let conn = self.lock();
        let sql = format!("SELECT {ALARM_COLUMNS} FROM alarms WHERE name = ?1");
        Ok(conn.query_row(&sql, [name], alarm_row).optional()?)
    }

    /// Up to `limit` alarms matching `filter`, by name, after name `after`; and whether more
    /// follow.
    pub fn alarms(
        &self,
        filter: &AlarmFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<AlarmRow>, bool), StoreError> {
        let mut sql = format!("SELECT {ALARM_COLUMNS} FROM alarms WHERE name > ?");
        let mut args: Vec<String> = vec![after.unwrap_or("").to_string()];
        let mut any_of = |sql: &mut String, column: &str, values: &[String]| {
            if !values.is_empty() {
                let marks = vec!["?"; values.len()].join(", ");
                sql.push_str(&format!(" AND {column} IN ({marks})"));
                args.extend(values.iter().cloned());
            }
        };
        any_of(&mut sql, "name", &filter.names);
        any_of(&mut sql, "kind", &filter.kinds);
        if let Some(p) = &filter.prefix {
            sql.push_str(" AND substr(name, 1, length(?)) = ?");
            args.extend([p.clone(), p.clone()]);
        }
        if let Some(s) = &filter.state {
            sql.push_str(" AND state = ?");
            args.push(s.clone());
        }
        if let Some(p) = &filter.action_prefix {
            sql.push_str(
                " AND EXISTS (SELECT 1 FROM json_each(alarms.actions)
                   WHERE substr(json_each.value, 1, length(?)) = ?)",
            );
            args.extend([p.clone(), p.clone()]);
        }
        sql.push_str(&format!(" ORDER BY name LIMIT {}", limit.saturating_add(1)));
        let conn = self.lock();
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt
            .query_map(params_from_iter(args.iter()), alarm_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        Ok((rows, more))
    }

    /// The alarms on metric `namespace`/`name` (any dimensions), by name, at most `limit`.
    pub fn alarms_for_metric(
        &self,
        namespace: &str,
        name: &str,
        limit: usize,
    ) -> Result<Vec<AlarmRow>, StoreError> {
        let conn = self.lock();
        let sql = format!(
            "SELECT {ALARM_COLUMNS} FROM alarms WHERE namespace = ?1 AND metric_name = ?2
             ORDER BY name LIMIT ?3"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![namespace, name, limit as i64], alarm_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The alarms of `kind` due for evaluation at `now` (seconds), at most `limit`, the
    /// longest overdue first.
    pub fn due_alarms(
        &self,
        kind: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<AlarmRow>, StoreError> {
        let conn = self.lock();
        let sql = format!(
            "SELECT {ALARM_COLUMNS} FROM alarms WHERE kind = ?1 AND next_eval <= ?2
             ORDER BY next_eval, name LIMIT ?3"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![kind, now, limit as i64], alarm_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Every alarm's (name, state, state updated ms).
    pub fn all_alarm_states(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached("SELECT name, state, state_updated FROM alarms")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Sets when each alarm named is next evaluated, in one transaction.
    pub fn set_next_evals(&self, due: &[(String, i64)]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("UPDATE alarms SET next_eval = ?2 WHERE name = ?1")?;
            for (name, at) in due {
                stmt.execute(params![name, at])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets alarm `name`'s state, reason and reason data at `now_ms` (its transition time
    /// too when the value changes) and records `history` with it, unless its configuration
    /// changed after `config_seen_ms` (an evaluation of an older configuration) or it is
    /// gone. Returns the state before, when it was set.
    pub fn set_alarm_state(
        &self,
        name: &str,
        update: &StateUpdate<'_>,
        history: &[HistoryRow],
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let before: Option<(String, i64)> = tx
            .query_row(
                "SELECT state, config_updated FROM alarms WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((before, config_updated)) = before else {
            return Ok(None);
        };
        if update
            .config_seen_ms
            .is_some_and(|seen| seen != config_updated)
        {
            return Ok(None);
        }
        tx.execute(
            "UPDATE alarms SET state = ?2, reason = ?3, reason_data = ?4, state_updated = ?5,
                state_transitioned = CASE WHEN state = ?2 THEN state_transitioned ELSE ?5 END
             WHERE name = ?1",
            params![
                name,
                update.state,
                update.reason,
                update.reason_data,
                update.now_ms
            ],
        )?;
        insert_history(&tx, history)?;
        tx.commit()?;
        Ok(Some(before))
    }

    /// Records history items.
    pub fn add_alarm_history(&self, items: &[HistoryRow]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        insert_history(&tx, items)?;
        tx.commit()?;
        Ok(())
    }

    /// Turns the actions of every alarm named on or off; returns the names that exist.
    pub fn set_alarm_actions(&self, names: &[String], enabled: bool) -> Result<usize, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut changed = 0;
        for n in names {
            changed += tx.execute(
                "UPDATE alarms SET actions_enabled = ?2 WHERE name = ?1",
                params![n, enabled],
            )?;
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Deletes every alarm named, or none when some do not exist: then the names missing,
    /// each once, in the order given. Their history stays until it ages out, as
    /// CloudWatch keeps it.
    pub fn delete_alarms(&self, names: &[String]) -> Result<Vec<String>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut seen = std::collections::BTreeSet::new();
        let mut missing = Vec::new();
        for name in names {
            if !seen.insert(name.as_str()) {
                continue;
            }
            if tx.execute("DELETE FROM alarms WHERE name = ?1", [name])? == 0 {
                missing.push(name.clone());
            }
        }
        if missing.is_empty() {
            tx.commit()?;
        }
        Ok(missing)
    }

    /// Up to `limit` history items matching `filter`, after item `after`.
    pub fn alarm_history(
        &self,
        filter: &HistoryFilter,
        after: Option<i64>,
        limit: usize,
    ) -> Result<HistoryPage, StoreError> {
        let mut sql = String::from(
            "SELECT id, alarm_name, alarm_type, ts, item_type, summary, data FROM alarm_history
             WHERE 1",
        );
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        use rusqlite::types::Value as V;
        if let Some(n) = &filter.alarm_name {
            sql.push_str(" AND alarm_name = ?");
            args.push(V::Text(n.clone()));
        }
        if !filter.alarm_types.is_empty() {
            let marks = vec!["?"; filter.alarm_types.len()].join(", ");
            sql.push_str(&format!(" AND alarm_type IN ({marks})"));
            args.extend(filter.alarm_types.iter().map(|t| V::Text(t.clone())));
        }
        if let Some(t) = &filter.item_type {
            sql.push_str(" AND item_type = ?");
            args.push(V::Text(t.clone()));
        }
        if let Some(s) = filter.start_ms {
            sql.push_str(" AND ts >= ?");
            args.push(V::Integer(s));
        }
        if let Some(e) = filter.end_ms {
            sql.push_str(" AND ts <= ?");
            args.push(V::Integer(e));
        }
        // Items are ordered by (ts, id); the page token is the last item's id.
        let (cmp, order) = if filter.ascending {
            (">", "ASC")
        } else {
            ("<", "DESC")
        };
        if let Some(a) = after {
            sql.push_str(&format!(
                " AND (ts, id) {cmp} (SELECT ts, id FROM alarm_history WHERE id = ?)"
            ));
            args.push(V::Integer(a));
        }
        sql.push_str(&format!(
            " ORDER BY ts {order}, id {order} LIMIT {}",
            limit.saturating_add(1)
        ));
        let conn = self.lock();
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt
            .query_map(params_from_iter(args.iter()), |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    HistoryRow {
                        alarm_name: r.get(1)?,
                        alarm_type: r.get(2)?,
                        time_ms: r.get(3)?,
                        item_type: r.get(4)?,
                        summary: r.get(5)?,
                        data: r.get(6)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|r| r.0)
        } else {
            None
        };
        Ok(HistoryPage {
            items: rows.into_iter().map(|r| r.1).collect(),
            next,
        })
    }

    /// Drops history items older than CloudWatch's 30 days before `now_ms`, then the oldest
    /// past [`MAX_HISTORY`]; returns how many went.
    pub fn prune_alarm_history(&self, now_ms: i64) -> Result<usize, StoreError> {
        let conn = self.lock();
        let mut gone = conn.execute(
            "DELETE FROM alarm_history WHERE ts < ?1",
            [now_ms - HISTORY_RETENTION_MS],
        )?;
        gone += conn.execute(
            "DELETE FROM alarm_history WHERE id <= (SELECT max(id) FROM alarm_history) - ?1",
            [MAX_HISTORY],
        )?;
        Ok(gone)
    }
}

/// A state set by [`MetricsStore::set_alarm_state`].
#[derive(Debug, Clone, PartialEq)]
pub struct StateUpdate<'a> {
    /// The new state value.
    pub state: &'a str,
    /// Its reason.
    pub reason: &'a str,
    /// Its reason data.
    pub reason_data: Option<&'a str>,
    /// Now, in milliseconds.
    pub now_ms: i64,
    /// The configuration time the evaluation read; `None` for a caller's SetAlarmState.
    pub config_seen_ms: Option<i64>,
}

#[cfg(test)]
#[path = "alarms_tests.rs"]
mod tests;
