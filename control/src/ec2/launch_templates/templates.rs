//! The commands on templates: CreateLaunchTemplate, CreateLaunchTemplateVersion (from a
//! `SourceVersion`), ModifyLaunchTemplate (the default version), DeleteLaunchTemplate and
//! DeleteLaunchTemplateVersions. Template data is not checked here: EC2 checks it when it
//! launches.

use rusqlite::Connection;

use state::launch_templates::{self as lt, TemplateRow, VersionRow};
use state::{new_id, now_iso, tags};

use super::data::LaunchData;
use super::merge::overlay;
use super::versions::{self, ResolveTemplateError, VersionSpec};
use crate::ec2::tags::MAX_TAGS;
use crate::{Plane, Refusal};

/// The longest `VersionDescription`.
const MAX_DESCRIPTION: usize = 255;
/// The most versions a template keeps (EC2's quota).
pub const MAX_VERSIONS: i64 = 10_000;
/// The most versions one DeleteLaunchTemplateVersions takes.
pub const MAX_DELETE: usize = 200;

/// CreateLaunchTemplate.
#[derive(Debug, Clone, Default)]
pub struct CreateTemplate {
    /// `LaunchTemplateName`.
    pub name: String,
    /// `VersionDescription` of version 1.
    pub description: Option<String>,
    /// `LaunchTemplateData`.
    pub data: LaunchData,
    /// Tags of the template (`launch-template`).
    pub tags: Vec<(String, String)>,
    /// `ClientToken`: a retry with it gives the template it made.
    pub client_token: Option<String>,
}

/// CreateLaunchTemplateVersion.
#[derive(Debug, Clone, Default)]
pub struct CreateVersion {
    /// `LaunchTemplateId`.
    pub id: Option<String>,
    /// `LaunchTemplateName`.
    pub name: Option<String>,
    /// `SourceVersion`: the version the new one starts from.
    pub source_version: Option<String>,
    /// `VersionDescription`.
    pub description: Option<String>,
    /// `LaunchTemplateData`, over the source version's.
    pub data: LaunchData,
    /// `ClientToken`: a retry with it gives the version it made.
    pub client_token: Option<String>,
}

/// Why a template command is refused.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The name is not 3 to 128 of `a-z A-Z 0-9 ( ) . - / _`.
    #[error(
        "A launch template name must be between 3 and 128 characters, and may contain letters, \
         numbers, and the following characters: - ( ) . / _.'"
    )]
    MalformedName(String),
    /// Another template has the name.
    #[error("Launch template name already in use.")]
    NameTaken(String),
    /// A description over 255 characters.
    #[error(
        "Value for parameter VersionDescription is invalid: at most {MAX_DESCRIPTION} characters"
    )]
    Description,
    /// More tags than a resource takes.
    #[error("The maximum number of tags per resource ({MAX_TAGS}) would be exceeded")]
    TagLimit,
    /// A `ClientToken` used before with other parameters.
    #[error("The client token {0} was used with other parameters")]
    TokenMismatch(String),
    /// The template has as many versions as it may.
    #[error("The launch template has reached its limit of {MAX_VERSIONS} versions")]
    VersionLimit,
    /// The template or a version cannot be had.
    #[error(transparent)]
    Resolve(#[from] ResolveTemplateError),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for TemplateError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::MalformedName(_) => "InvalidLaunchTemplateName.MalformedException",
            Self::NameTaken(_) => "InvalidLaunchTemplateName.AlreadyExistsException",
            Self::Description => "InvalidParameterValue",
            Self::TagLimit => "TagLimitExceeded",
            Self::VersionLimit => "LaunchTemplateVersionLimitExceeded",
            Self::TokenMismatch(_) => "IdempotentParameterMismatch",
            Self::Resolve(e) => return e.code(),
            Self::Db(_) => return None,
        })
    }
}

/// Whether `name` is a template name EC2 takes.
pub fn valid_name(name: &str) -> bool {
    (3..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"().-/_".contains(&b))
}

fn check_description(d: Option<&str>) -> Result<(), TemplateError> {
    if d.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
        return Err(TemplateError::Description);
    }
    Ok(())
}

/// DeleteLaunchTemplateVersions' answer: the versions deleted, and those that were not, each
/// with EC2's per-version error code and message.
#[derive(Debug, Clone, Default)]
pub struct DeletedVersions {
    /// The template.
    pub template: Option<TemplateRow>,
    /// The version numbers deleted.
    pub deleted: Vec<i64>,
    /// The versions not deleted: the number (when it is one), the code, the message.
    pub failed: Vec<(Option<i64>, &'static str, String)>,
}

/// CreateLaunchTemplate over a connection: the template and its version 1, the default.
pub fn create(
    conn: &Connection,
    cmd: &CreateTemplate,
) -> Result<(TemplateRow, VersionRow), TemplateError> {
    if !valid_name(&cmd.name) {
        return Err(TemplateError::MalformedName(cmd.name.clone()));
    }
    check_description(cmd.description.as_deref())?;
    if cmd.tags.len() > MAX_TAGS {
        return Err(TemplateError::TagLimit);
    }
    if let Some(token) = &cmd.client_token
        && let Some(t) = lt::by_client_token(conn, token)?
    {
        if t.name != cmd.name {
            return Err(TemplateError::TokenMismatch(token.clone()));
        }
        let (v, _) = versions::version(conn, &t, Some("1"))
            .or_else(|_| versions::version(conn, &t, None))?;
        return Ok((t, v));
    }
    if lt::by_name(conn, &cmd.name)?.is_some() {
        return Err(TemplateError::NameTaken(cmd.name.clone()));
    }
    let now = now_iso();
    let t = TemplateRow {
        seq: 0,
        id: new_id("lt"),
        name: cmd.name.clone(),
        created_at: now.clone(),
        default_version: 1,
        latest_version: 1,
        client_token: cmd.client_token.clone(),
    };
    let v = VersionRow {
        template_id: t.id.clone(),
        version: 1,
        description: cmd.description.clone(),
        created_at: now,
        data: cmd.data.to_json(),
        client_token: None,
    };
    lt::insert(conn, &t, &v)?;
    tags::put(conn, &t.id, &cmd.tags)?;
    let t = lt::by_id(conn, &t.id)?.unwrap_or(t);
    Ok((t, v))
}

/// CreateLaunchTemplateVersion over a connection: the next number, its data the source
/// version's (when one is named) with the request's over it member by member.
pub fn create_version(
    conn: &Connection,
    cmd: &CreateVersion,
) -> Result<(TemplateRow, VersionRow), TemplateError> {
    check_description(cmd.description.as_deref())?;
    let t = versions::find(conn, cmd.id.as_deref(), cmd.name.as_deref())?;
    let data = match &cmd.source_version {
        None => cmd.data.clone(),
        Some(s) => {
            let (_, source) = versions::version(conn, &t, Some(s))?;
            overlay(&source, &cmd.data)
        }
    };
    if let Some(token) = &cmd.client_token
        && let Some(v) = lt::version_by_client_token(conn, &t.id, token)?
    {
        if v.data != data.to_json() || v.description != cmd.description {
            return Err(TemplateError::TokenMismatch(token.clone()));
        }
        return Ok((t, v));
    }
    if t.latest_version >= MAX_VERSIONS {
        return Err(TemplateError::VersionLimit);
    }
    let v = VersionRow {
        template_id: t.id.clone(),
        version: t.latest_version + 1,
        description: cmd.description.clone(),
        created_at: now_iso(),
        data: data.to_json(),
        client_token: cmd.client_token.clone(),
    };
    lt::insert_version(conn, &v)?;
    Ok((t, v))
}

/// ModifyLaunchTemplate over a connection: sets the default version (`SetDefaultVersion`),
/// which must exist.
pub fn modify(
    conn: &Connection,
    id: Option<&str>,
    name: Option<&str>,
    default_version: Option<&str>,
) -> Result<TemplateRow, TemplateError> {
    let t = versions::find(conn, id, name)?;
    if let Some(spec) = default_version {
        let (v, _) = versions::version(conn, &t, Some(spec))?;
        lt::set_default(conn, &t.id, v.version)?;
    }
    Ok(lt::by_id(conn, &t.id)?.unwrap_or(t))
}

/// DeleteLaunchTemplate over a connection: the template, every version and its tags.
pub fn delete(
    conn: &Connection,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<TemplateRow, TemplateError> {
    let t = versions::find(conn, id, name)?;
    lt::delete(conn, &t.id)?;
    Ok(t)
}

/// DeleteLaunchTemplateVersions over a connection: each version on its own; the default
/// version is never deleted (delete the template instead), and one that does not exist is
/// reported.
pub fn delete_versions(
    conn: &Connection,
    id: Option<&str>,
    name: Option<&str>,
    asked: &[String],
) -> Result<DeletedVersions, TemplateError> {
    let t = versions::find(conn, id, name)?;
    let mut out = DeletedVersions::default();
    for s in asked {
        let n = match VersionSpec::parse(s) {
            Some(VersionSpec::Number(n)) => n,
            _ => {
                out.failed.push((
                    None,
                    "launchTemplateVersionDoesNotExist",
                    format!("'{s}' is not a version number"),
                ));
                continue;
            }
        };
        if n == t.default_version {
            out.failed.push((
                Some(n),
                "unexpectedError",
                "Cannot delete the default version of a launch template; delete the template \
                 instead"
                    .to_string(),
            ));
        } else if lt::delete_version(conn, &t.id, n)? {
            out.deleted.push(n);
        } else {
            out.failed.push((
                Some(n),
                "launchTemplateVersionDoesNotExist",
                format!("The specified launch template version {n} does not exist."),
            ));
        }
    }
    out.template = Some(t);
    Ok(out)
}

impl Plane {
    /// CreateLaunchTemplate, in one transaction.
    pub fn create_launch_template(
        &self,
        cmd: &CreateTemplate,
    ) -> Result<(TemplateRow, VersionRow), TemplateError> {
        Ok(self
            .transact(|tx| Ok::<_, TemplateError>((create(tx, cmd)?, Vec::new())))?
            .value)
    }

    /// CreateLaunchTemplateVersion, in one transaction.
    pub fn create_launch_template_version(
        &self,
        cmd: &CreateVersion,
    ) -> Result<(TemplateRow, VersionRow), TemplateError> {
        Ok(self
            .transact(|tx| Ok::<_, TemplateError>((create_version(tx, cmd)?, Vec::new())))?
            .value)
    }

    /// ModifyLaunchTemplate, in one transaction.
    pub fn modify_launch_template(
        &self,
        id: Option<&str>,
        name: Option<&str>,
        default_version: Option<&str>,
    ) -> Result<TemplateRow, TemplateError> {
        Ok(self
            .transact(|tx| {
                Ok::<_, TemplateError>((modify(tx, id, name, default_version)?, Vec::new()))
            })?
            .value)
    }

    /// DeleteLaunchTemplate, in one transaction.
    pub fn delete_launch_template(
        &self,
        id: Option<&str>,
        name: Option<&str>,
    ) -> Result<TemplateRow, TemplateError> {
        Ok(self
            .transact(|tx| Ok::<_, TemplateError>((delete(tx, id, name)?, Vec::new())))?
            .value)
    }

    /// DeleteLaunchTemplateVersions, in one transaction.
    pub fn delete_launch_template_versions(
        &self,
        id: Option<&str>,
        name: Option<&str>,
        asked: &[String],
    ) -> Result<DeletedVersions, TemplateError> {
        Ok(self
            .transact(|tx| {
                Ok::<_, TemplateError>((delete_versions(tx, id, name, asked)?, Vec::new()))
            })?
            .value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(image: &str) -> LaunchData {
        LaunchData {
            image_id: Some(image.into()),
            instance_type: Some("t2.micro".into()),
            ..Default::default()
        }
    }

    fn code(e: TemplateError) -> Option<&'static str> {
        e.code()
    }

    #[test]
    fn a_template_is_made_once_by_name_and_by_token() {
        let (_d, db) = crate::ec2::test_db();
        let conn = db.lock();
        let cmd = CreateTemplate {
            name: "web".into(),
            data: data("ami-00000001"),
            tags: vec![("owner".into(), "me".into())],
            client_token: Some("tok".into()),
            ..Default::default()
        };
        let (t, v) = create(&conn, &cmd).unwrap();
        assert_eq!((t.default_version, t.latest_version, v.version), (1, 1, 1));
        assert_eq!(
            create(&conn, &cmd).unwrap().0.id,
            t.id,
            "a retry with the token"
        );
        let other = CreateTemplate {
            client_token: None,
            ..cmd.clone()
        };
        assert_eq!(
            code(create(&conn, &other).unwrap_err()),
            Some("InvalidLaunchTemplateName.AlreadyExistsException")
        );
        let renamed = CreateTemplate {
            name: "dbs".into(),
            ..cmd.clone()
        };
        assert_eq!(
            code(create(&conn, &renamed).unwrap_err()),
            Some("IdempotentParameterMismatch")
        );
        let bad = CreateTemplate {
            name: "a b".into(),
            client_token: None,
            ..cmd
        };
        assert_eq!(
            code(create(&conn, &bad).unwrap_err()),
            Some("InvalidLaunchTemplateName.MalformedException")
        );
        assert_eq!(lt::all(&conn).unwrap().len(), 1);
    }

    #[test]
    fn versions_start_from_their_source_and_the_default_stays() {
        let (_d, db) = crate::ec2::test_db();
        let conn = db.lock();
        let (t, _) = create(
            &conn,
            &CreateTemplate {
                name: "web".into(),
                data: data("ami-00000001"),
                ..Default::default()
            },
        )
        .unwrap();
        let small = LaunchData {
            instance_type: Some("t2.small".into()),
            ..Default::default()
        };
        let (_, v2) = create_version(
            &conn,
            &CreateVersion {
                name: Some("web".into()),
                source_version: Some("1".into()),
                data: small.clone(),
                ..Default::default()
            },
        )
        .unwrap();
        let d2 = versions::data_of(&v2).unwrap();
        assert_eq!(v2.version, 2);
        assert_eq!(
            d2.image_id.as_deref(),
            Some("ami-00000001"),
            "from version 1"
        );
        assert_eq!(d2.instance_type.as_deref(), Some("t2.small"));
        let (_, v3) = create_version(
            &conn,
            &CreateVersion {
                id: Some(t.id.clone()),
                data: small,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(versions::data_of(&v3).unwrap().image_id, None, "no source");
        let e = modify(&conn, Some(&t.id), None, Some("7")).unwrap_err();
        assert_eq!(code(e), Some("InvalidLaunchTemplateId.VersionNotFound"));
        assert_eq!(
            modify(&conn, Some(&t.id), None, Some("2"))
                .unwrap()
                .default_version,
            2
        );
        let asked = ["2".to_string(), "3".into(), "9".into(), "x".into()];
        let out = delete_versions(&conn, None, Some("web"), &asked).unwrap();
        assert_eq!(out.deleted, [3]);
        let failed: Vec<_> = out.failed.iter().map(|f| (f.0, f.1)).collect();
        assert_eq!(
            failed,
            [
                (Some(2), "unexpectedError"),
                (Some(9), "launchTemplateVersionDoesNotExist"),
                (None, "launchTemplateVersionDoesNotExist"),
            ]
        );
        assert_eq!(lt::by_id(&conn, &t.id).unwrap().unwrap().latest_version, 2);
        delete(&conn, None, Some("web")).unwrap();
        assert!(lt::versions(&conn, &t.id).unwrap().is_empty());
        assert_eq!(
            code(delete(&conn, None, Some("web")).unwrap_err()),
            Some("InvalidLaunchTemplateName.NotFoundException")
        );
    }

    #[test]
    fn names_are_3_to_128_of_the_allowed_characters() {
        assert!(valid_name("web-(1)/a.b_c"));
        assert!(!valid_name("ab"));
        assert!(!valid_name(&"a".repeat(129)));
        assert!(!valid_name("has space"));
        assert!(!valid_name("star*"));
    }
}
