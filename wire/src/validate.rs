//! Validation by the model: what a decoded input (or an output about to be encoded)
//! must satisfy. Decoders call the checks as they convert each node; [`value`] walks a
//! whole contract Value.

use std::fmt;

use serde_json::Value;

use crate::model::{Resolved, ServiceModel, Shape, ShapeType};
use crate::scalar;

/// What is wrong with one parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A required member is absent.
    Missing,
    /// A parameter the input shape does not have.
    Unknown,
    /// A value of the wrong type.
    WrongType {
        /// The type the model wants.
        expected: &'static str,
    },
    /// A string outside the enum.
    NotInEnum {
        /// The value given.
        value: String,
        /// The values allowed.
        allowed: Vec<String>,
    },
    /// A number outside `min`/`max`.
    OutOfRange {
        /// The value given.
        value: f64,
        /// The least allowed.
        min: Option<f64>,
        /// The greatest allowed.
        max: Option<f64>,
    },
    /// A string, blob, list or map whose length is outside `min`/`max`.
    BadLength {
        /// The length given.
        len: usize,
        /// The least allowed.
        min: Option<f64>,
        /// The greatest allowed.
        max: Option<f64>,
    },
    /// Nesting deeper than the limit.
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// The same parameter, list index or map key twice.
    Duplicate,
}

/// A parameter that fails the model, named by its path on the wire (`Filter.1.Name` for
/// the query protocols, `Filters[0].Name` for JSON and CBOR).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {kind}")]
pub struct ValidationError {
    /// Where.
    pub path: String,
    /// What.
    pub kind: Kind,
}

impl ValidationError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, kind: Kind) -> Self {
        Self {
            path: path.into(),
            kind,
        }
    }
}

fn bounds(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("between {a} and {b}"),
        (Some(a), None) => format!("at least {a}"),
        (None, Some(b)) => format!("at most {b}"),
        (None, None) => "any".into(),
    }
}

/// The most allowed values an error lists (EC2's `InstanceType` has over 1,400).
pub const MAX_LISTED_VALUES: usize = 20;

/// The allowed values, `, `-separated; past [`MAX_LISTED_VALUES`], the first ones and how
/// many there are in all.
pub fn enum_list(allowed: &[String]) -> String {
    if allowed.len() <= MAX_LISTED_VALUES {
        return allowed.join(", ");
    }
    format!(
        "{}, ... ({} values in all)",
        allowed[..MAX_LISTED_VALUES].join(", "),
        allowed.len()
    )
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("is required"),
            Self::Unknown => f.write_str("is not a parameter of this operation"),
            Self::WrongType { expected } => write!(f, "must be {expected}"),
            Self::NotInEnum { value, allowed } => {
                write!(f, "'{value}' is not one of: {}", enum_list(allowed))
            }
            Self::OutOfRange { value, min, max } => {
                write!(f, "{value} must be {}", bounds(*min, *max))
            }
            Self::BadLength { len, min, max } => {
                write!(f, "has length {len}, which must be {}", bounds(*min, *max))
            }
            Self::TooDeep { limit } => write!(f, "nests deeper than {limit} levels"),
            Self::Duplicate => f.write_str("is given more than once"),
        }
    }
}

/// The type names used in `WrongType`.
pub fn type_name(kind: ShapeType) -> &'static str {
    match kind {
        ShapeType::Structure => "a structure",
        ShapeType::List => "a list",
        ShapeType::Map => "a map",
        ShapeType::String => "a string",
        ShapeType::Integer | ShapeType::Long => "an integer",
        ShapeType::Float | ShapeType::Double => "a number",
        ShapeType::Boolean => "true or false",
        ShapeType::Timestamp => "a timestamp",
        ShapeType::Blob => "base64-encoded bytes",
    }
}

/// The error for a value that is not of `shape`'s type.
pub fn wrong_type(path: &str, shape: &Shape) -> ValidationError {
    ValidationError::new(
        path,
        Kind::WrongType {
            expected: type_name(shape.kind),
        },
    )
}

/// Checks a length against `min`/`max`.
pub fn length(shape: &Shape, len: usize, path: &str) -> Result<(), ValidationError> {
    let n = len as f64;
    if shape.min.is_some_and(|m| n < m) || shape.max.is_some_and(|m| n > m) {
        return Err(ValidationError::new(
            path,
            Kind::BadLength {
                len,
                min: shape.min,
                max: shape.max,
            },
        ));
    }
    Ok(())
}

/// Checks a string: enum and length (in characters).
pub fn string(shape: &Shape, s: &str, path: &str) -> Result<(), ValidationError> {
    if let Some(allowed) = &shape.enum_values
        && !allowed.iter().any(|a| a == s)
    {
        return Err(ValidationError::new(
            path,
            Kind::NotInEnum {
                value: s.chars().take(256).collect(),
                allowed: allowed.clone(),
            },
        ));
    }
    if shape.min.is_some() || shape.max.is_some() {
        length(shape, s.chars().count(), path)?;
    }
    Ok(())
}

/// Checks a number against `min`/`max`.
pub fn number(shape: &Shape, n: f64, path: &str) -> Result<(), ValidationError> {
    if shape.min.is_some_and(|m| n < m) || shape.max.is_some_and(|m| n > m) {
        return Err(ValidationError::new(
            path,
            Kind::OutOfRange {
                value: n,
                min: shape.min,
                max: shape.max,
            },
        ));
    }
    Ok(())
}

/// Checks an integer fits its shape (32 bits for `integer`) and its range.
pub fn integer(shape: &Shape, n: i64, path: &str) -> Result<(), ValidationError> {
    if shape.kind == ShapeType::Integer && i32::try_from(n).is_err() {
        return Err(ValidationError::new(
            path,
            Kind::OutOfRange {
                value: n as f64,
                min: Some(f64::from(i32::MIN)),
                max: Some(f64::from(i32::MAX)),
            },
        ));
    }
    number(shape, n as f64, path)
}

/// Checks that a depth is within the limit.
pub fn depth(d: usize, limit: usize, path: &str) -> Result<(), ValidationError> {
    if d > limit {
        return Err(ValidationError::new(path, Kind::TooDeep { limit }));
    }
    Ok(())
}

/// Walks a contract Value (member names, the contract's scalar forms) against `r`:
/// types, unknown and missing members, enums, ranges and lengths. Paths are
/// botocore-style (`Filters[0].Name`).
pub fn value(
    model: &ServiceModel,
    r: Resolved<'_>,
    v: &Value,
    path: &str,
    limit: usize,
) -> Result<(), ValidationError> {
    walk(model, r, v, path, 0, limit)
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn walk(
    model: &ServiceModel,
    r: Resolved<'_>,
    v: &Value,
    path: &str,
    d: usize,
    limit: usize,
) -> Result<(), ValidationError> {
    depth(d, limit, path)?;
    let shape = r.shape;
    let bad = || wrong_type(path, shape);
    match shape.kind {
        ShapeType::Structure => {
            let obj = v.as_object().ok_or_else(bad)?;
            structure(model, shape, obj, path, d, limit)
        }
        ShapeType::List => {
            let items = v.as_array().ok_or_else(bad)?;
            length(shape, items.len(), path)?;
            let m = model.resolve(shape.member.as_ref().expect("checked at load"));
            for (i, item) in items.iter().enumerate() {
                walk(model, m, item, &format!("{path}[{i}]"), d + 1, limit)?;
            }
            Ok(())
        }
        ShapeType::Map => {
            let obj = v.as_object().ok_or_else(bad)?;
            length(shape, obj.len(), path)?;
            let k = model.resolve(shape.key.as_ref().expect("checked at load"));
            let val = model.resolve(shape.value.as_ref().expect("checked at load"));
            for (key, item) in obj {
                let p = format!("{path}.{key}");
                string(k.shape, key, &p)?;
                walk(model, val, item, &p, d + 1, limit)?;
            }
            Ok(())
        }
        _ => scalar_value(shape, v, path),
    }
}

fn structure(
    model: &ServiceModel,
    shape: &Shape,
    obj: &serde_json::Map<String, Value>,
    path: &str,
    d: usize,
    limit: usize,
) -> Result<(), ValidationError> {
    if let Some(unknown) = obj.keys().find(|k| shape.members.get(k).is_none()) {
        return Err(ValidationError::new(join(path, unknown), Kind::Unknown));
    }
    for (name, member) in shape.members.iter() {
        match obj.get(name) {
            None | Some(Value::Null) if shape.is_required(name) => {
                return Err(ValidationError::new(join(path, name), Kind::Missing));
            }
            None | Some(Value::Null) => {}
            Some(item) => walk(
                model,
                model.resolve(member),
                item,
                &join(path, name),
                d + 1,
                limit,
            )?,
        }
    }
    Ok(())
}

fn scalar_value(shape: &Shape, v: &Value, path: &str) -> Result<(), ValidationError> {
    let bad = || wrong_type(path, shape);
    match shape.kind {
        ShapeType::String => string(shape, v.as_str().ok_or_else(bad)?, path),
        ShapeType::Integer | ShapeType::Long => integer(shape, v.as_i64().ok_or_else(bad)?, path),
        ShapeType::Float | ShapeType::Double => number(shape, v.as_f64().ok_or_else(bad)?, path),
        ShapeType::Boolean => v.as_bool().map(|_| ()).ok_or_else(bad),
        ShapeType::Timestamp => v
            .as_str()
            .and_then(scalar::parse_contract)
            .map(|_| ())
            .ok_or_else(bad),
        ShapeType::Blob => {
            let bytes = v.as_str().and_then(scalar::decode_blob).ok_or_else(bad)?;
            length(shape, bytes.len(), path)
        }
        ShapeType::Structure | ShapeType::List | ShapeType::Map => Err(bad()),
    }
}
