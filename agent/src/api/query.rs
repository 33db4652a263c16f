//! The EC2 Query protocol's form parameters: strict parsing, typed getters with EC2 errors,
//! and the `Name.N` list, `Filter.N.Name`/`Filter.N.Value.M` and tag conventions.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::errors::ApiError;
use super::filters::{self, Filter, MAX_FILTER_VALUES, MAX_FILTERS};
use super::xml::xml_char;

/// The most parameters one request may carry (query string and body together). It is far
/// above what any action needs (50 filters of 200 values are 10,050) and keeps every list a
/// request gives within what one SQLite statement can bind.
pub const MAX_PARAMS: usize = 20_000;
/// The most tags one resource may carry (EC2's limit).
pub const MAX_TAGS: usize = 50;
/// The longest tag key, in characters (EC2's limit).
pub const MAX_TAG_KEY: usize = 128;
/// The longest tag value, in characters (EC2's limit).
pub const MAX_TAG_VALUE: usize = 256;

/// Errors decoding a form body or query string.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormError {
    /// A `%` not followed by two hex digits.
    #[error("bad percent-encoding in {0:?}")]
    BadEscape(String),
    /// The decoded bytes are not UTF-8.
    #[error("parameter {0:?} is not UTF-8")]
    NotUtf8(String),
    /// The same parameter twice.
    #[error("parameter {0} is given more than once")]
    Duplicate(String),
    /// A parameter with an empty name.
    #[error("a parameter has an empty name")]
    EmptyName,
    /// A character XML cannot carry (a C0 control but tab, newline and return; U+FFFE or
    /// U+FFFF): stored, it could never be described again.
    #[error("parameter {name} contains the character U+{code:04X}, which is not allowed")]
    BadCharacter {
        /// The parameter.
        name: String,
        /// The character's code point.
        code: u32,
    },
    /// More parameters than [`MAX_PARAMS`].
    #[error("the request has more than {MAX_PARAMS} parameters")]
    TooManyParameters,
}

/// Decodes one `application/x-www-form-urlencoded` component.
pub fn decode(s: &str) -> Result<String, FormError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| FormError::BadEscape(s.chars().take(60).collect()))?;
                out.push(hex);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| FormError::NotUtf8(s.chars().take(60).collect()))
}

/// Parses `a=1&b=2` into pairs, in order.
pub fn parse_pairs(s: &str) -> Result<Vec<(String, String)>, FormError> {
    let mut out = Vec::new();
    for part in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let k = decode(k)?;
        if k.is_empty() {
            return Err(FormError::EmptyName);
        }
        out.push((k, decode(v)?));
    }
    Ok(out)
}

/// A request's parameters.
#[derive(Debug, Default, Clone)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Collects pairs, refusing duplicates and more than [`MAX_PARAMS`] of them.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, FormError> {
        if pairs.len() > MAX_PARAMS {
            return Err(FormError::TooManyParameters);
        }
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            if let Some(c) = k.chars().chain(v.chars()).find(|c| !xml_char(*c)) {
                return Err(FormError::BadCharacter {
                    name: k.chars().filter(|c| xml_char(*c)).take(60).collect(),
                    code: u32::from(c),
                });
            }
            if map.insert(k.clone(), v).is_some() {
                return Err(FormError::Duplicate(k));
            }
        }
        Ok(Self(map))
    }

    /// A parameter, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A parameter that must be given and non-empty.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ApiError::missing(name)),
        }
    }

    /// An integer parameter within `min..=max`.
    pub fn int(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        match v.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::invalid(
                name,
                format!("'{v}' is not an integer from {min} to {max}"),
            )),
        }
    }

    /// Every parameter name.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// A boolean parameter (`true`/`false`).
    pub fn bool(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::invalid(
                name,
                format!("'{v}' is not true or false"),
            )),
        }
    }

    /// The parameters whose names start with `prefix.`, as (the rest of the name, value):
    /// a range of the sorted map, so finding them costs no scan of the others.
    fn under<'a>(&'a self, prefix: &str) -> impl Iterator<Item = (&'a str, &'a String)> {
        let start = format!("{prefix}.");
        self.0
            .range::<str, _>((Bound::Included(start.as_str()), Bound::Unbounded))
            .map_while(move |(k, v)| Some((k.strip_prefix(start.as_str())?, v)))
    }

    /// `Prefix.1`, `Prefix.2`, ... in index order.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let mut items: Vec<(u64, String)> = self
            .under(prefix)
            .filter_map(|(rest, v)| Some((rest.parse().ok()?, v.clone())))
            .collect();
        items.sort_by_key(|(n, _)| *n);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// The indices `N` present under `Prefix.N.`.
    pub fn indices(&self, prefix: &str) -> Vec<u64> {
        let mut idx: Vec<u64> = self
            .under(prefix)
            .filter_map(|(rest, _)| rest.split('.').next()?.parse().ok())
            .collect();
        idx.sort_unstable();
        idx.dedup();
        idx
    }

    /// `Filter.N.Name` with its `Filter.N.Value.M` values: at most [`MAX_FILTERS`] filters
    /// of at most [`MAX_FILTER_VALUES`] values each.
    pub fn filters(&self) -> Result<Vec<Filter>, ApiError> {
        let indices = self.indices("Filter");
        if indices.len() > MAX_FILTERS {
            return Err(filters::limit_exceeded(format!(
                "The request has {} filters; the limit is {MAX_FILTERS}",
                indices.len()
            )));
        }
        let mut out = Vec::with_capacity(indices.len());
        for n in indices {
            let name = self
                .get(&format!("Filter.{n}.Name"))
                .ok_or_else(|| ApiError::missing(&format!("Filter.{n}.Name")))?
                .to_string();
            let values = self.list(&format!("Filter.{n}.Value"));
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

    /// `Prefix.N.Key` / `Prefix.N.Value` pairs (the value may be absent).
    pub fn tags(&self, prefix: &str) -> Result<Vec<(String, Option<String>)>, ApiError> {
        let mut out = Vec::new();
        for n in self.indices(prefix) {
            let key = self
                .get(&format!("{prefix}.{n}.Key"))
                .ok_or_else(|| ApiError::missing(&format!("{prefix}.{n}.Key")))?;
            validate_tag_key(key, &format!("{prefix}.{n}.Key"))?;
            let value = self.get(&format!("{prefix}.{n}.Value")).map(str::to_string);
            if value
                .as_ref()
                .is_some_and(|v| v.chars().count() > MAX_TAG_VALUE)
            {
                return Err(ApiError::invalid(
                    &format!("{prefix}.{n}.Value"),
                    format!("tag values are at most {MAX_TAG_VALUE} characters"),
                ));
            }
            out.push((key.to_string(), value));
        }
        Ok(out)
    }

    /// Tags from `TagSpecification.N` entries whose resource type is `resource_type`.
    pub fn tag_specifications(
        &self,
        resource_type: &str,
    ) -> Result<Vec<(String, String)>, ApiError> {
        Ok(self
            .tag_specifications_for(&[resource_type])?
            .remove(resource_type)
            .unwrap_or_default())
    }

    /// `TagSpecification.N` where each may name any of `allowed` resource types: the tags by
    /// resource type.
    pub fn tag_specifications_for(
        &self,
        allowed: &[&str],
    ) -> Result<std::collections::HashMap<String, Vec<(String, String)>>, ApiError> {
        let mut out: std::collections::HashMap<String, Vec<(String, String)>> =
            std::collections::HashMap::new();
        for n in self.indices("TagSpecification") {
            let field = format!("TagSpecification.{n}.ResourceType");
            let rt = self.get(&field).ok_or_else(|| ApiError::missing(&field))?;
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
            for (k, v) in self.tags(&format!("TagSpecification.{n}.Tag"))? {
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
}

/// EC2's `TagLimitExceeded`, saying what would exceed [`MAX_TAGS`].
pub fn tag_limit_exceeded(what: &str) -> ApiError {
    ApiError::new(
        "TagLimitExceeded",
        format!("The maximum number of tags per resource ({MAX_TAGS}) would be exceeded: {what}"),
    )
}

/// Checks a tag key: 1 to 128 characters, not starting with `aws:`.
pub fn validate_tag_key(key: &str, field: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.chars().count() > MAX_TAG_KEY {
        return Err(ApiError::invalid(
            field,
            format!("tag keys are 1 to {MAX_TAG_KEY} characters"),
        ));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(ApiError::invalid(
            field,
            "tag keys may not start with 'aws:'",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms_strictly() {
        assert_eq!(
            parse_pairs("Action=RunInstances&A=b+c%21").unwrap(),
            vec![
                ("Action".into(), "RunInstances".into()),
                ("A".into(), "b c!".into())
            ]
        );
        assert!(matches!(parse_pairs("a=%zz"), Err(FormError::BadEscape(_))));
        assert!(matches!(parse_pairs("a=%+f"), Err(FormError::BadEscape(_))));
        assert!(matches!(parse_pairs("a=%4"), Err(FormError::BadEscape(_))));
        assert!(matches!(parse_pairs("a=%ff"), Err(FormError::NotUtf8(_))));
        assert!(matches!(parse_pairs("=x"), Err(FormError::EmptyName)));
        let control = parse_pairs("Tag.1.Value=a%01b").unwrap();
        assert_eq!(
            Params::from_pairs(control).unwrap_err(),
            FormError::BadCharacter {
                name: "Tag.1.Value".into(),
                code: 1
            }
        );
        let fine = parse_pairs("Description=tab%09new%0Aline%0D%C3%BC").unwrap();
        assert!(Params::from_pairs(fine).is_ok());
        let dup = parse_pairs("a=1&a=2").unwrap();
        assert_eq!(
            Params::from_pairs(dup).unwrap_err(),
            FormError::Duplicate("a".into())
        );
    }

    #[test]
    fn lists_and_filters() {
        let p = Params::from_pairs(
            parse_pairs(
                "InstanceId.2=b&InstanceId.1=a&InstanceId.10=c&Filter.1.Name=tag:x&\
                 Filter.1.Value.1=1&Filter.1.Value.2=2",
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(p.list("InstanceId"), vec!["a", "b", "c"]);
        assert_eq!(
            p.filters().unwrap(),
            vec![Filter::new("tag:x".into(), vec!["1".into(), "2".into()])]
        );
    }
}
