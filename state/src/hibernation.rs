//! The hibernation table: which instances may hibernate, and the saved state an instance
//! resumes from at its next start.

use rusqlite::{Connection, OptionalExtension, params};

/// An instance's hibernation settings and state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HibernationRow {
    /// Launched with `HibernationOptions.Configured=true`.
    pub configured: bool,
    /// The saved VM state it resumes from (set while hibernated).
    pub state_file: Option<String>,
}

/// The row of `instance_id` (defaults when absent).
pub fn get(conn: &Connection, instance_id: &str) -> rusqlite::Result<HibernationRow> {
    Ok(conn
        .query_row(
            "SELECT configured, state_file FROM hibernation WHERE instance_id = ?1",
            [instance_id],
            |r| {
                Ok(HibernationRow {
                    configured: r.get(0)?,
                    state_file: r.get(1)?,
                })
            },
        )
        .optional()?
        .unwrap_or_default())
}

/// The instances that may hibernate.
pub fn configured(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT instance_id FROM hibernation WHERE configured = 1")?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

/// Records whether the instance may hibernate.
pub fn set_configured(conn: &Connection, instance_id: &str, on: bool) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO hibernation (instance_id, configured) VALUES (?1, ?2) \
         ON CONFLICT(instance_id) DO UPDATE SET configured = excluded.configured",
        params![instance_id, on],
    )?;
    Ok(())
}

/// Sets or clears the saved state to resume from.
pub fn set_state_file(
    conn: &Connection,
    instance_id: &str,
    file: Option<&str>,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO hibernation (instance_id, state_file) VALUES (?1, ?2) \
         ON CONFLICT(instance_id) DO UPDATE SET state_file = excluded.state_file",
        params![instance_id, file],
    )?;
    Ok(())
}
