//! The tags table: key/value pairs on any resource id.

use std::collections::HashMap;

use rusqlite::{Connection, params};

/// One tag on one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRow {
    /// The resource's id (`i-...`, `ami-...`, `key-...`).
    pub resource_id: String,
    /// Tag key.
    pub key: String,
    /// Tag value.
    pub value: String,
}

/// Sets (or overwrites) tags on a resource.
pub fn put(
    conn: &Connection,
    resource_id: &str,
    tags: &[(String, String)],
) -> rusqlite::Result<()> {
    for (k, v) in tags {
        conn.execute(
            "INSERT INTO tags (resource_id, key, value) VALUES (?1, ?2, ?3) \
             ON CONFLICT (resource_id, key) DO UPDATE SET value = excluded.value",
            params![resource_id, k, v],
        )?;
    }
    Ok(())
}

/// Deletes a tag; with `value`, only if the tag has that value.
pub fn delete(
    conn: &Connection,
    resource_id: &str,
    key: &str,
    value: Option<&str>,
) -> rusqlite::Result<()> {
    match value {
        Some(v) => conn.execute(
            "DELETE FROM tags WHERE resource_id = ?1 AND key = ?2 AND value = ?3",
            params![resource_id, key, v],
        )?,
        None => conn.execute(
            "DELETE FROM tags WHERE resource_id = ?1 AND key = ?2",
            params![resource_id, key],
        )?,
    };
    Ok(())
}

/// Deletes every tag of a resource.
pub fn delete_all(conn: &Connection, resource_id: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM tags WHERE resource_id = ?1", [resource_id])?;
    Ok(())
}

/// The tags of the given resources, keyed by resource id, each sorted by key.
pub fn for_resources(
    conn: &Connection,
    ids: &[&str],
) -> rusqlite::Result<HashMap<String, Vec<(String, String)>>> {
    let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut st = conn.prepare_cached(&format!(
            "SELECT resource_id, key, value FROM tags WHERE resource_id IN ({marks}) \
             ORDER BY resource_id, key"
        ))?;
        let rows = st.query_map(rusqlite::params_from_iter(chunk.iter()), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (id, k, v) = row?;
            out.entry(id).or_default().push((k, v));
        }
    }
    Ok(out)
}

/// Every tag, ordered by resource and key.
pub fn all(conn: &Connection) -> rusqlite::Result<Vec<TagRow>> {
    let mut st =
        conn.prepare_cached("SELECT resource_id, key, value FROM tags ORDER BY resource_id, key")?;
    st.query_map([], |r| {
        Ok(TagRow {
            resource_id: r.get(0)?,
            key: r.get(1)?,
            value: r.get(2)?,
        })
    })?
    .collect()
}
