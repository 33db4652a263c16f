//! What every EC2 handler on typed shapes shares: filters, tags and tag specifications read
//! from the typed input with EC2's limits and field names, and tags and times written into
//! the typed output.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use shapes::ec2;

use super::errors::ApiError;
use super::filters::{self, Filter, MAX_FILTER_VALUES, MAX_FILTERS};
use super::query::{MAX_TAG_VALUE, MAX_TAGS, tag_limit_exceeded, validate_tag_key};

/// The request's `Filter.N` entries: at most [`MAX_FILTERS`] filters of at most
/// [`MAX_FILTER_VALUES`] values each, every one named.
pub fn filters(given: Option<&[ec2::Filter]>) -> Result<Vec<Filter>, ApiError> {
    let given = given.unwrap_or_default();
    if given.len() > MAX_FILTERS {
        return Err(filters::limit_exceeded(format!(
            "The request has {} filters; the limit is {MAX_FILTERS}",
            given.len()
        )));
    }
    let mut out = Vec::with_capacity(given.len());
    for (i, f) in given.iter().enumerate() {
        let n = i + 1;
        let name = f
            .name
            .clone()
            .ok_or_else(|| ApiError::missing(&format!("Filter.{n}.Name")))?;
        let values = f.values.clone().unwrap_or_default();
        if values.len() > MAX_FILTER_VALUES {
            return Err(filters::limit_exceeded(format!(
                "Filter.{n} ({name}) has {} values; the limit is {MAX_FILTER_VALUES} per filter",
                values.len()
            )));
        }
        out.push(Filter::new(name, values));
    }
    Ok(out)
}

/// `Prefix.N.Key` / `Prefix.N.Value` tags (the value may be absent), each key and value
/// within EC2's rules; `prefix` names them in errors (`Tag`, `TagSpecification.1.Tag`).
pub fn tags(
    given: Option<&[ec2::Tag]>,
    prefix: &str,
) -> Result<Vec<(String, Option<String>)>, ApiError> {
    let mut out = Vec::new();
    for (i, t) in given.unwrap_or_default().iter().enumerate() {
        let n = i + 1;
        let key = t
            .key
            .as_deref()
            .ok_or_else(|| ApiError::missing(&format!("{prefix}.{n}.Key")))?;
        validate_tag_key(key, &format!("{prefix}.{n}.Key"))?;
        if t.value
            .as_ref()
            .is_some_and(|v| v.chars().count() > MAX_TAG_VALUE)
        {
            return Err(ApiError::invalid(
                &format!("{prefix}.{n}.Value"),
                format!("tag values are at most {MAX_TAG_VALUE} characters"),
            ));
        }
        out.push((key.to_string(), t.value.clone()));
    }
    Ok(out)
}

/// The tags of `TagSpecification.N` entries, each of whose resource type must be one of
/// `allowed`: the tags by resource type, at most [`MAX_TAGS`] each.
pub fn tag_specifications_for(
    given: Option<&[ec2::TagSpecification]>,
    allowed: &[&str],
) -> Result<HashMap<String, Vec<(String, String)>>, ApiError> {
    let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (i, spec) in given.unwrap_or_default().iter().enumerate() {
        let n = i + 1;
        let field = format!("TagSpecification.{n}.ResourceType");
        let rt = spec
            .resource_type
            .map(|r| r.as_str())
            .ok_or_else(|| ApiError::missing(&field))?;
        if !allowed.contains(&rt) {
            let which = match allowed {
                [one] => format!("the allowed value is '{one}'"),
                _ => format!("the allowed values are: {}", allowed.join(", ")),
            };
            return Err(ApiError::invalid(
                &field,
                format!("'{rt}' cannot be tagged here; {which}"),
            ));
        }
        let list = out.entry(rt.to_string()).or_default();
        let prefix = format!("TagSpecification.{n}.Tag");
        for (k, v) in tags(spec.tags.as_deref(), &prefix)? {
            list.push((k, v.unwrap_or_default()));
        }
        if list.len() > MAX_TAGS {
            return Err(tag_limit_exceeded(&format!(
                "the new {rt} would have {} tags",
                list.len()
            )));
        }
    }
    Ok(out)
}

/// The tags for the one resource type `resource_type` a create action tags.
pub fn tag_specifications(
    given: Option<&[ec2::TagSpecification]>,
    resource_type: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    Ok(tag_specifications_for(given, &[resource_type])?
        .remove(resource_type)
        .unwrap_or_default())
}

/// A required string member: EC2 refuses it empty as if it were missing.
pub fn non_empty<'a>(value: &'a str, field: &str) -> Result<&'a str, ApiError> {
    if value.is_empty() {
        return Err(ApiError::missing(field));
    }
    Ok(value)
}

/// A page of a Describe action's answer, from its `MaxResults` and `NextToken`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// How many items at most; `None` when the caller asked for no pages.
    pub max: Option<usize>,
    /// The key of the last item of the previous page.
    after: Option<String>,
}

const TOKEN_PREFIX: &str = "kec2-page:";

impl Page {
    /// Reads `MaxResults` (within `min..=max`, as the action documents) and `NextToken` (a
    /// token this agent gave).
    pub fn new(
        max_results: Option<i32>,
        next_token: Option<&str>,
        min: i32,
        max: i32,
    ) -> Result<Self, ApiError> {
        if let Some(n) = max_results
            && !(min..=max).contains(&n)
        {
            return Err(ApiError::invalid(
                "MaxResults",
                format!("'{n}' is not an integer from {min} to {max}"),
            ));
        }
        let after = match next_token {
            None | Some("") => None,
            Some(t) => Some(decode_token(t).ok_or_else(|| {
                ApiError::invalid(
                    "NextToken",
                    format!(
                        "'{}' is not a token this agent gave",
                        t.chars().take(100).collect::<String>()
                    ),
                )
            })?),
        };
        Ok(Self {
            max: max_results.map(|n| n as usize),
            after,
        })
    }

    /// Whether the caller asked for pages.
    pub fn requested(&self) -> bool {
        self.max.is_some() || self.after.is_some()
    }

    /// The page of `items`, and the token of the next page if there is one. Paged answers
    /// are in the order of `key` (ids), so that a page boundary stays put whatever is created
    /// or deleted in between; unpaged ones keep the order given.
    pub fn apply<T>(
        &self,
        mut items: Vec<T>,
        key: impl Fn(&T) -> &str,
    ) -> (Vec<T>, Option<String>) {
        if !self.requested() {
            return (items, None);
        }
        items.sort_by(|a, b| key(a).cmp(key(b)));
        if let Some(after) = &self.after {
            let start = items.partition_point(|i| key(i) <= after.as_str());
            items.drain(..start);
        }
        let next = match self.max {
            Some(max) if items.len() > max => {
                items.truncate(max);
                items.last().map(|i| encode_token(key(i)))
            }
            _ => None,
        };
        (items, next)
    }
}

fn encode_token(key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{TOKEN_PREFIX}{key}"))
}

fn decode_token(token: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix(TOKEN_PREFIX)
        .map(str::to_string)
}

/// A resource's tags as an output's `tagSet`: left out when there are none.
pub fn tag_set(tags: &[(String, String)]) -> Option<Vec<ec2::Tag>> {
    (!tags.is_empty()).then(|| {
        tags.iter()
            .map(|(k, v)| ec2::Tag {
                key: Some(k.clone()),
                value: Some(v.clone()),
            })
            .collect()
    })
}

/// A time the state database holds (RFC 3339), for an output; `None` if it does not parse.
pub fn time(stored: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(stored)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_keep_ec2s_limits_and_names() {
        let f = |name: Option<&str>, values: usize| ec2::Filter {
            name: name.map(str::to_string),
            values: Some(vec!["v".to_string(); values]),
        };
        let ok = filters(Some(&[f(Some("tag:Name"), 2)])).unwrap();
        assert_eq!((ok[0].name.as_str(), ok[0].values.len()), ("tag:Name", 2));
        let e = filters(Some(&[f(Some("a"), 1), f(None, 1)])).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.message.contains("Filter.2.Name")),
            ("MissingParameter", true)
        );
        let e = filters(Some(&vec![f(Some("a"), 1); MAX_FILTERS + 1])).unwrap_err();
        assert_eq!(e.code, "FilterLimitExceeded");
        let e = filters(Some(&[f(Some("a"), MAX_FILTER_VALUES + 1)])).unwrap_err();
        assert_eq!(e.code, "FilterLimitExceeded");
    }

    #[test]
    fn pages_follow_the_ids_and_survive_deletions() {
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let all = ids(&["vol-c", "vol-a", "vol-d", "vol-b"]);
        let unpaged = Page::new(None, None, 5, 1000).unwrap();
        assert_eq!(unpaged.apply(all.clone(), |s| s), (all.clone(), None));
        let first = Page::new(Some(2), None, 1, 1000).unwrap();
        let (page, token) = first.apply(all.clone(), |s| s);
        assert_eq!(page, ids(&["vol-a", "vol-b"]));
        let token = token.unwrap();
        // vol-b is deleted before the next page is asked for.
        let rest = ids(&["vol-c", "vol-a", "vol-d"]);
        let second = Page::new(Some(2), Some(&token), 1, 1000).unwrap();
        assert_eq!(second.apply(rest, |s| s), (ids(&["vol-c", "vol-d"]), None));
        assert_eq!(
            Page::new(Some(0), None, 5, 1000).unwrap_err().code,
            "InvalidParameterValue"
        );
        assert_eq!(
            Page::new(None, Some("forged"), 5, 1000).unwrap_err().code,
            "InvalidParameterValue"
        );
    }

    #[test]
    fn tag_specifications_name_the_field_and_keep_the_limits() {
        let spec = |rt: ec2::ResourceType, n: usize| ec2::TagSpecification {
            resource_type: Some(rt),
            tags: Some(
                (0..n)
                    .map(|i| ec2::Tag {
                        key: Some(format!("k{i}")),
                        value: Some("v".into()),
                    })
                    .collect(),
            ),
        };
        let tags =
            tag_specifications(Some(&[spec(ec2::ResourceType::KeyPair, 2)]), "key-pair").unwrap();
        assert_eq!(
            tags,
            vec![("k0".into(), "v".into()), ("k1".into(), "v".into())]
        );
        let e = tag_specifications(Some(&[spec(ec2::ResourceType::Volume, 1)]), "key-pair")
            .unwrap_err();
        assert!(
            e.message.contains("TagSpecification.1.ResourceType"),
            "{}",
            e.message
        );
        let e = tag_specifications(
            Some(&[spec(ec2::ResourceType::KeyPair, MAX_TAGS + 1)]),
            "key-pair",
        )
        .unwrap_err();
        assert_eq!(e.code, "TagLimitExceeded");
        assert_eq!(tag_set(&[]), None);
    }
}
