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

/// The kinds of resource CreateTags and DeleteTags name by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taggable {
    /// `i-...`.
    Instance,
    /// `ami-...`.
    Image,
    /// `key-...`.
    KeyPair,
    /// `vpc-...`.
    Vpc,
    /// `subnet-...`.
    Subnet,
    /// `sg-...`.
    SecurityGroup,
    /// `eni-...`.
    NetworkInterface,
    /// `eipalloc-...`.
    ElasticIp,
    /// `lt-...`.
    LaunchTemplate,
}

impl Taggable {
    /// The statement that says whether a resource of this kind has the id `?1`.
    fn exists_query(self) -> &'static str {
        match self {
            Self::Instance => "SELECT EXISTS(SELECT 1 FROM instances WHERE id = ?1)",
            Self::Image => "SELECT EXISTS(SELECT 1 FROM images WHERE id = ?1)",
            Self::KeyPair => "SELECT EXISTS(SELECT 1 FROM key_pairs WHERE id = ?1)",
            Self::Vpc => "SELECT EXISTS(SELECT 1 FROM vpcs WHERE id = ?1)",
            Self::Subnet => "SELECT EXISTS(SELECT 1 FROM subnets WHERE id = ?1)",
            Self::SecurityGroup => "SELECT EXISTS(SELECT 1 FROM security_groups WHERE id = ?1)",
            Self::NetworkInterface => {
                "SELECT EXISTS(SELECT 1 FROM network_interfaces WHERE id = ?1)"
            }
            Self::ElasticIp => "SELECT EXISTS(SELECT 1 FROM addresses WHERE allocation_id = ?1)",
            Self::LaunchTemplate => "SELECT EXISTS(SELECT 1 FROM launch_templates WHERE id = ?1)",
        }
    }
}

/// Whether a resource of kind `kind` has the id `id`.
pub fn resource_exists(conn: &Connection, kind: Taggable, id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached(kind.exists_query())?
        .query_row([id], |r| r.get(0))
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
    if ids.len() > 500 {
        // Many resources: one scan of the table beats many large IN lists. It is read in
        // storage order (ordering by the key index would seek the table once a row) and
        // each resource's tags are sorted here.
        let wanted: std::collections::HashSet<&str> = ids.iter().copied().collect();
        let mut st = conn.prepare_cached("SELECT resource_id, key, value FROM tags")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let id = r.get_ref(0)?.as_str()?;
            if wanted.contains(id) {
                out.entry(id.to_string())
                    .or_default()
                    .push((r.get(1)?, r.get(2)?));
            }
        }
        for list in out.values_mut() {
            list.sort_unstable();
        }
        return Ok(out);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_resources_is_the_same_for_few_and_many_ids() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::migrations::migrate(&mut conn).unwrap();
        let ids: Vec<String> = (0..700).map(|i| format!("i-{i:017x}")).collect();
        for (i, id) in ids.iter().enumerate() {
            if i % 3 != 0 {
                put(
                    &conn,
                    id,
                    &[("b".into(), i.to_string()), ("a".into(), "x".into())],
                )
                .unwrap();
            }
        }
        put(
            &conn,
            "ami-00000000000000001",
            &[("a".into(), "img".into())],
        )
        .unwrap();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let many = for_resources(&conn, &refs).unwrap();
        assert_eq!(many.len(), 466);
        assert!(!many.contains_key("ami-00000000000000001"));
        for chunk in refs.chunks(100) {
            let few = for_resources(&conn, chunk).unwrap();
            for id in chunk {
                assert_eq!(few.get(*id), many.get(*id), "{id}");
            }
        }
        assert_eq!(
            many[&ids[1]],
            vec![
                ("a".to_string(), "x".to_string()),
                ("b".to_string(), "1".to_string())
            ]
        );
    }
}
