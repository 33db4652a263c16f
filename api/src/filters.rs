//! The filters every Describe action takes: `Filter.N.Name` with its `Filter.N.Value.M`
//! values, bounded in number as on EC2, matched with EC2's wildcards (`*` any run, `?` one
//! character), and evaluated against a resource's fields and tags.
//!
//! Beside each documented (kebab-case) filter name EC2 accepts its response-field spelling
//! in camelCase: `isDefault` for `is-default`, `vpcId` for `vpc-id`,
//! `attachment.instanceId` for `attachment.instance-id`. [`canonical_name`] is that rule,
//! and [`filters_match`] applies it for every Describe action.
//!
//! The matcher is iterative and never backtracks more than one `*`: a pattern is cut at its
//! `*`s into segments once, then the segments are placed leftmost in the text one after the
//! other. A match costs at most O(pattern × text), whatever the caller sends.

use super::errors::ApiError;

/// The most filters one request may give (EC2's limit).
pub const MAX_FILTERS: usize = 50;
/// The most values one filter may give (EC2's limit).
pub const MAX_FILTER_VALUES: usize = 200;

/// EC2's error for too many filters or values.
pub fn limit_exceeded(message: String) -> ApiError {
    ApiError::new("FilterLimitExceeded", message)
}

/// One filter: its name, its values as given, and the values as wildcard patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The filter's name, such as `tag:Name`.
    pub name: String,
    /// The values, as given.
    pub values: Vec<String>,
    patterns: Vec<Wildcard>,
}

impl Filter {
    /// A filter named `name` with `values`.
    pub fn new(name: String, values: Vec<String>) -> Self {
        let patterns = values.iter().map(|v| Wildcard::new(v)).collect();
        Filter {
            name,
            values,
            patterns,
        }
    }

    /// Whether any of the filter's values matches `text`.
    pub fn matches(&self, text: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(text))
    }
}

/// A wildcard pattern, cut into the runs of characters between its `*`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wildcard {
    /// The runs between `*`s, in order; `?` stands for any one character. There is one
    /// more run than there are `*`s (runs may be empty).
    runs: Vec<Vec<char>>,
    /// The fewest characters a matching text has: the runs' lengths summed.
    min_len: usize,
}

impl Wildcard {
    /// Compiles `pattern`; consecutive `*`s count as one.
    pub fn new(pattern: &str) -> Self {
        let mut runs = vec![Vec::new()];
        let mut last_star = false;
        for c in pattern.chars() {
            if c == '*' {
                if !last_star {
                    runs.push(Vec::new());
                }
                last_star = true;
            } else {
                runs.last_mut().expect("runs is never empty").push(c);
                last_star = false;
            }
        }
        let min_len = runs.iter().map(Vec::len).sum();
        Wildcard { runs, min_len }
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        if text.len() < self.min_len {
            return false;
        }
        let (first, rest) = self.runs.split_first().expect("runs is never empty");
        let Some((last, middle)) = rest.split_last() else {
            // No `*`: the one run is the whole text.
            return text.len() == first.len() && run_at(first, &text);
        };
        let end = text.len() - last.len();
        if !run_at(first, &text) || !run_at(last, &text[end..]) {
            return false;
        }
        // Each middle run goes at its leftmost place after the previous one: that leaves
        // the most room for the runs after it, so no other placement needs trying.
        let mut at = first.len();
        for run in middle {
            match find_run(run, &text[at..end]) {
                Some(found) => at += found + run.len(),
                None => return false,
            }
        }
        true
    }
}

/// Whether `text` starts with `run` (`?` matching any character).
fn run_at(run: &[char], text: &[char]) -> bool {
    text.len() >= run.len() && run.iter().zip(text).all(|(p, t)| *p == '?' || p == t)
}

/// The first offset in `text` where `run` matches.
fn find_run(run: &[char], text: &[char]) -> Option<usize> {
    let last = text.len().checked_sub(run.len())?;
    (0..=last).find(|&i| run_at(run, &text[i..]))
}

/// Whether `text` matches `pattern` (compiling it each time; use [`Wildcard`] to reuse it).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    Wildcard::new(pattern).matches(text)
}

/// The kebab-case spelling of a camelCase filter name (`isDefault` → `is-default`,
/// `attachment.instanceId` → `attachment.instance-id`); `None` for a name with no capital
/// letter or starting with one (response fields are lower camelCase), and for `tag:KEY`
/// filters, whose key is the user's own spelling.
pub fn kebab_case(name: &str) -> Option<String> {
    let camel = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().any(|c| c.is_ascii_uppercase());
    if name.starts_with("tag:") || !camel {
        return None;
    }
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev: Option<char> = None;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if prev.is_some_and(|p| p != '.' && p != '-') {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
        prev = Some(c);
    }
    Some(out)
}

/// The name a filter goes by among the names `known` to an action: `name` itself when it
/// is known, else its kebab-case spelling when that is known (`isDefault` → `is-default`),
/// else `None`.
pub fn canonical_name(name: &str, known: impl Fn(&str) -> bool) -> Option<String> {
    if known(name) {
        return Some(name.to_string());
    }
    kebab_case(name).filter(|k| known(k))
}

/// Evaluates a `tag:KEY` or `tag-key` filter; `None` if the filter is neither.
pub fn tag_filter(filter: &Filter, tags: &[(String, String)]) -> Option<bool> {
    if let Some(key) = filter.name.strip_prefix("tag:") {
        return Some(tags.iter().any(|(k, v)| k == key && filter.matches(v)));
    }
    if filter.name == "tag-key" {
        return Some(tags.iter().any(|(k, _)| filter.matches(k)));
    }
    None
}

/// Whether a resource passes every filter. `field` gives the resource's values for a filter
/// name (`None` for a name it does not know); a camelCase name is tried in its kebab-case
/// spelling too ([`canonical_name`]); `tag:KEY` and `tag-key` are handled here. Unknown
/// names are refused, listing `supported`.
pub fn filters_match(
    filters: &[Filter],
    tags: &[(String, String)],
    supported: &str,
    field: impl Fn(&str) -> Option<Vec<String>>,
) -> Result<bool, ApiError> {
    for filter in filters {
        let have = field(&filter.name)
            .or_else(|| kebab_case(&filter.name).and_then(|kebab| field(&kebab)));
        let keep = match have {
            Some(have) => have.iter().any(|h| filter.matches(h)),
            None => tag_filter(filter, tags).ok_or_else(|| {
                ApiError::invalid(
                    &filter.name,
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("probe*", "probe-1234"));
        assert!(wildcard_match("p?obe", "probe"));
        assert!(!wildcard_match("probe", "probe-1"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("", ""));
        assert!(!wildcard_match("", "a"));
        assert!(!wildcard_match("?", ""));
        assert!(wildcard_match("a*b*c", "a-b-b-c"));
        assert!(!wildcard_match("a*b*c", "a-c-b"));
        assert!(wildcard_match("*web*", "my-web-01"));
        assert!(wildcard_match("ab*ba", "aba-ba"));
        assert!(!wildcard_match("ab*ba", "aba"), "runs may not overlap");
        assert!(wildcard_match("ü?*", "üñï"), "characters, not bytes");
    }

    /// The stack-overflow case: 200,000 `*`s once recursed 200,000 deep.
    #[test]
    fn two_hundred_thousand_stars_match_at_once() {
        let stars = "*".repeat(200_000);
        let started = Instant::now();
        assert!(wildcard_match(&stars, "anything"));
        assert!(wildcard_match(&format!("{stars}x{stars}"), "a-x-b"));
        assert!(!wildcard_match(&format!("{stars}x{stars}"), "a-y-b"));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    /// The backtracking case: `*a*a*a...*ab` against a long run of `a`s took exponential
    /// time in the recursive matcher.
    #[test]
    fn backtracking_patterns_take_linear_time() {
        let pattern = format!("{}b", "*a".repeat(40));
        let text = "a".repeat(256);
        let started = Instant::now();
        assert!(!wildcard_match(&pattern, &text));
        assert!(wildcard_match(&pattern, &format!("{text}b")));
        let long = format!("{}b", "*a".repeat(100_000));
        assert!(!wildcard_match(&long, &"a".repeat(300_000)));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn filters_evaluate_fields_and_tags() {
        let tags = vec![("Name".to_string(), "web-1".to_string())];
        let f = |n: &str, v: &str| vec![Filter::new(n.into(), vec![v.into()])];
        let field = |name: &str| (name == "state").then(|| vec!["running".to_string()]);
        let check = |filters: &[Filter]| filters_match(filters, &tags, "state", field);
        assert!(check(&f("state", "run*")).unwrap());
        assert!(!check(&f("state", "stopped")).unwrap());
        assert!(check(&f("tag:Name", "web-?")).unwrap());
        assert!(!check(&f("tag:Other", "*")).unwrap());
        assert!(check(&f("tag-key", "Na*")).unwrap());
        assert_eq!(
            check(&f("colour", "x")).unwrap_err().code,
            "InvalidParameterValue"
        );
    }

    #[test]
    fn camel_case_names_map_to_kebab_case() {
        assert_eq!(kebab_case("isDefault").as_deref(), Some("is-default"));
        assert_eq!(kebab_case("vpcId").as_deref(), Some("vpc-id"));
        assert_eq!(
            kebab_case("availabilityZone").as_deref(),
            Some("availability-zone")
        );
        assert_eq!(
            kebab_case("attachment.instanceId").as_deref(),
            Some("attachment.instance-id")
        );
        assert_eq!(kebab_case("instance-state-name"), None);
        assert_eq!(kebab_case("IsDefault"), None);
        assert_eq!(kebab_case("tag:isDefault"), None);
        let known = |n: &str| ["is-default", "vpc-id", "instance-state-name"].contains(&n);
        assert_eq!(
            canonical_name("isDefault", known).as_deref(),
            Some("is-default")
        );
        assert_eq!(
            canonical_name("instance-state-name", known).as_deref(),
            Some("instance-state-name")
        );
        assert_eq!(canonical_name("subnetId", known), None);
    }

    #[test]
    fn filters_match_takes_the_response_field_spelling() {
        let tags = vec![("isDefault".to_string(), "x".to_string())];
        let f = |n: &str, v: &str| vec![Filter::new(n.into(), vec![v.into()])];
        let field = |name: &str| (name == "is-default").then(|| vec!["true".to_string()]);
        let check = |filters: &[Filter]| filters_match(filters, &tags, "is-default", field);
        assert!(check(&f("isDefault", "true")).unwrap());
        assert!(!check(&f("isDefault", "false")).unwrap());
        assert!(check(&f("is-default", "true")).unwrap());
        assert!(
            check(&f("tag:isDefault", "x")).unwrap(),
            "tag keys stay as given"
        );
        assert_eq!(
            check(&f("IsDefaultish", "x")).unwrap_err().code,
            "InvalidParameterValue"
        );
    }
}
