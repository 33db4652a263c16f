//! The commands on templates: CreateLaunchTemplate, CreateLaunchTemplateVersion (from a
//! `SourceVersion`), ModifyLaunchTemplate (the default version), DeleteLaunchTemplate and
//! DeleteLaunchTemplateVersions. Template data is not checked here: EC2 checks it when it
//! launches.

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

impl Plane {
    /// CreateLaunchTemplate: the template and its version 1, the default.
    pub fn create_launch_template(
        &self,
        cmd: &CreateTemplate,
    ) -> Result<(TemplateRow, VersionRow), TemplateError> {
        if !valid_name(&cmd.name) {
            return Err(TemplateError::MalformedName(cmd.name.clone()));
        }
        check_description(cmd.description.as_deref())?;
        if cmd.tags.len() > MAX_TAGS {
            return Err(TemplateError::TagLimit);
        }
        let out = self.transact(|tx| {
            if lt::by_name(tx, &cmd.name)?.is_some() {
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
            };
            let v = VersionRow {
                template_id: t.id.clone(),
                version: 1,
                description: cmd.description.clone(),
                created_at: now,
                data: cmd.data.to_json(),
            };
            lt::insert(tx, &t, &v)?;
            tags::put(tx, &t.id, &cmd.tags)?;
            let t = lt::by_id(tx, &t.id)?.unwrap_or(t);
            Ok::<_, TemplateError>(((t, v), Vec::new()))
        })?;
        Ok(out.value)
    }

    /// CreateLaunchTemplateVersion: the next number, its data the source version's (when
    /// one is named) with the request's over it member by member.
    pub fn create_launch_template_version(
        &self,
        cmd: &CreateVersion,
    ) -> Result<(TemplateRow, VersionRow), TemplateError> {
        check_description(cmd.description.as_deref())?;
        let out = self.transact(|tx| {
            let t = versions::find(tx, cmd.id.as_deref(), cmd.name.as_deref())?;
            let data = match &cmd.source_version {
                None => cmd.data.clone(),
                Some(s) => {
                    let (_, source) = versions::version(tx, &t, Some(s))?;
                    overlay(&source, &cmd.data)
                }
            };
            if t.latest_version >= MAX_VERSIONS {
                return Err(TemplateError::VersionLimit);
            }
            let v = VersionRow {
                template_id: t.id.clone(),
                version: t.latest_version + 1,
                description: cmd.description.clone(),
                created_at: now_iso(),
                data: data.to_json(),
            };
            lt::insert_version(tx, &v)?;
            Ok::<_, TemplateError>(((t, v), Vec::new()))
        })?;
        Ok(out.value)
    }

    /// ModifyLaunchTemplate: sets the default version (`SetDefaultVersion`), which must
    /// exist.
    pub fn modify_launch_template(
        &self,
        id: Option<&str>,
        name: Option<&str>,
        default_version: Option<&str>,
    ) -> Result<TemplateRow, TemplateError> {
        let out = self.transact(|tx| {
            let t = versions::find(tx, id, name)?;
            if let Some(spec) = default_version {
                let (v, _) = versions::version(tx, &t, Some(spec))?;
                lt::set_default(tx, &t.id, v.version)?;
            }
            Ok::<_, TemplateError>((lt::by_id(tx, &t.id)?.unwrap_or(t), Vec::new()))
        })?;
        Ok(out.value)
    }

    /// DeleteLaunchTemplate: the template, every version and its tags.
    pub fn delete_launch_template(
        &self,
        id: Option<&str>,
        name: Option<&str>,
    ) -> Result<TemplateRow, TemplateError> {
        let out = self.transact(|tx| {
            let t = versions::find(tx, id, name)?;
            lt::delete(tx, &t.id)?;
            Ok::<_, TemplateError>((t, Vec::new()))
        })?;
        Ok(out.value)
    }

    /// DeleteLaunchTemplateVersions: each version on its own; the default version is never
    /// deleted (delete the template instead), and one that does not exist is reported.
    pub fn delete_launch_template_versions(
        &self,
        id: Option<&str>,
        name: Option<&str>,
        asked: &[String],
    ) -> Result<DeletedVersions, TemplateError> {
        let out = self.transact(|tx| {
            let t = versions::find(tx, id, name)?;
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
                        "Cannot delete the default version of a launch template; delete the \
                         template instead"
                            .to_string(),
                    ));
                } else if lt::delete_version(tx, &t.id, n)? {
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
            Ok::<_, TemplateError>((out, Vec::new()))
        })?;
        Ok(out.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_3_to_128_of_the_allowed_characters() {
        assert!(valid_name("web-(1)/a.b_c"));
        assert!(!valid_name("ab"));
        assert!(!valid_name(&"a".repeat(129)));
        assert!(!valid_name("has space"));
        assert!(!valid_name("star*"));
    }
}
