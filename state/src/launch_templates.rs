//! EC2 launch templates and their versions. Each version's data is kept as the JSON text the
//! control plane gives (`control::ec2::launch_templates::LaunchData`); this module does not
//! read it.

use rusqlite::{Connection, OptionalExtension, Row, params};

/// One launch template. Its latest version is the highest it has; a new version takes the
/// next number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRow {
    /// Creation order, for paging.
    pub seq: i64,
    /// `lt-...`.
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// When it was made (`2026-01-02T03:04:05.000Z`).
    pub created_at: String,
    /// The version launches use when none is named.
    pub default_version: i64,
    /// The highest version number it has.
    pub latest_version: i64,
    /// The `ClientToken` it was made with.
    pub client_token: Option<String>,
}

/// One version of a launch template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRow {
    /// The template's id.
    pub template_id: String,
    /// Its number, from 1.
    pub version: i64,
    /// `VersionDescription`.
    pub description: Option<String>,
    /// When it was made.
    pub created_at: String,
    /// The launch data, as JSON.
    pub data: String,
    /// The `ClientToken` it was made with.
    pub client_token: Option<String>,
}

const TEMPLATE_COLUMNS: &str =
    "seq, id, name, created_at, default_version, latest_version, client_token";

fn template_row(r: &Row<'_>) -> rusqlite::Result<TemplateRow> {
    Ok(TemplateRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        name: r.get(2)?,
        created_at: r.get(3)?,
        default_version: r.get(4)?,
        latest_version: r.get(5)?,
        client_token: r.get(6)?,
    })
}

fn version_row(r: &Row<'_>) -> rusqlite::Result<VersionRow> {
    Ok(VersionRow {
        template_id: r.get(0)?,
        version: r.get(1)?,
        description: r.get(2)?,
        created_at: r.get(3)?,
        data: r.get(4)?,
        client_token: r.get(5)?,
    })
}

/// Records a new template and its version 1 (default and latest).
pub fn insert(conn: &Connection, t: &TemplateRow, first: &VersionRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO launch_templates \
         (id, name, created_at, default_version, latest_version, client_token) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            t.id,
            t.name,
            t.created_at,
            t.default_version,
            t.latest_version,
            t.client_token
        ],
    )?;
    insert_version(conn, first)
}

/// Records a version and makes it the template's latest.
pub fn insert_version(conn: &Connection, v: &VersionRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO launch_template_versions \
         (template_id, version, description, created_at, data, client_token) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            v.template_id,
            v.version,
            v.description,
            v.created_at,
            v.data,
            v.client_token
        ],
    )?;
    conn.execute(
        "UPDATE launch_templates SET latest_version = MAX(latest_version, ?2) WHERE id = ?1",
        params![v.template_id, v.version],
    )?;
    Ok(())
}

/// The template with this id.
pub fn by_id(conn: &Connection, id: &str) -> rusqlite::Result<Option<TemplateRow>> {
    conn.query_row(
        &format!("SELECT {TEMPLATE_COLUMNS} FROM launch_templates WHERE id = ?1"),
        [id],
        template_row,
    )
    .optional()
}

/// The template with this name.
pub fn by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<TemplateRow>> {
    conn.query_row(
        &format!("SELECT {TEMPLATE_COLUMNS} FROM launch_templates WHERE name = ?1"),
        [name],
        template_row,
    )
    .optional()
}

/// The template made with `ClientToken` `token`.
pub fn by_client_token(conn: &Connection, token: &str) -> rusqlite::Result<Option<TemplateRow>> {
    conn.query_row(
        &format!("SELECT {TEMPLATE_COLUMNS} FROM launch_templates WHERE client_token = ?1"),
        [token],
        template_row,
    )
    .optional()
}

/// The version of template `id` made with `ClientToken` `token`.
pub fn version_by_client_token(
    conn: &Connection,
    id: &str,
    token: &str,
) -> rusqlite::Result<Option<VersionRow>> {
    conn.query_row(
        &format!(
            "SELECT {VERSION_COLUMNS} FROM launch_template_versions \
             WHERE template_id = ?1 AND client_token = ?2"
        ),
        params![id, token],
        version_row,
    )
    .optional()
}

/// Every template, in creation order.
pub fn all(conn: &Connection) -> rusqlite::Result<Vec<TemplateRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {TEMPLATE_COLUMNS} FROM launch_templates ORDER BY seq"
    ))?;
    st.query_map([], template_row)?.collect()
}

/// Sets a template's default version.
pub fn set_default(conn: &Connection, id: &str, version: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE launch_templates SET default_version = ?2 WHERE id = ?1",
        params![id, version],
    )?;
    Ok(())
}

/// Deletes a template, its versions and its tags.
pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM launch_template_versions WHERE template_id = ?1",
        [id],
    )?;
    conn.execute("DELETE FROM launch_templates WHERE id = ?1", [id])?;
    crate::tags::delete_all(conn, id)
}

const VERSION_COLUMNS: &str = "template_id, version, description, created_at, data, client_token";

/// One version of a template.
pub fn version(conn: &Connection, id: &str, version: i64) -> rusqlite::Result<Option<VersionRow>> {
    conn.query_row(
        &format!(
            "SELECT {VERSION_COLUMNS} FROM launch_template_versions \
             WHERE template_id = ?1 AND version = ?2"
        ),
        params![id, version],
        version_row,
    )
    .optional()
}

/// Every version of a template, newest first (as DescribeLaunchTemplateVersions lists them).
pub fn versions(conn: &Connection, id: &str) -> rusqlite::Result<Vec<VersionRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM launch_template_versions \
         WHERE template_id = ?1 ORDER BY version DESC"
    ))?;
    st.query_map([id], version_row)?.collect()
}

/// Deletes one version, the template's latest becoming the highest left; whether it
/// existed.
pub fn delete_version(conn: &Connection, id: &str, version: i64) -> rusqlite::Result<bool> {
    let gone = conn.execute(
        "DELETE FROM launch_template_versions WHERE template_id = ?1 AND version = ?2",
        params![id, version],
    )? > 0;
    conn.execute(
        "UPDATE launch_templates SET latest_version = \
         (SELECT COALESCE(MAX(version), 0) FROM launch_template_versions WHERE template_id = ?1) \
         WHERE id = ?1",
        [id],
    )?;
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, crate::Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::Db::open(&dir.path().join("s.db")).unwrap();
        (dir, db)
    }

    fn v(id: &str, n: i64) -> VersionRow {
        VersionRow {
            template_id: id.into(),
            version: n,
            description: None,
            created_at: "t".into(),
            data: format!("{{\"n\":{n}}}"),
            client_token: None,
        }
    }

    #[test]
    fn versions_newest_first_and_latest_follows() {
        let (_d, db) = db();
        let conn = db.lock();
        let t = TemplateRow {
            seq: 0,
            id: "lt-1".into(),
            name: "web".into(),
            created_at: "t".into(),
            default_version: 1,
            latest_version: 1,
            client_token: Some("tok".into()),
        };
        insert(&conn, &t, &v("lt-1", 1)).unwrap();
        insert_version(&conn, &v("lt-1", 2)).unwrap();
        let got = by_name(&conn, "web").unwrap().unwrap();
        assert_eq!(by_client_token(&conn, "tok").unwrap().unwrap().id, "lt-1");
        assert_eq!(got.latest_version, 2);
        let vs: Vec<i64> = versions(&conn, "lt-1")
            .unwrap()
            .iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(vs, [2, 1]);
        assert!(delete_version(&conn, "lt-1", 2).unwrap());
        assert!(!delete_version(&conn, "lt-1", 2).unwrap());
        // Deleting the latest makes the highest left the latest.
        assert_eq!(by_id(&conn, "lt-1").unwrap().unwrap().latest_version, 1);
        delete(&conn, "lt-1").unwrap();
        assert!(by_id(&conn, "lt-1").unwrap().is_none());
    }
}
