//! Tag actions: CreateTags, DeleteTags, DescribeTags.

use shapes::Empty;
use shapes::ec2::{
    CreateTagsRequest, DeleteTagsRequest, DescribeTagsRequest, DescribeTagsResult, ResourceType,
    TagDescription,
};

use super::Call;
use super::errors::ApiError;
use super::filters::canonical_name;
use super::typed::{self, Page};
use state::tags;

/// The most resources CreateTags and DeleteTags take, and the most tags DeleteTags takes
/// (EC2's limits).
const MAX_PER_CALL: usize = 1000;

pub use control::ec2::tags::resource_type;

/// The `ResourceId.N` list: 1 to [`MAX_PER_CALL`] ids.
fn resource_ids(ids: Vec<String>) -> Result<Vec<String>, ApiError> {
    if ids.is_empty() {
        return Err(ApiError::missing("ResourceId"));
    }
    if ids.len() > MAX_PER_CALL {
        return Err(ApiError::invalid(
            "ResourceId",
            format!(
                "{} resource ids given; the limit is {MAX_PER_CALL}",
                ids.len()
            ),
        ));
    }
    Ok(ids)
}

/// CreateTags.
pub fn create(c: &Call<'_>, input: CreateTagsRequest) -> Result<Empty, ApiError> {
    let ids = resource_ids(input.resources)?;
    let new: Vec<(String, String)> = typed::tags(Some(&input.tags), "Tag")?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    if new.is_empty() {
        return Err(ApiError::missing("Tag"));
    }
    c.st.plane
        .create_tags(&ids, &new)
        .map_err(|e| ApiError::refused(&e))?;
    Ok(Empty::default())
}

/// DeleteTags: named keys (optionally only with a given value), or every tag.
pub fn delete(c: &Call<'_>, input: DeleteTagsRequest) -> Result<Empty, ApiError> {
    let ids = resource_ids(input.resources)?;
    let keys = typed::tags(input.tags.as_deref(), "Tag")?;
    if keys.len() > MAX_PER_CALL {
        return Err(ApiError::invalid(
            "Tag",
            format!("{} tags given; the limit is {MAX_PER_CALL}", keys.len()),
        ));
    }
    c.st.plane
        .delete_tags(&ids, &keys)
        .map_err(|e| ApiError::refused(&e))?;
    Ok(Empty::default())
}

/// The `resourceType` DescribeTags shows for an id: a taggable type, or the type of a
/// resource tagged at its creation only (volumes and snapshots).
fn described_type(id: &str) -> Option<&'static str> {
    resource_type(id).or_else(|| {
        [("vol-", "volume"), ("snap-", "snapshot")]
            .iter()
            .find(|(prefix, _)| id.starts_with(prefix))
            .map(|(_, t)| *t)
    })
}

/// DescribeTags with filters `resource-id`, `resource-type`, `key`, `value`, and
/// `MaxResults` (5 to 1000) with `NextToken`.
pub fn describe(c: &Call<'_>, input: DescribeTagsRequest) -> Result<DescribeTagsResult, ApiError> {
    let mut filters = typed::filters(input.filters.as_deref())?;
    for f in &mut filters {
        let known = |n: &str| matches!(n, "resource-id" | "resource-type" | "key" | "value");
        f.name = canonical_name(&f.name, known).ok_or_else(|| {
            ApiError::invalid(
                &f.name,
                "unknown filter; supported: resource-id, resource-type, key, value",
            )
        })?;
    }
    let page = Page::new(input.max_results, input.next_token.as_deref(), 5, 1000)?;
    let rows = tags::all(&c.st.db.lock())?;
    let mut out = Vec::new();
    for t in rows {
        let rtype = described_type(&t.resource_id);
        let keep = filters.iter().all(|f| {
            let field = match f.name.as_str() {
                "resource-id" => &t.resource_id,
                "resource-type" => rtype.unwrap_or("unknown"),
                "key" => &t.key,
                _ => &t.value,
            };
            f.matches(field)
        });
        if !keep {
            continue;
        }
        // Pages follow the resource id, then the key: `\0` sorts before any character a
        // key may hold.
        let order = format!("{}\0{}", t.resource_id, t.key);
        out.push((
            order,
            TagDescription {
                resource_id: Some(t.resource_id),
                resource_type: rtype.and_then(ResourceType::from_wire),
                key: Some(t.key),
                value: Some(t.value),
            },
        ));
    }
    let (out, next_token) = page.apply(out, |(order, _)| order);
    Ok(DescribeTagsResult {
        tags: Some(out.into_iter().map(|(_, t)| t).collect()),
        next_token,
    })
}
