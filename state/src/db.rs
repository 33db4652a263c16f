//! The SQLite database: one connection in WAL mode behind a mutex.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

use super::migrations::{self, MigrateError};

/// Errors opening the database.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// SQLite could not open or configure the file.
    #[error("cannot open the state database {path}")]
    Sqlite {
        /// The database file.
        path: String,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The schema could not be migrated.
    #[error("cannot migrate the state database")]
    Migrate(#[source] MigrateError),
}

/// The agent's state database. Every access holds the one connection's lock, so each
/// read-check-write sequence done under [`Db::lock`] is atomic.
#[derive(Debug)]
pub struct Db {
    conn: Mutex<Connection>,
}

/// A connection to the SQLite file at `path` (created if needed) as the agent's databases
/// use it: WAL, synced at checkpoints, up to 32 MiB of pages cached (allocated as used, so
/// that reading a large table does not go back to the file for every page), and five
/// seconds' patience with a lock.
pub(crate) fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -32768)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

impl Db {
    /// Opens (creating if needed) the database at `path`, in WAL mode, and migrates it.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let sqlite = |source| OpenError::Sqlite {
            path: path.display().to_string(),
            source,
        };
        let mut conn = connect(path).map_err(sqlite)?;
        migrations::migrate(&mut conn).map_err(OpenError::Migrate)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Locks the connection.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns the value stored under `key` in the metadata table, creating it with `init`.
    pub fn meta_or_init(
        &self,
        key: &str,
        init: impl FnOnce() -> String,
    ) -> rusqlite::Result<String> {
        let conn = self.lock();
        let found: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        if let Some(v) = found {
            return Ok(v);
        }
        let v = init();
        conn.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", [key, &v])?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_panic_holding_the_lock_rolls_back_and_later_users_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(&dir.path().join("state.db")).unwrap());
        assert_eq!(db.meta_or_init("k", || "before".into()).unwrap(), "before");
        let shared = db.clone();
        let unit = std::thread::spawn(move || {
            let mut conn = shared.lock();
            let tx = conn.transaction().unwrap();
            tx.execute("UPDATE meta SET value = 'half done' WHERE key = 'k'", [])
                .unwrap();
            panic!("injected defect inside a transaction");
        });
        assert!(unit.join().is_err());
        assert!(db.conn.is_poisoned());
        assert_eq!(db.meta_or_init("k", || "unused".into()).unwrap(), "before");
        assert_eq!(db.meta_or_init("k2", || "after".into()).unwrap(), "after");
    }
}
