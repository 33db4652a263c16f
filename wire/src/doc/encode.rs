//! The contract Value to a JSON or CBOR document, by the model.

use serde_json::Value;

use super::Doc;
use super::decode::{Dialect, key_of};
use crate::encode::error::EncodeError;
use crate::model::{Resolved, ServiceModel, Shape, ShapeType, TimestampFormat};
use crate::scalar;

type Result<T> = std::result::Result<T, EncodeError>;

/// Encodes `v` as the output structure `shape`.
pub fn encode(model: &ServiceModel, dialect: Dialect, shape: &Shape, v: &Value) -> Result<Doc> {
    Encoder { model, dialect }.structure(shape, v, "", 0)
}

struct Encoder<'a> {
    model: &'a ServiceModel,
    dialect: Dialect,
}

/// How deep an output may nest (outputs are ours, but recursion must stay bounded).
const MAX_DEPTH: usize = 64;

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

impl Encoder<'_> {
    fn structure(&self, shape: &Shape, v: &Value, path: &str, depth: usize) -> Result<Doc> {
        let obj = v
            .as_object()
            .ok_or_else(|| EncodeError::mismatch(path, shape))?;
        if let Some(k) = obj.keys().find(|k| shape.members.get(k).is_none()) {
            return Err(EncodeError::unknown(&join(path, k)));
        }
        let mut out = Vec::with_capacity(obj.len());
        for (name, member) in shape.members.iter() {
            let Some(item) = obj.get(name).filter(|i| !i.is_null()) else {
                continue;
            };
            let r = self.model.resolve(member);
            let p = join(path, name);
            out.push((
                key_of(&r, name).to_string(),
                self.value(r, item, &p, depth + 1)?,
            ));
        }
        Ok(Doc::Map(out))
    }

    fn value(&self, r: Resolved<'_>, v: &Value, path: &str, depth: usize) -> Result<Doc> {
        if depth > MAX_DEPTH {
            return Err(EncodeError::too_deep(path));
        }
        let shape = r.shape;
        let bad = || EncodeError::mismatch(path, shape);
        Ok(match shape.kind {
            ShapeType::Structure => self.structure(shape, v, path, depth)?,
            ShapeType::List => {
                let element = self
                    .model
                    .resolve(shape.member.as_ref().expect("checked at load"));
                let items = v.as_array().ok_or_else(bad)?;
                Doc::Array(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, x)| self.value(element, x, &format!("{path}[{i}]"), depth + 1))
                        .collect::<Result<_>>()?,
                )
            }
            ShapeType::Map => {
                let value = self
                    .model
                    .resolve(shape.value.as_ref().expect("checked at load"));
                let obj = v.as_object().ok_or_else(bad)?;
                Doc::Map(
                    obj.iter()
                        .map(|(k, x)| {
                            Ok((
                                k.clone(),
                                self.value(value, x, &format!("{path}.{k}"), depth + 1)?,
                            ))
                        })
                        .collect::<Result<_>>()?,
                )
            }
            ShapeType::String => Doc::Text(v.as_str().ok_or_else(bad)?.to_string()),
            ShapeType::Integer | ShapeType::Long => Doc::Int(v.as_i64().ok_or_else(bad)?.into()),
            ShapeType::Float | ShapeType::Double => Doc::Float(v.as_f64().ok_or_else(bad)?),
            ShapeType::Boolean => Doc::Bool(v.as_bool().ok_or_else(bad)?),
            ShapeType::Timestamp => {
                let t = v
                    .as_str()
                    .and_then(scalar::parse_contract)
                    .ok_or_else(bad)?;
                self.timestamp(r, t)
            }
            ShapeType::Blob => {
                let bytes = v.as_str().and_then(scalar::decode_blob).ok_or_else(bad)?;
                match self.dialect {
                    Dialect::Json => Doc::Text(scalar::encode_blob(&bytes)),
                    Dialect::Cbor => Doc::Bytes(bytes),
                }
            }
        })
    }

    fn timestamp(&self, r: Resolved<'_>, t: chrono::DateTime<chrono::Utc>) -> Doc {
        let epoch = t.timestamp_millis() as f64 / 1000.0;
        match (self.dialect, r.timestamp_format()) {
            (Dialect::Cbor, _) => Doc::Time(epoch),
            (Dialect::Json, Some(TimestampFormat::Iso8601)) => Doc::Text(scalar::iso_millis(t)),
            (Dialect::Json, Some(TimestampFormat::Rfc822)) => Doc::Text(scalar::rfc822(t)),
            (Dialect::Json, _) if epoch.fract() == 0.0 => Doc::Int(t.timestamp().into()),
            (Dialect::Json, _) => Doc::Float(epoch),
        }
    }
}
