//! The snapshots, snapshot_chunks and chunks tables: snapshots as ordered chunk lists, and
//! each chunk's reference count.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params};

/// One snapshot as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    /// Insertion order.
    pub seq: i64,
    /// `snap-...`.
    pub id: String,
    /// The volume it was taken from.
    pub volume_id: String,
    /// That volume's size then, in GiB.
    pub volume_size_gib: u64,
    /// Exact byte size of the snapshot.
    pub size_bytes: u64,
    /// `pending`, `completed` or `error`.
    pub state: String,
    /// 0 to 100.
    pub progress: u32,
    /// ISO 8601 start time.
    pub start_time: String,
    /// Free text.
    pub description: String,
    /// Bytes of chunks this snapshot added to the store.
    pub new_bytes: u64,
    /// How long the instance was paused for it, if it was running.
    pub pause_micros: Option<u64>,
    /// Why it failed.
    pub state_message: Option<String>,
}

const COLUMNS: &str = "seq, id, volume_id, volume_size_gib, size_bytes, state, progress, \
    start_time, description, new_bytes, pause_micros, state_message";

fn from_row(r: &Row<'_>) -> rusqlite::Result<SnapshotRow> {
    Ok(SnapshotRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        volume_id: r.get(2)?,
        volume_size_gib: r.get::<_, i64>(3)? as u64,
        size_bytes: r.get::<_, i64>(4)? as u64,
        state: r.get(5)?,
        progress: r.get(6)?,
        start_time: r.get(7)?,
        description: r.get(8)?,
        new_bytes: r.get::<_, i64>(9)? as u64,
        pause_micros: r.get::<_, Option<i64>>(10)?.map(|v| v as u64),
        state_message: r.get(11)?,
    })
}

/// Inserts a pending snapshot.
pub fn insert(conn: &Connection, s: &SnapshotRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO snapshots (id, volume_id, volume_size_gib, size_bytes, state, progress, \
         start_time, description) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            s.id,
            s.volume_id,
            s.volume_size_gib as i64,
            s.size_bytes as i64,
            s.state,
            s.progress,
            s.start_time,
            s.description
        ],
    )?;
    Ok(())
}

/// One snapshot by id.
pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<SnapshotRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM snapshots WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

/// Snapshots with any of `ids` (all if empty), in creation order.
pub fn query(conn: &Connection, ids: &[String]) -> rusqlite::Result<Vec<SnapshotRow>> {
    let mut sql = format!("SELECT {COLUMNS} FROM snapshots");
    if !ids.is_empty() {
        sql.push_str(&format!(
            " WHERE id IN ({})",
            vec!["?"; ids.len()].join(", ")
        ));
    }
    sql.push_str(" ORDER BY seq");
    let mut st = conn.prepare_cached(&sql)?;
    let args = ids.iter().map(|v| Value::Text(v.clone()));
    st.query_map(rusqlite::params_from_iter(args), from_row)?
        .collect()
}

/// Snapshots still pending (after a restart: their work was lost).
pub fn pending(conn: &Connection) -> rusqlite::Result<Vec<SnapshotRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM snapshots WHERE state = 'pending' ORDER BY seq"
    ))?;
    st.query_map([], from_row)?.collect()
}

/// Records progress (percent).
pub fn set_progress(conn: &Connection, id: &str, progress: u32) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE snapshots SET progress = ?2 WHERE id = ?1 AND state = 'pending'",
        params![id, progress],
    )?;
    Ok(())
}

/// Records how long the instance was paused.
pub fn set_pause(conn: &Connection, id: &str, micros: u64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE snapshots SET pause_micros = ?2 WHERE id = ?1",
        params![id, micros as i64],
    )?;
    Ok(())
}

/// Marks a snapshot failed.
pub fn set_error(conn: &Connection, id: &str, message: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE snapshots SET state = 'error', state_message = ?2 WHERE id = ?1",
        params![id, message],
    )?;
    Ok(())
}

/// Records the size of the volume a snapshot was taken of, in bytes.
pub fn set_size_bytes(conn: &Connection, id: &str, bytes: u64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE snapshots SET size_bytes = ?2 WHERE id = ?1",
        params![id, bytes as i64],
    )?;
    Ok(())
}

/// Completes a snapshot: records its chunks, takes a reference on each, and stores the
/// bytes of the chunks that are new to the store. Call inside a transaction, after every
/// chunk file is durable.
pub fn complete(conn: &Connection, id: &str, chunks: &[ChunkRef]) -> rusqlite::Result<u64> {
    let mut new_bytes = 0u64;
    for c in chunks {
        conn.execute(
            "INSERT INTO snapshot_chunks (snapshot_id, idx, hash) VALUES (?1, ?2, ?3)",
            params![id, c.index as i64, c.hash],
        )?;
        let bumped = conn.execute(
            "UPDATE chunks SET refs = refs + 1 WHERE hash = ?1",
            [&c.hash],
        )?;
        if bumped == 0 {
            conn.execute(
                "INSERT INTO chunks (hash, refs, bytes) VALUES (?1, 1, ?2)",
                params![c.hash, c.len as i64],
            )?;
            new_bytes += c.len;
        }
    }
    conn.execute(
        "UPDATE snapshots SET state = 'completed', progress = 100, new_bytes = ?2 \
         WHERE id = ?1",
        params![id, new_bytes as i64],
    )?;
    Ok(new_bytes)
}

/// Records `copy` (a new row) as a completed copy of completed snapshot `source`: the same
/// chunks, each with one more reference, so no byte is stored twice. Call inside a
/// transaction.
pub fn copy(conn: &Connection, source: &SnapshotRow, copy: &SnapshotRow) -> rusqlite::Result<()> {
    insert(conn, copy)?;
    conn.execute(
        "UPDATE snapshots SET size_bytes = ?2 WHERE id = ?1",
        params![copy.id, source.size_bytes as i64],
    )?;
    let list = chunks(conn, &source.id)?;
    complete(conn, &copy.id, &list)?;
    Ok(())
}

/// The chunks of a snapshot, in volume order.
pub fn chunks(conn: &Connection, id: &str) -> rusqlite::Result<Vec<ChunkRef>> {
    let mut st = conn.prepare_cached(
        "SELECT s.idx, s.hash, c.bytes FROM snapshot_chunks s JOIN chunks c ON c.hash = s.hash \
         WHERE s.snapshot_id = ?1 ORDER BY s.idx",
    )?;
    st.query_map([id], |r| {
        Ok(ChunkRef {
            index: r.get::<_, i64>(0)? as u64,
            hash: r.get(1)?,
            len: r.get::<_, i64>(2)? as u64,
        })
    })?
    .collect()
}

/// Deletes a snapshot, drops its references, and returns the hashes no snapshot uses any
/// more (their rows are gone; the caller removes the files after the commit).
pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<Vec<String>> {
    let hashes: Vec<String> = {
        let mut st =
            conn.prepare_cached("SELECT hash FROM snapshot_chunks WHERE snapshot_id = ?1")?;
        st.query_map([id], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    let mut freed = Vec::new();
    for h in &hashes {
        conn.execute("UPDATE chunks SET refs = refs - 1 WHERE hash = ?1", [h])?;
        let gone = conn.execute("DELETE FROM chunks WHERE hash = ?1 AND refs <= 0", [h])?;
        if gone > 0 {
            freed.push(h.clone());
        }
    }
    conn.execute("DELETE FROM snapshot_chunks WHERE snapshot_id = ?1", [id])?;
    conn.execute("DELETE FROM tags WHERE resource_id = ?1", [id])?;
    conn.execute("DELETE FROM snapshots WHERE id = ?1", [id])?;
    Ok(freed)
}

/// Whether chunk `hash` has a row (is referenced).
pub fn chunk_known(conn: &Connection, hash: &str) -> rusqlite::Result<bool> {
    conn.query_row("SELECT COUNT(*) FROM chunks WHERE hash = ?1", [hash], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n > 0)
}

/// Bytes of all referenced chunks.
pub fn stored_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT COALESCE(SUM(bytes), 0) FROM chunks", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as u64)
}

/// One stored chunk of a snapshot: its index (offset / the chunk size) and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRef {
    /// Position in the volume, in chunks.
    pub index: u64,
    /// Lowercase hex SHA-256 of the chunk's bytes.
    pub hash: String,
    /// The chunk's length (the chunk size, or less for the last one).
    pub len: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> crate::Db {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let db = crate::Db::open(&path).unwrap();
        std::mem::forget(dir);
        db
    }

    fn snap(id: &str) -> SnapshotRow {
        SnapshotRow {
            seq: 0,
            id: id.into(),
            volume_id: "vol-1".into(),
            volume_size_gib: 1,
            size_bytes: 1 << 30,
            state: "pending".into(),
            progress: 0,
            start_time: String::new(),
            description: String::new(),
            new_bytes: 0,
            pause_micros: None,
            state_message: None,
        }
    }

    fn c(index: u64, hash: &str) -> ChunkRef {
        ChunkRef {
            index,
            hash: hash.into(),
            len: 1 << 20,
        }
    }

    #[test]
    fn references_are_counted_and_freed_only_when_unused() {
        let db = db();
        let conn = db.lock();
        insert(&conn, &snap("snap-a")).unwrap();
        insert(&conn, &snap("snap-b")).unwrap();
        assert_eq!(
            complete(&conn, "snap-a", &[c(0, "aa"), c(1, "bb")]).unwrap(),
            2 << 20
        );
        assert_eq!(
            complete(&conn, "snap-b", &[c(0, "aa"), c(1, "cc")]).unwrap(),
            1 << 20
        );
        assert_eq!(stored_bytes(&conn).unwrap(), 3 << 20);
        assert_eq!(
            chunks(&conn, "snap-b").unwrap(),
            vec![c(0, "aa"), c(1, "cc")]
        );
        assert_eq!(delete(&conn, "snap-a").unwrap(), vec!["bb".to_string()]);
        assert!(chunk_known(&conn, "aa").unwrap());
        assert_eq!(delete(&conn, "snap-b").unwrap().len(), 2);
        assert_eq!(stored_bytes(&conn).unwrap(), 0);
        assert!(get(&conn, "snap-b").unwrap().is_none());
    }
}
