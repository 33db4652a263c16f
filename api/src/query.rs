//! The EC2 form's strict rules, checked before the model-driven decoding (`wire`) reads it:
//! strict percent-decoding, no parameter twice, only characters XML can carry, a bound on
//! the count; and EC2's tag limits.

use super::errors::ApiError;

/// The most parameters one request may carry (query string and body together). It is far
/// above what any action needs (50 filters of 200 values are 10,050) and keeps every list a
/// request gives within what one SQLite statement can bind.
pub const MAX_PARAMS: usize = 20_000;
/// The most tags one resource may carry (EC2's limit).
pub use control::ec2::tags::MAX_TAGS;
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

/// Whether XML 1.0 can carry `c` at all (not even a character reference may name the C0
/// controls but tab, newline and return, nor U+FFFE and U+FFFF): a value holding another
/// could never be described again.
pub fn xml_char(c: char) -> bool {
    !matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
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

/// Checks a request's pairs as the EC2 front always has: no more than [`MAX_PARAMS`], no
/// parameter twice, and only characters XML can carry (a value holding another could be
/// stored but never described again).
pub fn check_pairs(pairs: &[(String, String)]) -> Result<(), FormError> {
    if pairs.len() > MAX_PARAMS {
        return Err(FormError::TooManyParameters);
    }
    let mut seen = std::collections::HashSet::with_capacity(pairs.len());
    for (k, v) in pairs {
        if let Some(c) = k.chars().chain(v.chars()).find(|c| !xml_char(*c)) {
            return Err(FormError::BadCharacter {
                name: k.chars().filter(|c| xml_char(*c)).take(60).collect(),
                code: u32::from(c),
            });
        }
        if !seen.insert(k.as_str()) {
            return Err(FormError::Duplicate(k.clone()));
        }
    }
    Ok(())
}

/// EC2's `TagLimitExceeded`, saying what would exceed [`MAX_TAGS`].
pub fn tag_limit_exceeded(what: &str) -> ApiError {
    ApiError::refused(&control::ec2::tags::TagsError::TooMany(what.into()))
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
            check_pairs(&control).unwrap_err(),
            FormError::BadCharacter {
                name: "Tag.1.Value".into(),
                code: 1
            }
        );
        let fine = parse_pairs("Description=tab%09new%0Aline%0D%C3%BC").unwrap();
        assert!(check_pairs(&fine).is_ok());
        let dup = parse_pairs("a=1&a=2").unwrap();
        assert_eq!(
            check_pairs(&dup).unwrap_err(),
            FormError::Duplicate("a".into())
        );
    }
}
