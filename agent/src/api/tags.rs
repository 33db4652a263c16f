//! Tag actions: CreateTags, DeleteTags, DescribeTags, and tag filters shared by others.

use super::Call;
use super::errors::ApiError;
use super::images::glob;
use super::xml::Xml;
use crate::state::tags;

/// The most tags one resource may carry.
const MAX_TAGS: usize = 50;

/// Every taggable resource: id prefix, `resourceType`, table, id column, and the error code
/// for an unknown id.
const TAGGABLE: &[(&str, &str, &str, &str, &str)] = &[
    (
        "i-",
        "instance",
        "instances",
        "id",
        "InvalidInstanceID.NotFound",
    ),
    ("ami-", "image", "images", "id", "InvalidAMIID.NotFound"),
    (
        "key-",
        "key-pair",
        "key_pairs",
        "id",
        "InvalidKeyPair.NotFound",
    ),
    ("vpc-", "vpc", "vpcs", "id", "InvalidVpcID.NotFound"),
    (
        "subnet-",
        "subnet",
        "subnets",
        "id",
        "InvalidSubnetID.NotFound",
    ),
    (
        "sg-",
        "security-group",
        "security_groups",
        "id",
        "InvalidGroup.NotFound",
    ),
    (
        "eni-",
        "network-interface",
        "network_interfaces",
        "id",
        "InvalidNetworkInterfaceID.NotFound",
    ),
    (
        "eipalloc-",
        "elastic-ip",
        "addresses",
        "allocation_id",
        "InvalidAllocationID.NotFound",
    ),
];

/// The EC2 resource type of an id, from its prefix.
pub fn resource_type(id: &str) -> Option<&'static str> {
    TAGGABLE.iter().find(|t| id.starts_with(t.0)).map(|t| t.1)
}

/// Evaluates a `tag:KEY` or `tag-key` filter; `None` if `name` is neither.
pub fn tag_filter(name: &str, values: &[String], tags: &[(String, String)]) -> Option<bool> {
    if let Some(key) = name.strip_prefix("tag:") {
        return Some(
            tags.iter()
                .any(|(k, v)| k == key && values.iter().any(|p| glob(p, v))),
        );
    }
    if name == "tag-key" {
        return Some(tags.iter().any(|(k, _)| values.iter().any(|p| glob(p, k))));
    }
    None
}

/// Whether a resource passes every filter. `field` gives the resource's values for a filter
/// name (`None` for a name it does not know); `tag:KEY` and `tag-key` are handled here.
/// Unknown names are refused, listing `supported`.
pub fn filters_match(
    filters: &[(String, Vec<String>)],
    tags: &[(String, String)],
    supported: &str,
    field: impl Fn(&str) -> Option<Vec<String>>,
) -> Result<bool, ApiError> {
    for (name, values) in filters {
        let keep = match field(name) {
            Some(have) => have
                .iter()
                .any(|h| values.iter().any(|pattern| glob(pattern, h))),
            None => tag_filter(name, values, tags).ok_or_else(|| {
                ApiError::invalid(
                    name,
                    format!("unknown filter; supported: {supported}, tag:KEY, tag-key"),
                )
            })?,
        };
        if !keep {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Checks that every id names an existing resource.
fn check_resources(c: &Call<'_>, ids: &[String]) -> Result<(), ApiError> {
    let conn = c.st.db.lock();
    for id in ids {
        let Some(&(_, _, table, column, not_found)) = TAGGABLE.iter().find(|t| id.starts_with(t.0))
        else {
            let prefixes: Vec<&str> = TAGGABLE.iter().map(|t| t.0).collect();
            return Err(ApiError::new(
                "InvalidID",
                format!(
                    "The ID '{id}' is not valid: taggable ids start with {}",
                    prefixes.join(", ")
                ),
            ));
        };
        let exists: bool = conn.query_row(
            &format!("SELECT EXISTS(SELECT 1 FROM {table} WHERE {column} = ?1)"),
            [id],
            |r| r.get(0),
        )?;
        if !exists {
            return Err(ApiError::new(
                not_found,
                format!("The ID '{id}' does not exist"),
            ));
        }
    }
    Ok(())
}

/// CreateTags.
pub fn create(c: &Call<'_>) -> Result<String, ApiError> {
    let ids = c.p.list("ResourceId");
    if ids.is_empty() {
        return Err(ApiError::missing("ResourceId"));
    }
    let new: Vec<(String, String)> =
        c.p.tags("Tag")?
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect();
    if new.is_empty() {
        return Err(ApiError::missing("Tag"));
    }
    check_resources(c, &ids)?;
    let mut conn = c.st.db.lock();
    let tx = conn.transaction()?;
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let existing = tags::for_resources(&tx, &refs)?;
    for id in &ids {
        let have = existing.get(id).map_or(&[][..], Vec::as_slice);
        let added = new
            .iter()
            .filter(|(k, _)| !have.iter().any(|(h, _)| h == k))
            .count();
        if have.len() + added > MAX_TAGS {
            return Err(ApiError::new(
                "TagLimitExceeded",
                format!(
                    "The maximum number of tags ({MAX_TAGS}) for resource '{id}' would be exceeded"
                ),
            ));
        }
        tags::put(&tx, id, &new)?;
    }
    tx.commit()?;
    Ok(Xml::returns_true("CreateTags", c.request_id))
}

/// DeleteTags: named keys (optionally only with a given value), or every tag.
pub fn delete(c: &Call<'_>) -> Result<String, ApiError> {
    let ids = c.p.list("ResourceId");
    if ids.is_empty() {
        return Err(ApiError::missing("ResourceId"));
    }
    let keys = c.p.tags("Tag")?;
    check_resources(c, &ids)?;
    let mut conn = c.st.db.lock();
    let tx = conn.transaction()?;
    for id in &ids {
        if keys.is_empty() {
            tags::delete_all(&tx, id)?;
        }
        for (k, v) in &keys {
            tags::delete(&tx, id, k, v.as_deref())?;
        }
    }
    tx.commit()?;
    Ok(Xml::returns_true("DeleteTags", c.request_id))
}

/// DescribeTags with filters `resource-id`, `resource-type`, `key`, `value`.
pub fn describe(c: &Call<'_>) -> Result<String, ApiError> {
    let filters = c.p.filters()?;
    for (name, _) in &filters {
        if !matches!(
            name.as_str(),
            "resource-id" | "resource-type" | "key" | "value"
        ) {
            return Err(ApiError::invalid(
                name,
                "unknown filter; supported: resource-id, resource-type, key, value",
            ));
        }
    }
    let rows = tags::all(&c.st.db.lock())?;
    let mut x = Xml::response("DescribeTags", c.request_id);
    x.open("tagSet");
    for t in rows {
        let rtype = resource_type(&t.resource_id).unwrap_or("unknown");
        let keep = filters.iter().all(|(name, values)| {
            let field = match name.as_str() {
                "resource-id" => &t.resource_id,
                "resource-type" => rtype,
                "key" => &t.key,
                _ => &t.value,
            };
            values.iter().any(|p| glob(p, field))
        });
        if !keep {
            continue;
        }
        x.open("item")
            .leaf("resourceId", &t.resource_id)
            .leaf("resourceType", rtype)
            .leaf("key", &t.key)
            .leaf("value", &t.value)
            .close("item");
    }
    x.close("tagSet");
    Ok(x.finish())
}
