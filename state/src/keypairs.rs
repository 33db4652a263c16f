//! The key_pairs table: public halves and fingerprints (private keys are never stored).

use rusqlite::{Connection, OptionalExtension, Row, params};

/// A stored key pair.
#[derive(Debug, Clone)]
pub struct KeyPairRow {
    /// `key-...`.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `ed25519` or `rsa`.
    pub key_type: String,
    /// EC2-style fingerprint.
    pub fingerprint: String,
    /// OpenSSH public key line.
    pub public_key: String,
    /// ISO 8601 creation time.
    pub created: String,
}

const COLUMNS: &str = "id, name, key_type, fingerprint, public_key, created";

fn from_row(r: &Row<'_>) -> rusqlite::Result<KeyPairRow> {
    Ok(KeyPairRow {
        id: r.get(0)?,
        name: r.get(1)?,
        key_type: r.get(2)?,
        fingerprint: r.get(3)?,
        public_key: r.get(4)?,
        created: r.get(5)?,
    })
}

/// Inserts a key pair.
pub fn insert(conn: &Connection, k: &KeyPairRow) -> rusqlite::Result<()> {
    conn.execute(
        &format!("INSERT INTO key_pairs ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![
            k.id,
            k.name,
            k.key_type,
            k.fingerprint,
            k.public_key,
            k.created
        ],
    )?;
    Ok(())
}

/// One key pair by name.
pub fn by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<KeyPairRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM key_pairs WHERE name = ?1"),
        [name],
        from_row,
    )
    .optional()
}

/// One key pair by id.
pub fn by_id(conn: &Connection, id: &str) -> rusqlite::Result<Option<KeyPairRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM key_pairs WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

/// Every key pair, in creation order.
pub fn all(conn: &Connection) -> rusqlite::Result<Vec<KeyPairRow>> {
    let mut st = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM key_pairs ORDER BY seq"))?;
    st.query_map([], from_row)?.collect()
}

/// Deletes a key pair and its tags.
pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM tags WHERE resource_id = ?1", [id])?;
    conn.execute("DELETE FROM key_pairs WHERE id = ?1", [id])?;
    Ok(())
}
