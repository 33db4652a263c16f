//! DescribeLaunchTemplates (by id, by name, filters, pages in id order) and
//! DescribeLaunchTemplateVersions (`$Latest`, `$Default`, numbers, `MinVersion` /
//! `MaxVersion`, filters, pages).

use shapes::ec2::{
    DescribeLaunchTemplateVersionsRequest, DescribeLaunchTemplateVersionsResult,
    DescribeLaunchTemplatesRequest, DescribeLaunchTemplatesResult,
};

use super::super::errors::ApiError;
use super::super::filters::{Filter, filters_match};
use super::super::{Call, typed};
use super::{template, version};
use control::ec2::launch_templates::versions::{self, VersionSpec};
use state::launch_templates::{self as lt, TemplateRow};

/// The filters DescribeLaunchTemplates knows besides `tag:KEY` and `tag-key`.
const TEMPLATE_FILTERS: &str = "create-time, launch-template-name";
/// The filters DescribeLaunchTemplateVersions knows.
const VERSION_FILTERS: &str = "create-time, image-id, instance-type, is-default-version, key-name";

/// DescribeLaunchTemplateVersions' `MaxResults` (1 to 200) and `NextToken` (`ltp-N`, the
/// versions already shown): the first version of the page and the page's size.
fn page(max_results: Option<i32>, token: Option<&str>) -> Result<(usize, usize), ApiError> {
    let size = match max_results {
        None => 200,
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "MaxResults",
                    format!("'{n}' is not an integer from 1 to 200"),
                )
            })?,
    };
    let start = match token {
        None => 0,
        Some(t) => t
            .strip_prefix("ltp-")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                ApiError::invalid(
                    "NextToken",
                    format!(
                        "'{}' is not a token this agent gave",
                        t.chars().take(100).collect::<String>()
                    ),
                )
            })?,
    };
    Ok((start, size))
}

/// The page of `items` from `start`, and the token of the next page if any.
fn cut<T>(items: Vec<T>, start: usize, size: usize) -> (Vec<T>, Option<String>) {
    let total = items.len();
    let shown: Vec<T> = items.into_iter().skip(start).take(size).collect();
    let next = (start + size < total).then(|| format!("ltp-{}", start + size));
    (shown, next)
}

/// DescribeLaunchTemplates.
pub fn describe(
    c: &Call<'_>,
    input: DescribeLaunchTemplatesRequest,
) -> Result<DescribeLaunchTemplatesResult, ApiError> {
    let page = typed::Page::new(input.max_results, input.next_token.as_deref(), 1, 200)?;
    let filters: Vec<Filter> = typed::filters(input.filters.as_deref())?;
    let ids = input.launch_template_ids.unwrap_or_default();
    let names = input.launch_template_names.unwrap_or_default();
    let conn = c.st.db.lock();
    let mut rows: Vec<TemplateRow> = Vec::new();
    for id in &ids {
        rows.push(versions::find(&conn, Some(id), None).map_err(|e| ApiError::refused(&e))?);
    }
    for name in &names {
        rows.push(versions::find(&conn, None, Some(name)).map_err(|e| ApiError::refused(&e))?);
    }
    if ids.is_empty() && names.is_empty() {
        rows = lt::all(&conn)?;
    }
    let row_ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let tags = state::tags::for_resources(&conn, &row_ids)?;
    let mut shown = Vec::new();
    for t in &rows {
        let have = tags.get(&t.id).map_or(&[][..], Vec::as_slice);
        let field = |name: &str| match name {
            "launch-template-name" => Some(vec![t.name.clone()]),
            "create-time" => Some(vec![t.created_at.clone()]),
            _ => None,
        };
        if filters_match(&filters, have, TEMPLATE_FILTERS, field)? {
            shown.push(template(t, have, &c.st.account_id));
        }
    }
    let (shown, next_token) = page.apply(shown, |t| t.launch_template_id.as_deref().unwrap_or(""));
    Ok(DescribeLaunchTemplatesResult {
        launch_templates: Some(shown),
        next_token,
    })
}

/// DescribeLaunchTemplateVersions: one template's versions, or without a template the
/// `$Latest` or `$Default` version of every template.
pub fn describe_versions(
    c: &Call<'_>,
    input: DescribeLaunchTemplateVersionsRequest,
) -> Result<DescribeLaunchTemplateVersionsResult, ApiError> {
    let (start, size) = page(input.max_results, input.next_token.as_deref())?;
    let filters: Vec<Filter> = typed::filters(input.filters.as_deref())?;
    let named = input.versions.unwrap_or_default();
    let conn = c.st.db.lock();
    let templates = match (&input.launch_template_id, &input.launch_template_name) {
        (None, None) => {
            if named.is_empty()
                || named
                    .iter()
                    .any(|v| matches!(VersionSpec::parse(v), Some(VersionSpec::Number(_)) | None))
            {
                return Err(ApiError::missing("LaunchTemplateId or LaunchTemplateName"));
            }
            lt::all(&conn)?
        }
        (id, name) => vec![
            versions::find(&conn, id.as_deref(), name.as_deref())
                .map_err(|e| ApiError::refused(&e))?,
        ],
    };
    let mut shown = Vec::new();
    for t in &templates {
        let rows = versions::select(
            &conn,
            t,
            &named,
            input.min_version.as_deref(),
            input.max_version.as_deref(),
        )
        .map_err(|e| ApiError::refused(&e))?;
        for v in rows {
            let d = versions::data_of(&v).map_err(|e| ApiError::refused(&e))?;
            let field = |name: &str| match name {
                "create-time" => Some(vec![v.created_at.clone()]),
                "image-id" => Some(d.image_id.iter().cloned().collect()),
                "instance-type" => Some(d.instance_type.iter().cloned().collect()),
                "key-name" => Some(d.key_name.iter().cloned().collect()),
                "is-default-version" => Some(vec![(v.version == t.default_version).to_string()]),
                _ => None,
            };
            if filters_match(&filters, &[], VERSION_FILTERS, field)? {
                shown.push(version(t, &v, &d, &c.st.account_id));
            }
        }
    }
    let (shown, next_token) = cut(shown, start, size);
    Ok(DescribeLaunchTemplateVersionsResult {
        launch_template_versions: Some(shown),
        next_token,
    })
}
