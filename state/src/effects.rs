//! The effects journal: what the host side must still do for a change of state. An effect
//! is recorded in the transaction that makes the change, and removed once it has been
//! applied; what a crash leaves here is applied at the next start. The journal stores an
//! effect as three strings; what they mean is the control plane's business.

use rusqlite::{Connection, OptionalExtension, params};

/// One recorded effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectRow {
    /// Its place in the journal (effects are applied in this order).
    pub seq: i64,
    /// What to do (`sync-firewall`, `delete-volume`, ...).
    pub kind: String,
    /// What to do it to (a resource id, or empty).
    pub target: String,
    /// Anything more the effect needs (a size, a list).
    pub detail: String,
    /// When it was recorded.
    pub recorded: String,
}

/// Records an effect (inside the caller's transaction); returns its `seq`.
pub fn record(conn: &Connection, kind: &str, target: &str, detail: &str) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO effects (kind, target, detail, recorded) VALUES (?1, ?2, ?3, ?4)",
        params![kind, target, detail, crate::now_iso()],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Every effect not yet applied, oldest first.
pub fn pending(conn: &Connection) -> rusqlite::Result<Vec<EffectRow>> {
    let mut stmt = conn
        .prepare_cached("SELECT seq, kind, target, detail, recorded FROM effects ORDER BY seq")?;
    stmt.query_map([], |r| {
        Ok(EffectRow {
            seq: r.get(0)?,
            kind: r.get(1)?,
            target: r.get(2)?,
            detail: r.get(3)?,
            recorded: r.get(4)?,
        })
    })?
    .collect()
}

/// Whether effect `seq` is still to be applied.
pub fn is_pending(conn: &Connection, seq: i64) -> rusqlite::Result<bool> {
    conn.query_row("SELECT 1 FROM effects WHERE seq = ?1", [seq], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}

/// Marks effect `seq` applied, with every earlier one of the same kind and target (applying
/// an effect again does what applying it once does, so one application covers them all).
pub fn applied(conn: &Connection, seq: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM effects WHERE seq <= ?1 AND (kind, target, detail) = \
         (SELECT kind, target, detail FROM effects WHERE seq = ?1)",
        [seq],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::migrations::migrate(&mut conn).unwrap();
        conn
    }

    #[test]
    fn effects_are_pending_in_order_until_applied() {
        let conn = conn();
        let a = record(&conn, "sync-firewall", "", "").unwrap();
        let b = record(&conn, "delete-volume-file", "vol-1", "").unwrap();
        let c = record(&conn, "sync-firewall", "", "").unwrap();
        let kinds: Vec<i64> = pending(&conn).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(kinds, vec![a, b, c]);
        // Applying the later firewall sync covers the earlier one, not the volume's.
        assert_eq!(applied(&conn, c).unwrap(), 2);
        assert!(!is_pending(&conn, a).unwrap());
        assert!(is_pending(&conn, b).unwrap());
        assert_eq!(applied(&conn, b).unwrap(), 1);
        assert!(pending(&conn).unwrap().is_empty());
    }

    #[test]
    fn an_effect_recorded_in_a_rolled_back_transaction_is_not_kept() {
        let mut conn = conn();
        {
            let tx = conn.transaction().unwrap();
            record(&tx, "sync-firewall", "", "").unwrap();
        }
        assert!(pending(&conn).unwrap().is_empty());
    }
}
