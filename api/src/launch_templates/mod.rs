//! Launch templates: CreateLaunchTemplate, CreateLaunchTemplateVersion, ModifyLaunchTemplate,
//! DeleteLaunchTemplate, DeleteLaunchTemplateVersions (here) and the two Describe actions
//! (`describe.rs`); the launch data between shapes and the control plane in `data.rs`.
//! Handlers translate; `control::ec2::launch_templates` decides.

use shapes::ec2::{
    CreateLaunchTemplateRequest, CreateLaunchTemplateResult, CreateLaunchTemplateVersionRequest,
    CreateLaunchTemplateVersionResult, DeleteLaunchTemplateRequest, DeleteLaunchTemplateResult,
    DeleteLaunchTemplateVersionsRequest, DeleteLaunchTemplateVersionsResponseErrorItem,
    DeleteLaunchTemplateVersionsResponseSuccessItem, DeleteLaunchTemplateVersionsResult,
    LaunchTemplate, LaunchTemplateErrorCode, LaunchTemplateVersion, ModifyLaunchTemplateRequest,
    ModifyLaunchTemplateResult, ResponseError,
};

use super::errors::ApiError;
use super::{Call, typed};
use control::ec2::launch_templates::templates::{CreateTemplate, CreateVersion, MAX_DELETE};
use control::ec2::launch_templates::{LaunchData, versions};
use state::launch_templates::{TemplateRow, VersionRow};

pub mod data;
mod describe;

pub use describe::{describe, describe_versions};

/// A template as the actions show it.
pub(crate) fn template(t: &TemplateRow, tags: &[(String, String)], owner: &str) -> LaunchTemplate {
    LaunchTemplate {
        launch_template_id: Some(t.id.clone()),
        launch_template_name: Some(t.name.clone()),
        create_time: typed::time(&t.created_at),
        created_by: Some(format!("arn:aws:iam::{owner}:root")),
        default_version_number: Some(t.default_version),
        latest_version_number: Some(t.latest_version),
        tags: typed::tag_set(tags),
        operator: None,
    }
}

/// A version as the actions show it.
pub(crate) fn version(
    t: &TemplateRow,
    v: &VersionRow,
    d: &LaunchData,
    owner: &str,
) -> LaunchTemplateVersion {
    LaunchTemplateVersion {
        launch_template_id: Some(t.id.clone()),
        launch_template_name: Some(t.name.clone()),
        version_number: Some(v.version),
        version_description: v.description.clone(),
        create_time: typed::time(&v.created_at),
        created_by: Some(format!("arn:aws:iam::{owner}:root")),
        default_version: Some(v.version == t.default_version),
        launch_template_data: Some(data::response(d)),
        operator: None,
    }
}

fn tags_of(c: &Call<'_>, id: &str) -> Result<Vec<(String, String)>, ApiError> {
    let conn = c.st.db.lock();
    Ok(state::tags::for_resources(&conn, &[id])?
        .remove(id)
        .unwrap_or_default())
}

/// CreateLaunchTemplate.
pub fn create(
    c: &Call<'_>,
    input: CreateLaunchTemplateRequest,
) -> Result<CreateLaunchTemplateResult, ApiError> {
    let cmd = CreateTemplate {
        name: input.launch_template_name,
        description: input.version_description,
        data: data::from_template(&input.launch_template_data)?,
        tags: typed::tag_specifications(input.tag_specifications.as_deref(), "launch-template")?,
        client_token: input.client_token,
    };
    let (t, _) =
        c.st.plane
            .create_launch_template(&cmd)
            .map_err(|e| ApiError::refused(&e))?;
    Ok(CreateLaunchTemplateResult {
        launch_template: Some(template(&t, &cmd.tags, &c.st.account_id)),
        warning: None,
    })
}

/// CreateLaunchTemplateVersion.
pub fn create_version(
    c: &Call<'_>,
    input: CreateLaunchTemplateVersionRequest,
) -> Result<CreateLaunchTemplateVersionResult, ApiError> {
    let cmd = CreateVersion {
        id: input.launch_template_id,
        name: input.launch_template_name,
        source_version: input.source_version,
        description: input.version_description,
        data: data::from_template(&input.launch_template_data)?,
        client_token: input.client_token,
    };
    let (t, v) =
        c.st.plane
            .create_launch_template_version(&cmd)
            .map_err(|e| ApiError::refused(&e))?;
    let d = versions::data_of(&v).map_err(|e| ApiError::refused(&e))?;
    Ok(CreateLaunchTemplateVersionResult {
        launch_template_version: Some(version(&t, &v, &d, &c.st.account_id)),
        warning: None,
    })
}

/// ModifyLaunchTemplate (`SetDefaultVersion`).
pub fn modify(
    c: &Call<'_>,
    input: ModifyLaunchTemplateRequest,
) -> Result<ModifyLaunchTemplateResult, ApiError> {
    let t =
        c.st.plane
            .modify_launch_template(
                input.launch_template_id.as_deref(),
                input.launch_template_name.as_deref(),
                input.default_version.as_deref(),
            )
            .map_err(|e| ApiError::refused(&e))?;
    let tags = tags_of(c, &t.id)?;
    Ok(ModifyLaunchTemplateResult {
        launch_template: Some(template(&t, &tags, &c.st.account_id)),
    })
}

/// DeleteLaunchTemplate.
pub fn delete(
    c: &Call<'_>,
    input: DeleteLaunchTemplateRequest,
) -> Result<DeleteLaunchTemplateResult, ApiError> {
    let t =
        c.st.plane
            .delete_launch_template(
                input.launch_template_id.as_deref(),
                input.launch_template_name.as_deref(),
            )
            .map_err(|e| ApiError::refused(&e))?;
    Ok(DeleteLaunchTemplateResult {
        launch_template: Some(template(&t, &[], &c.st.account_id)),
    })
}

/// DeleteLaunchTemplateVersions: each version deleted or reported on its own.
pub fn delete_versions(
    c: &Call<'_>,
    input: DeleteLaunchTemplateVersionsRequest,
) -> Result<DeleteLaunchTemplateVersionsResult, ApiError> {
    if input.versions.is_empty() {
        return Err(ApiError::missing("LaunchTemplateVersion"));
    }
    if input.versions.len() > MAX_DELETE {
        return Err(ApiError::invalid(
            "LaunchTemplateVersion",
            format!(
                "{} versions given; the limit is {MAX_DELETE}",
                input.versions.len()
            ),
        ));
    }
    let out =
        c.st.plane
            .delete_launch_template_versions(
                input.launch_template_id.as_deref(),
                input.launch_template_name.as_deref(),
                &input.versions,
            )
            .map_err(|e| ApiError::refused(&e))?;
    let (id, name) = out
        .template
        .as_ref()
        .map(|t| (Some(t.id.clone()), Some(t.name.clone())))
        .unwrap_or_default();
    let ok: Vec<_> = out
        .deleted
        .iter()
        .map(|n| DeleteLaunchTemplateVersionsResponseSuccessItem {
            launch_template_id: id.clone(),
            launch_template_name: name.clone(),
            version_number: Some(*n),
        })
        .collect();
    let failed: Vec<_> = out
        .failed
        .iter()
        .map(
            |(n, code, message)| DeleteLaunchTemplateVersionsResponseErrorItem {
                launch_template_id: id.clone(),
                launch_template_name: name.clone(),
                version_number: *n,
                response_error: Some(ResponseError {
                    code: LaunchTemplateErrorCode::from_wire(code),
                    message: Some(message.clone()),
                }),
            },
        )
        .collect();
    Ok(DeleteLaunchTemplateVersionsResult {
        successfully_deleted_launch_template_versions: (!ok.is_empty()).then_some(ok),
        unsuccessfully_deleted_launch_template_versions: (!failed.is_empty()).then_some(failed),
    })
}
