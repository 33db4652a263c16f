//! Form parameters (`a.b.1=x&...`) as a tree keyed by the dot-separated parts of each
//! name, built without recursion and within the limits.

use std::collections::BTreeMap;

use crate::limits::Limits;

/// Errors reading a form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// More parameters than the limit.
    #[error("the request has more than {0} parameters")]
    TooManyParameters(usize),
    /// A parameter name longer than the limit.
    #[error("a parameter name is longer than {0} characters")]
    NameTooLong(usize),
    /// A parameter name with an empty part (`a..b`, `.a`, or empty).
    #[error("parameter name {0:?} has an empty part")]
    EmptyName(String),
    /// The same parameter twice.
    #[error("parameter {0} is given more than once")]
    Duplicate(String),
    /// A name with more parts than the nesting limit allows.
    #[error("parameter {0} nests deeper than allowed")]
    TooDeep(String),
    /// The body is not UTF-8.
    #[error("the form is not UTF-8")]
    NotUtf8,
}

/// One node: the value given for exactly this name, and the names below it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Node {
    /// The value of the parameter with this exact name.
    pub value: Option<String>,
    /// Parameters named `<this>.<part>...`, by `part`.
    pub children: BTreeMap<String, Node>,
}

/// A parsed form: the tree and the values of `Action` and `Version`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Form {
    /// `Action`.
    pub action: Option<String>,
    /// `Version`.
    pub version: Option<String>,
    /// Every other parameter.
    pub root: Node,
}

/// Whether a query-string parameter belongs to SigV4's presigning, not to the operation.
pub fn is_signing_param(name: &str) -> bool {
    name.starts_with("X-Amz-")
}

/// The pairs of a form-encoded text.
pub fn pairs(text: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(text)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

impl Form {
    /// Reads the query string and the body (either may be empty); the presigning
    /// parameters of the query string are left out.
    pub fn parse(query: &str, body: &[u8], limits: &Limits) -> Result<Self, FormError> {
        std::str::from_utf8(body).map_err(|_| FormError::NotUtf8)?;
        let mut form = Self::default();
        let mut count = 0usize;
        let from_query = pairs(query.as_bytes())
            .into_iter()
            .filter(|(k, _)| !is_signing_param(k));
        for (k, v) in pairs(body).into_iter().chain(from_query) {
            count += 1;
            if count > limits.max_params {
                return Err(FormError::TooManyParameters(limits.max_params));
            }
            form.insert(k, v, limits)?;
        }
        Ok(form)
    }

    fn insert(&mut self, name: String, value: String, limits: &Limits) -> Result<(), FormError> {
        if name.chars().count() > limits.max_name_len {
            return Err(FormError::NameTooLong(limits.max_name_len));
        }
        let slot = match name.as_str() {
            "Action" => Some(&mut self.action),
            "Version" => Some(&mut self.version),
            _ => None,
        };
        if let Some(slot) = slot {
            if slot.replace(value).is_some() {
                return Err(FormError::Duplicate(name));
            }
            return Ok(());
        }
        if name.split('.').count() > limits.max_depth * 4 {
            return Err(FormError::TooDeep(name));
        }
        let mut node = &mut self.root;
        for part in name.split('.') {
            if part.is_empty() {
                return Err(FormError::EmptyName(name));
            }
            node = node.children.entry(part.to_string()).or_default();
        }
        if node.value.replace(value).is_some() {
            return Err(FormError::Duplicate(name));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_tree() {
        let f = Form::parse(
            "X-Amz-Date=1&Version=2016-11-15",
            b"Action=Run&Filter.1.Name=a&Filter.1.Value.1=b+c",
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(f.action.as_deref(), Some("Run"));
        assert_eq!(f.version.as_deref(), Some("2016-11-15"));
        let filter = &f.root.children["Filter"].children["1"];
        assert_eq!(filter.children["Name"].value.as_deref(), Some("a"));
        assert_eq!(
            filter.children["Value"].children["1"].value.as_deref(),
            Some("b c")
        );
        assert!(!f.root.children.contains_key("X-Amz-Date"));
    }

    #[test]
    fn refuses_duplicates_and_bad_names() {
        let l = Limits::default();
        assert_eq!(
            Form::parse("", b"A=1&A=2", &l),
            Err(FormError::Duplicate("A".into()))
        );
        assert!(matches!(
            Form::parse("", b"A..B=1", &l),
            Err(FormError::EmptyName(_))
        ));
        let deep = "a.".repeat(200) + "a=1";
        assert!(matches!(
            Form::parse("", deep.as_bytes(), &l),
            Err(FormError::TooDeep(_))
        ));
        let many = "a=1&b=1&c=1";
        let small = Limits { max_params: 2, ..l };
        assert_eq!(
            Form::parse("", many.as_bytes(), &small),
            Err(FormError::TooManyParameters(2))
        );
    }
}
