//! Finding a launch template (by id or by name) and choosing its versions: `$Latest`,
//! `$Default`, a number, or a range of numbers.

use rusqlite::Connection;

use state::launch_templates::{self as lt, TemplateRow, VersionRow};
use state::well_formed_id;

use super::data::LaunchData;
use crate::Refusal;

/// A version as a request names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    /// `$Latest`: the highest number.
    Latest,
    /// `$Default`: the template's default version.
    Default,
    /// A version number, from 1.
    Number(i64),
}

impl VersionSpec {
    /// `$Latest`, `$Default` or a number from 1; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "$Latest" => Some(Self::Latest),
            "$Default" => Some(Self::Default),
            n => n.parse::<i64>().ok().filter(|n| *n >= 1).map(Self::Number),
        }
    }

    /// The number this names in `t`.
    pub fn number(self, t: &TemplateRow) -> i64 {
        match self {
            Self::Latest => t.latest_version,
            Self::Default => t.default_version,
            Self::Number(n) => n,
        }
    }
}

/// Why a template or one of its versions cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum ResolveTemplateError {
    /// Neither an id nor a name.
    #[error("The request must contain the parameter LaunchTemplateId or LaunchTemplateName")]
    Missing,
    /// Both an id and a name.
    #[error("Specify either the launch template ID or the launch template name, but not both")]
    Both,
    /// The id is not an `lt-` id.
    #[error("The launch template ID '{0}' is malformed")]
    MalformedId(String),
    /// No template has the id.
    #[error("The specified launch template, with template ID {0}, does not exist.")]
    NoId(String),
    /// No template has the name.
    #[error("The specified launch template, with template name {0}, does not exist.")]
    NoName(String),
    /// A version that is neither `$Latest`, `$Default` nor a number from 1.
    #[error(
        "Value for parameter Version is invalid: '{0}' is not $Latest, $Default or a version number"
    )]
    BadVersion(String),
    /// The template has no such version.
    #[error(
        "The specified launch template version, {version}, for launch template {id}, does not exist."
    )]
    NoVersion {
        /// The template.
        id: String,
        /// The version asked for.
        version: String,
    },
    /// The stored data cannot be read.
    #[error("the launch data of {0} cannot be read")]
    Corrupt(String, #[source] serde_json::Error),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for ResolveTemplateError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::Missing => "MissingParameter",
            Self::Both => "InvalidParameterCombination",
            Self::MalformedId(_) => "InvalidLaunchTemplateId.Malformed",
            Self::NoId(_) => "InvalidLaunchTemplateId.NotFound",
            Self::NoName(_) => "InvalidLaunchTemplateName.NotFoundException",
            Self::BadVersion(_) => "InvalidParameterValue",
            Self::NoVersion { .. } => "InvalidLaunchTemplateId.VersionNotFound",
            Self::Corrupt(..) | Self::Db(_) => return None,
        })
    }
}

/// The template named by exactly one of `id` and `name`.
pub fn find(
    conn: &Connection,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<TemplateRow, ResolveTemplateError> {
    match (id, name) {
        (None, None) => Err(ResolveTemplateError::Missing),
        (Some(_), Some(_)) => Err(ResolveTemplateError::Both),
        (Some(id), None) => {
            if !well_formed_id(id, "lt") {
                return Err(ResolveTemplateError::MalformedId(id.to_string()));
            }
            lt::by_id(conn, id)?.ok_or_else(|| ResolveTemplateError::NoId(id.to_string()))
        }
        (None, Some(name)) => {
            lt::by_name(conn, name)?.ok_or_else(|| ResolveTemplateError::NoName(name.to_string()))
        }
    }
}

/// Version `spec` (`$Default` when `None`) of template `t`, with its data.
pub fn version(
    conn: &Connection,
    t: &TemplateRow,
    spec: Option<&str>,
) -> Result<(VersionRow, LaunchData), ResolveTemplateError> {
    let given = spec.unwrap_or("$Default");
    let v = VersionSpec::parse(given)
        .ok_or_else(|| ResolveTemplateError::BadVersion(given.to_string()))?;
    let row =
        lt::version(conn, &t.id, v.number(t))?.ok_or_else(|| ResolveTemplateError::NoVersion {
            id: t.id.clone(),
            version: given.to_string(),
        })?;
    let data = data_of(&row)?;
    Ok((row, data))
}

/// A version's data, read back.
pub fn data_of(row: &VersionRow) -> Result<LaunchData, ResolveTemplateError> {
    LaunchData::from_json(&row.data).map_err(|e| {
        ResolveTemplateError::Corrupt(format!("{} version {}", row.template_id, row.version), e)
    })
}

/// Which versions DescribeLaunchTemplateVersions shows: the named ones (each must exist),
/// or those from `min` to `max`; all when neither is given. Newest first.
pub fn select(
    conn: &Connection,
    t: &TemplateRow,
    named: &[String],
    min: Option<&str>,
    max: Option<&str>,
) -> Result<Vec<VersionRow>, ResolveTemplateError> {
    let bound = |b: Option<&str>| -> Result<Option<i64>, ResolveTemplateError> {
        b.map(|s| {
            VersionSpec::parse(s)
                .map(|v| v.number(t))
                .ok_or_else(|| ResolveTemplateError::BadVersion(s.to_string()))
        })
        .transpose()
    };
    let (lo, hi) = (bound(min)?, bound(max)?);
    let mut wanted: Vec<i64> = Vec::new();
    for s in named {
        let v = VersionSpec::parse(s).ok_or_else(|| ResolveTemplateError::BadVersion(s.clone()))?;
        let n = v.number(t);
        if lt::version(conn, &t.id, n)?.is_none() {
            return Err(ResolveTemplateError::NoVersion {
                id: t.id.clone(),
                version: s.clone(),
            });
        }
        wanted.push(n);
    }
    Ok(lt::versions(conn, &t.id)?
        .into_iter()
        .filter(|v| wanted.is_empty() || wanted.contains(&v.version))
        .filter(|v| lo.is_none_or(|lo| v.version >= lo) && hi.is_none_or(|hi| v.version <= hi))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(conn: &Connection) -> TemplateRow {
        let t = TemplateRow {
            seq: 0,
            id: "lt-0123456789abcdef0".into(),
            name: "web".into(),
            created_at: "t".into(),
            default_version: 1,
            latest_version: 1,
            client_token: None,
        };
        let v = |n: i64, image: &str| VersionRow {
            template_id: t.id.clone(),
            version: n,
            description: None,
            created_at: "t".into(),
            data: LaunchData {
                image_id: Some(image.into()),
                ..Default::default()
            }
            .to_json(),
            client_token: None,
        };
        lt::insert(conn, &t, &v(1, "ami-00000001")).unwrap();
        lt::insert_version(conn, &v(2, "ami-00000002")).unwrap();
        lt::insert_version(conn, &v(3, "ami-00000003")).unwrap();
        lt::by_id(conn, &t.id).unwrap().unwrap()
    }

    #[test]
    fn versions_are_chosen_by_alias_number_or_range() {
        let (_d, db) = crate::ec2::test_db();
        let conn = db.lock();
        let t = setup(&conn);
        let image = |spec| version(&conn, &t, spec).unwrap().1.image_id.unwrap();
        assert_eq!(image(None), "ami-00000001", "the default");
        assert_eq!(image(Some("$Latest")), "ami-00000003");
        assert_eq!(image(Some("2")), "ami-00000002");
        let e = version(&conn, &t, Some("9")).unwrap_err();
        assert_eq!(e.code(), Some("InvalidLaunchTemplateId.VersionNotFound"));
        let e = version(&conn, &t, Some("latest")).unwrap_err();
        assert_eq!(e.code(), Some("InvalidParameterValue"));
        let nums = |v: Vec<VersionRow>| v.iter().map(|v| v.version).collect::<Vec<_>>();
        assert_eq!(nums(select(&conn, &t, &[], None, None).unwrap()), [3, 2, 1]);
        assert_eq!(
            nums(select(&conn, &t, &[], Some("2"), None).unwrap()),
            [3, 2]
        );
        assert_eq!(
            nums(select(&conn, &t, &[], None, Some("2")).unwrap()),
            [2, 1]
        );
        let named = ["$Default".to_string(), "$Latest".to_string()];
        assert_eq!(nums(select(&conn, &t, &named, None, None).unwrap()), [3, 1]);
        assert!(select(&conn, &t, &["7".to_string()], None, None).is_err());
    }

    #[test]
    fn templates_are_found_by_exactly_one_of_id_and_name() {
        let (_d, db) = crate::ec2::test_db();
        let conn = db.lock();
        let t = setup(&conn);
        assert_eq!(find(&conn, None, Some("web")).unwrap().id, t.id);
        assert_eq!(find(&conn, Some(&t.id), None).unwrap().name, "web");
        let code = |id, name| find(&conn, id, name).unwrap_err().code();
        assert_eq!(code(None, None), Some("MissingParameter"));
        assert_eq!(
            code(Some(&t.id), Some("web")),
            Some("InvalidParameterCombination")
        );
        assert_eq!(
            code(Some("lt-nope"), None),
            Some("InvalidLaunchTemplateId.Malformed")
        );
        assert_eq!(
            code(Some("lt-0123456789abcdef1"), None),
            Some("InvalidLaunchTemplateId.NotFound")
        );
        assert_eq!(
            code(None, Some("db")),
            Some("InvalidLaunchTemplateName.NotFoundException")
        );
    }
}
