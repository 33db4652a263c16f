//! JSON and CBOR documents in one form ([`Doc`]), so that one shape-directed decoder
//! and one encoder serve awsJson and RPC v2 CBOR.

pub mod decode;
pub mod encode;

use ciborium::Value as Cbor;
use serde_json::Value as Json;

/// A JSON or CBOR data item.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    /// `null` (and CBOR `undefined`).
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i128),
    /// A float.
    Float(f64),
    /// Text.
    Text(String),
    /// A CBOR byte string.
    Bytes(Vec<u8>),
    /// An array.
    Array(Vec<Doc>),
    /// A map with text keys, in document order.
    Map(Vec<(String, Doc)>),
    /// A CBOR tag-1 time (epoch seconds).
    Time(f64),
}

/// Errors reading a document.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// Not JSON.
    #[error("the body is not valid JSON")]
    Json(#[source] serde_json::Error),
    /// Not CBOR.
    #[error("the body is not valid CBOR")]
    Cbor(#[source] ciborium::de::Error<std::io::Error>),
    /// A CBOR map key that is not text.
    #[error("a CBOR map has a key that is not text")]
    MapKey,
    /// A CBOR tag other than 1, or tag 1 on something other than a number.
    #[error("CBOR tag {0} is not supported")]
    Tag(u64),
    /// Bytes after the first data item.
    #[error("the body has data after its first item")]
    Trailing,
    /// Nesting beyond the limit.
    #[error("the document nests deeper than {0} levels")]
    TooDeep(usize),
}

impl Doc {
    /// Reads a JSON body (empty means `{}`); `limit` bounds nesting.
    pub fn from_json(body: &[u8], limit: usize) -> Result<Self, DocError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::Map(Vec::new()));
        }
        let v: Json = serde_json::from_slice(body).map_err(DocError::Json)?;
        from_json(v, 0, limit)
    }

    /// Reads a CBOR body (empty means `{}`); `limit` bounds nesting.
    pub fn from_cbor(body: &[u8], limit: usize) -> Result<Self, DocError> {
        if body.is_empty() {
            return Ok(Self::Map(Vec::new()));
        }
        let mut reader = body;
        let v: Cbor = ciborium::de::from_reader_with_recursion_limit(&mut reader, limit)
            .map_err(DocError::Cbor)?;
        if !reader.is_empty() {
            return Err(DocError::Trailing);
        }
        from_cbor(v, 0, limit)
    }

    /// As JSON (bytes become base64, times epoch seconds).
    pub fn into_json(self) -> Json {
        match self {
            Self::Null => Json::Null,
            Self::Bool(b) => Json::Bool(b),
            Self::Int(i) => i64::try_from(i).map_or(Json::Null, Json::from),
            Self::Float(f) | Self::Time(f) => crate::scalar::float_value(f).unwrap_or(Json::Null),
            Self::Text(s) => Json::String(s),
            Self::Bytes(b) => Json::String(crate::scalar::encode_blob(&b)),
            Self::Array(a) => Json::Array(a.into_iter().map(Self::into_json).collect()),
            Self::Map(m) => Json::Object(m.into_iter().map(|(k, v)| (k, v.into_json())).collect()),
        }
    }

    /// As CBOR.
    pub fn into_cbor(self) -> Cbor {
        match self {
            Self::Null => Cbor::Null,
            Self::Bool(b) => Cbor::Bool(b),
            Self::Int(i) => ciborium::value::Integer::try_from(i).map_or(Cbor::Null, Cbor::Integer),
            Self::Float(f) => Cbor::Float(f),
            Self::Time(f) => {
                let inner = if f.fract() == 0.0 && f.abs() < 9e15 {
                    Cbor::Integer((f as i64).into())
                } else {
                    Cbor::Float(f)
                };
                Cbor::Tag(1, Box::new(inner))
            }
            Self::Text(s) => Cbor::Text(s),
            Self::Bytes(b) => Cbor::Bytes(b),
            Self::Array(a) => Cbor::Array(a.into_iter().map(Self::into_cbor).collect()),
            Self::Map(m) => Cbor::Map(
                m.into_iter()
                    .map(|(k, v)| (Cbor::Text(k), v.into_cbor()))
                    .collect(),
            ),
        }
    }
}

fn from_json(v: Json, depth: usize, limit: usize) -> Result<Doc, DocError> {
    if depth > limit {
        return Err(DocError::TooDeep(limit));
    }
    Ok(match v {
        Json::Null => Doc::Null,
        Json::Bool(b) => Doc::Bool(b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Doc::Int(i.into()),
            (None, Some(u)) => Doc::Int(u.into()),
            _ => Doc::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Doc::Text(s),
        Json::Array(a) => Doc::Array(
            a.into_iter()
                .map(|v| from_json(v, depth + 1, limit))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(m) => Doc::Map(
            m.into_iter()
                .map(|(k, v)| Ok((k, from_json(v, depth + 1, limit)?)))
                .collect::<Result<_, DocError>>()?,
        ),
    })
}

fn from_cbor(v: Cbor, depth: usize, limit: usize) -> Result<Doc, DocError> {
    if depth > limit {
        return Err(DocError::TooDeep(limit));
    }
    Ok(match v {
        Cbor::Null => Doc::Null,
        Cbor::Bool(b) => Doc::Bool(b),
        Cbor::Integer(i) => Doc::Int(i.into()),
        Cbor::Float(f) => Doc::Float(f),
        Cbor::Text(s) => Doc::Text(s),
        Cbor::Bytes(b) => Doc::Bytes(b),
        Cbor::Array(a) => Doc::Array(
            a.into_iter()
                .map(|v| from_cbor(v, depth + 1, limit))
                .collect::<Result<_, _>>()?,
        ),
        Cbor::Map(m) => Doc::Map(
            m.into_iter()
                .map(|(k, v)| match k {
                    Cbor::Text(k) => Ok((k, from_cbor(v, depth + 1, limit)?)),
                    _ => Err(DocError::MapKey),
                })
                .collect::<Result<_, DocError>>()?,
        ),
        Cbor::Tag(1, inner) => match *inner {
            Cbor::Integer(i) => Doc::Time(i128::from(i) as f64),
            Cbor::Float(f) => Doc::Time(f),
            _ => return Err(DocError::Tag(1)),
        },
        Cbor::Tag(t, _) => return Err(DocError::Tag(t)),
        _ => Doc::Null,
    })
}
