//! Tag actions: CreateTags, DeleteTags, DescribeTags.

use super::Call;
use super::errors::ApiError;
use super::query::{MAX_TAGS, tag_limit_exceeded};
use super::xml::Xml;
use crate::state::tags;

/// The most resources CreateTags and DeleteTags take, and the most tags DeleteTags takes
/// (EC2's limits).
const MAX_PER_CALL: usize = 1000;

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

/// The `ResourceId.N` list: 1 to [`MAX_PER_CALL`] ids.
fn resource_ids(c: &Call<'_>) -> Result<Vec<String>, ApiError> {
    let ids = c.p.list("ResourceId");
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
pub fn create(c: &Call<'_>) -> Result<String, ApiError> {
    let ids = resource_ids(c)?;
    let new: Vec<(String, String)> =
        c.p.tags("Tag")?
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect();
    if new.is_empty() {
        return Err(ApiError::missing("Tag"));
    }
    if new.len() > MAX_TAGS {
        return Err(tag_limit_exceeded(&format!("{} tags given", new.len())));
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
            return Err(tag_limit_exceeded(&format!(
                "resource '{id}' would have {} tags",
                have.len() + added
            )));
        }
        tags::put(&tx, id, &new)?;
    }
    tx.commit()?;
    Ok(Xml::returns_true("CreateTags", c.request_id))
}

/// DeleteTags: named keys (optionally only with a given value), or every tag.
pub fn delete(c: &Call<'_>) -> Result<String, ApiError> {
    let ids = resource_ids(c)?;
    let keys = c.p.tags("Tag")?;
    if keys.len() > MAX_PER_CALL {
        return Err(ApiError::invalid(
            "Tag",
            format!("{} tags given; the limit is {MAX_PER_CALL}", keys.len()),
        ));
    }
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
    for f in &filters {
        if !matches!(
            f.name.as_str(),
            "resource-id" | "resource-type" | "key" | "value"
        ) {
            return Err(ApiError::invalid(
                &f.name,
                "unknown filter; supported: resource-id, resource-type, key, value",
            ));
        }
    }
    let rows = tags::all(&c.st.db.lock())?;
    let mut x = Xml::response("DescribeTags", c.request_id);
    x.open("tagSet");
    for t in rows {
        let rtype = resource_type(&t.resource_id).unwrap_or("unknown");
        let keep = filters.iter().all(|f| {
            let field = match f.name.as_str() {
                "resource-id" => &t.resource_id,
                "resource-type" => rtype,
                "key" => &t.key,
                _ => &t.value,
            };
            f.matches(field)
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
