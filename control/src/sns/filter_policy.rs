//! Subscription filter policies on message attributes (`FilterPolicy`, with
//! `FilterPolicyScope` `MessageAttributes`): a JSON object naming at most five attributes,
//! each with an array of conditions, one of which must hold (and every named attribute must
//! match). Conditions: a string or a number (equal), `{"prefix": s}`, `{"suffix": s}`,
//! `{"equals-ignore-case": s}`, `{"anything-but": value or [values]}`, `{"anything-but":
//! {"prefix": s}}`, `{"numeric": [op, n (, op, n)]}` with `=`, `<`, `<=`, `>`, `>=`, and
//! `{"exists": bool}`. As on SNS, an attribute a message lacks matches only `{"exists":
//! false}`; a `String.Array` attribute matches when one of its elements does.

use serde_json::{Map, Value};

use super::message::MessageAttribute;

/// The most attributes a policy names.
pub const MAX_KEYS: usize = 5;
/// The most combinations of values (the product of each attribute's count).
pub const MAX_COMBINATIONS: usize = 150;
/// The longest policy, in bytes.
pub const MAX_LEN: usize = 256 * 1024;

/// A checked filter policy.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPolicy(Vec<(String, Vec<Condition>)>);

/// One condition on an attribute's value.
#[derive(Debug, Clone, PartialEq)]
enum Condition {
    Exact(String),
    Number(f64),
    Prefix(String),
    Suffix(String),
    EqualsIgnoreCase(String),
    AnythingBut(Vec<Value>),
    AnythingButPrefix(String),
    Numeric(Vec<(String, f64)>),
    Exists(bool),
}

/// Why a filter policy is refused (SNS's `InvalidParameter`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterPolicyError {
    /// Not a JSON object.
    #[error("Invalid parameter: FilterPolicy: failed to parse JSON, or not a JSON object")]
    Json,
    /// A member of the wrong form.
    #[error("Invalid parameter: FilterPolicy: {0}")]
    Shape(String),
    /// Too many attributes or combinations.
    #[error(
        "Invalid parameter: FilterPolicy: Filter policy is too complex: at most {MAX_KEYS} attributes and {MAX_COMBINATIONS} combinations"
    )]
    TooComplex,
}

fn shape(s: impl Into<String>) -> FilterPolicyError {
    FilterPolicyError::Shape(s.into())
}

/// Reads and checks a filter policy.
pub fn parse(text: &str) -> Result<FilterPolicy, FilterPolicyError> {
    if text.len() > MAX_LEN {
        return Err(FilterPolicyError::TooComplex);
    }
    let v: Value = serde_json::from_str(text).map_err(|_| FilterPolicyError::Json)?;
    let Value::Object(o) = v else {
        return Err(FilterPolicyError::Json);
    };
    if o.len() > MAX_KEYS {
        return Err(FilterPolicyError::TooComplex);
    }
    let mut combinations = 1usize;
    let mut keys = Vec::new();
    for (name, rules) in o {
        let Value::Array(rules) = rules else {
            return Err(shape(format!(
                "the value of {name:?} must be an array of conditions (nested keys are for the MessageBody scope, which this endpoint does not filter on)"
            )));
        };
        if rules.is_empty() {
            return Err(shape(format!("the conditions of {name:?} are empty")));
        }
        combinations = combinations.saturating_mul(rules.len());
        if combinations > MAX_COMBINATIONS {
            return Err(FilterPolicyError::TooComplex);
        }
        let conditions = rules
            .into_iter()
            .map(|r| condition(&name, r))
            .collect::<Result<Vec<_>, _>>()?;
        keys.push((name, conditions));
    }
    Ok(FilterPolicy(keys))
}

fn condition(name: &str, rule: Value) -> Result<Condition, FilterPolicyError> {
    let bad = |what: &str| shape(format!("{name:?}: {what}"));
    match rule {
        Value::String(s) => Ok(Condition::Exact(s)),
        Value::Number(n) => n
            .as_f64()
            .map(Condition::Number)
            .ok_or_else(|| bad("a number out of range")),
        Value::Object(o) => operator(name, o),
        _ => Err(bad(
            "a condition is a string, a number or an operator object",
        )),
    }
}

fn operator(name: &str, o: Map<String, Value>) -> Result<Condition, FilterPolicyError> {
    let bad = |what: &str| shape(format!("{name:?}: {what}"));
    if o.len() != 1 {
        return Err(bad("an operator object has exactly one operator"));
    }
    let Some((op, arg)) = o.into_iter().next() else {
        return Err(bad("an operator object has exactly one operator"));
    };
    let text = |arg: Value, what: &str| match arg {
        Value::String(s) if !s.is_empty() => Ok(s),
        _ => Err(bad(&format!("{what} takes a non-empty string"))),
    };
    match op.as_str() {
        "prefix" => Ok(Condition::Prefix(text(arg, "prefix")?)),
        "suffix" => Ok(Condition::Suffix(text(arg, "suffix")?)),
        "equals-ignore-case" => Ok(Condition::EqualsIgnoreCase(text(
            arg,
            "equals-ignore-case",
        )?)),
        "exists" => match arg {
            Value::Bool(b) => Ok(Condition::Exists(b)),
            _ => Err(bad("exists takes true or false")),
        },
        "anything-but" => match arg {
            Value::String(_) | Value::Number(_) => Ok(Condition::AnythingBut(vec![arg])),
            Value::Array(values)
                if !values.is_empty() && values.iter().all(|v| v.is_string() || v.is_number()) =>
            {
                Ok(Condition::AnythingBut(values))
            }
            Value::Object(inner) => match inner.into_iter().next() {
                Some((p, Value::String(s))) if p == "prefix" && !s.is_empty() => {
                    Ok(Condition::AnythingButPrefix(s))
                }
                _ => Err(bad(
                    "anything-but takes a value, a list of values or {\"prefix\": s}",
                )),
            },
            _ => Err(bad(
                "anything-but takes a value, a list of values or {\"prefix\": s}",
            )),
        },
        "numeric" => {
            let Value::Array(parts) = arg else {
                return Err(bad(
                    "numeric takes [op, number] or [op, number, op, number]",
                ));
            };
            if parts.len() != 2 && parts.len() != 4 {
                return Err(bad(
                    "numeric takes [op, number] or [op, number, op, number]",
                ));
            }
            let mut bounds = Vec::new();
            for pair in parts.chunks(2) {
                let (Some(op), Some(n)) = (pair[0].as_str(), pair[1].as_f64()) else {
                    return Err(bad("numeric takes operators and numbers"));
                };
                if !matches!(op, "=" | "<" | "<=" | ">" | ">=") {
                    return Err(bad("numeric operators are =, <, <=, > and >="));
                }
                bounds.push((op.to_string(), n));
            }
            if bounds.len() == 2 && !(bounds[0].0.starts_with('>') && bounds[1].0.starts_with('<'))
            {
                return Err(bad(
                    "a numeric range is a lower bound (> or >=) then an upper (< or <=)",
                ));
            }
            Ok(Condition::Numeric(bounds))
        }
        other => Err(bad(&format!(
            "{:?} is not an operator (prefix, suffix, equals-ignore-case, anything-but, numeric, exists)",
            other.chars().take(32).collect::<String>()
        ))),
    }
}

/// One value of an attribute, as conditions see it.
enum Seen {
    Text(String),
    Number(f64),
}

impl Condition {
    fn holds(&self, v: &Seen) -> bool {
        match (self, v) {
            (Self::Exact(s), Seen::Text(t)) => s == t,
            (Self::Number(n), Seen::Number(x)) => n == x,
            (Self::Prefix(p), Seen::Text(t)) => t.starts_with(p.as_str()),
            (Self::Suffix(p), Seen::Text(t)) => t.ends_with(p.as_str()),
            (Self::EqualsIgnoreCase(s), Seen::Text(t)) => s.to_lowercase() == t.to_lowercase(),
            (Self::AnythingBut(values), v) => !values.iter().any(|b| match (b, v) {
                (Value::String(s), Seen::Text(t)) => s == t,
                (Value::Number(n), Seen::Number(x)) => n.as_f64() == Some(*x),
                _ => false,
            }),
            (Self::AnythingButPrefix(p), Seen::Text(t)) => !t.starts_with(p.as_str()),
            (Self::Numeric(bounds), Seen::Number(x)) => {
                bounds.iter().all(|(op, n)| match op.as_str() {
                    "=" => x == n,
                    "<" => x < n,
                    "<=" => x <= n,
                    ">" => x > n,
                    _ => x >= n,
                })
            }
            _ => false,
        }
    }
}

impl FilterPolicy {
    /// Whether a message with `attributes` passes the policy.
    pub fn matches(&self, attributes: &[MessageAttribute]) -> bool {
        self.0.iter().all(|(name, conditions)| {
            let attribute = attributes.iter().find(|a| &a.name == name);
            let Some(a) = attribute else {
                return conditions.contains(&Condition::Exists(false));
            };
            let values = seen(a);
            conditions.iter().any(|c| match c {
                Condition::Exists(e) => *e,
                c => values.iter().any(|v| c.holds(v)),
            })
        })
    }
}

/// The values an attribute offers the conditions: a string's text, a number's value, the
/// string and number elements of a `String.Array`; none for a binary.
fn seen(a: &MessageAttribute) -> Vec<Seen> {
    let Some(s) = a.string_value.as_deref() else {
        return Vec::new();
    };
    if a.data_type.starts_with("Number") {
        return s.parse().map(Seen::Number).into_iter().collect();
    }
    if a.data_type.starts_with("String.Array") {
        let Ok(Value::Array(items)) = serde_json::from_str::<Value>(s) else {
            return Vec::new();
        };
        return items
            .into_iter()
            .filter_map(|item| match item {
                Value::Number(n) => n.as_f64().map(Seen::Number),
                Value::String(t) => Some(Seen::Text(t)),
                _ => None,
            })
            .collect();
    }
    if a.data_type.starts_with("String") {
        return vec![Seen::Text(s.to_string())];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(name: &str, kind: &str, value: &str) -> MessageAttribute {
        MessageAttribute {
            name: name.into(),
            data_type: kind.into(),
            string_value: Some(value.into()),
            binary_base64: None,
        }
    }

    fn passes(policy: &str, attributes: &[MessageAttribute]) -> bool {
        parse(policy).unwrap().matches(attributes)
    }

    #[test]
    fn exact_values_prefixes_and_anything_but_match_as_on_sns() {
        let high = [
            attr("level", "String", "high"),
            attr("cpu", "Number", "93.5"),
        ];
        assert!(passes(r#"{"level": ["high", "critical"]}"#, &high));
        assert!(!passes(r#"{"level": ["low"]}"#, &high));
        assert!(passes(
            r#"{"level": [{"prefix": "hi"}], "cpu": [{"numeric": [">", 90]}]}"#,
            &high
        ));
        assert!(!passes(
            r#"{"cpu": [{"numeric": [">=", 0, "<", 90]}]}"#,
            &high
        ));
        assert!(passes(r#"{"cpu": [93.5]}"#, &high));
        assert!(passes(
            r#"{"level": [{"anything-but": ["low", "medium"]}]}"#,
            &high
        ));
        assert!(!passes(
            r#"{"level": [{"anything-but": {"prefix": "h"}}]}"#,
            &high
        ));
        assert!(passes(
            r#"{"level": [{"equals-ignore-case": "HIGH"}]}"#,
            &high
        ));
        assert!(passes(r#"{"level": [{"suffix": "gh"}]}"#, &high));
        // A missing attribute matches only exists: false.
        assert!(!passes(r#"{"team": [{"anything-but": "ops"}]}"#, &high));
        assert!(passes(r#"{"team": [{"exists": false}]}"#, &high));
        assert!(!passes(r#"{"level": [{"exists": false}]}"#, &high));
        assert!(passes(r#"{"level": [{"exists": true}]}"#, &high));
        let tags = [attr("tags", "String.Array", r#"["red", "blue", 7]"#)];
        assert!(passes(r#"{"tags": ["blue"]}"#, &tags));
        assert!(passes(r#"{"tags": [7]}"#, &tags));
        assert!(!passes(r#"{"tags": ["green"]}"#, &tags));
    }

    #[test]
    fn malformed_or_too_complex_policies_are_refused() {
        for bad in [
            "",
            "[]",
            r#"{"a": "x"}"#,
            r#"{"a": []}"#,
            r#"{"a": [true]}"#,
            r#"{"a": [{"prefix": ""}]}"#,
            r#"{"a": [{"numeric": ["<", 1, ">", 0]}]}"#,
            r#"{"a": [{"numeric": ["~", 1]}]}"#,
            r#"{"a": [{"regex": "x"}]}"#,
            r#"{"a": [{"prefix": "x", "suffix": "y"}]}"#,
            r#"{"a": {"b": ["nested"]}}"#,
            r#"{"a":[1],"b":[1],"c":[1],"d":[1],"e":[1],"f":[1]}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let wide: Vec<String> = (0..13).map(|i| format!("\"v{i}\"")).collect();
        let policy = format!(r#"{{"a": [{0}], "b": [{0}]}}"#, wide.join(","));
        assert_eq!(parse(&policy).unwrap_err(), FilterPolicyError::TooComplex);
    }
}
