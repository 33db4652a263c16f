//! A JSON or CBOR document to the contract Value, checked against the model.

use serde_json::{Map, Value};

use super::Doc;
use crate::model::{Resolved, ServiceModel, Shape, ShapeType};
use crate::scalar;
use crate::validate::{self, Kind, ValidationError};

type Result<T> = std::result::Result<T, ValidationError>;

/// Which document protocol: they differ in how times and blobs are carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// awsJson: times as epoch seconds (or strings per `timestampFormat`), blobs base64.
    Json,
    /// RPC v2 CBOR: times as tag 1, blobs as byte strings.
    Cbor,
}

/// The member key of a reference in a document: `locationName` (of the reference, else
/// of its shape, as botocore's serializers merge them), else the member name.
pub fn key_of<'a>(r: &Resolved<'a>, name: &'a str) -> &'a str {
    r.location_name().unwrap_or(name)
}

/// Decodes `doc` as the input structure `shape`.
pub fn decode(
    model: &ServiceModel,
    dialect: Dialect,
    shape: &Shape,
    doc: &Doc,
    max_depth: usize,
) -> Result<Value> {
    let d = Decoder {
        model,
        dialect,
        max_depth,
    };
    d.structure(shape, doc, "", 0)
}

struct Decoder<'a> {
    model: &'a ServiceModel,
    dialect: Dialect,
    max_depth: usize,
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

impl Decoder<'_> {
    fn structure(&self, shape: &Shape, doc: &Doc, path: &str, depth: usize) -> Result<Value> {
        validate::depth(depth, self.max_depth, path)?;
        let Doc::Map(entries) = doc else {
            return Err(validate::wrong_type(path, shape));
        };
        let mut out = Map::new();
        for (key, item) in entries {
            let found = shape
                .members
                .iter()
                .find(|(n, m)| key_of(&self.model.resolve(m), n) == key.as_str());
            let p = join(path, key);
            let Some((name, member)) = found else {
                return Err(ValidationError::new(p, Kind::Unknown));
            };
            if matches!(item, Doc::Null) {
                continue;
            }
            let v = self.value(self.model.resolve(member), item, &p, depth + 1)?;
            if out.insert(name.to_string(), v).is_some() {
                return Err(ValidationError::new(p, Kind::Duplicate));
            }
        }
        for (name, member) in shape.members.iter() {
            if shape.is_required(name) && !out.contains_key(name) {
                let key = key_of(&self.model.resolve(member), name);
                return Err(ValidationError::new(join(path, key), Kind::Missing));
            }
        }
        Ok(Value::Object(out))
    }

    fn value(&self, r: Resolved<'_>, doc: &Doc, path: &str, depth: usize) -> Result<Value> {
        match r.kind() {
            ShapeType::Structure => self.structure(r.shape, doc, path, depth),
            ShapeType::List => self.list(r, doc, path, depth),
            ShapeType::Map => self.map(r, doc, path, depth),
            _ => self.scalar(r, doc, path),
        }
    }

    fn list(&self, r: Resolved<'_>, doc: &Doc, path: &str, depth: usize) -> Result<Value> {
        validate::depth(depth, self.max_depth, path)?;
        let Doc::Array(items) = doc else {
            return Err(validate::wrong_type(path, r.shape));
        };
        validate::length(r.shape, items.len(), path)?;
        let element = self
            .model
            .resolve(r.shape.member.as_ref().expect("checked at load"));
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.value(element, item, &format!("{path}[{i}]"), depth + 1))
            .collect::<Result<Vec<_>>>()
            .map(Value::Array)
    }

    fn map(&self, r: Resolved<'_>, doc: &Doc, path: &str, depth: usize) -> Result<Value> {
        validate::depth(depth, self.max_depth, path)?;
        let Doc::Map(entries) = doc else {
            return Err(validate::wrong_type(path, r.shape));
        };
        validate::length(r.shape, entries.len(), path)?;
        let key = self
            .model
            .resolve(r.shape.key.as_ref().expect("checked at load"));
        let value = self
            .model
            .resolve(r.shape.value.as_ref().expect("checked at load"));
        let mut out = Map::new();
        for (k, item) in entries {
            let p = format!("{path}.{k}");
            validate::string(key.shape, k, &p)?;
            let v = self.value(value, item, &p, depth + 1)?;
            if out.insert(k.clone(), v).is_some() {
                return Err(ValidationError::new(p, Kind::Duplicate));
            }
        }
        Ok(Value::Object(out))
    }

    fn scalar(&self, r: Resolved<'_>, doc: &Doc, path: &str) -> Result<Value> {
        let shape = r.shape;
        let bad = || validate::wrong_type(path, shape);
        match (shape.kind, doc) {
            (ShapeType::String, Doc::Text(s)) => {
                validate::string(shape, s, path)?;
                Ok(Value::String(s.clone()))
            }
            (ShapeType::Integer | ShapeType::Long, Doc::Int(i)) => {
                let n = i64::try_from(*i).map_err(|_| bad())?;
                validate::integer(shape, n, path)?;
                Ok(Value::from(n))
            }
            (ShapeType::Float | ShapeType::Double, Doc::Int(i)) => {
                let f = *i as f64;
                validate::number(shape, f, path)?;
                scalar::float_value(f).ok_or_else(bad)
            }
            (ShapeType::Float | ShapeType::Double, Doc::Float(f)) => {
                let v = scalar::float_value(*f).ok_or_else(bad)?;
                validate::number(shape, *f, path)?;
                Ok(v)
            }
            (ShapeType::Boolean, Doc::Bool(b)) => Ok(Value::Bool(*b)),
            (ShapeType::Timestamp, _) => self.timestamp(doc).ok_or_else(bad),
            (ShapeType::Blob, _) => {
                let bytes = match (self.dialect, doc) {
                    (Dialect::Json, Doc::Text(s)) => scalar::decode_blob(s).ok_or_else(bad)?,
                    (Dialect::Cbor, Doc::Bytes(b)) => b.clone(),
                    _ => return Err(bad()),
                };
                validate::length(shape, bytes.len(), path)?;
                Ok(Value::String(scalar::encode_blob(&bytes)))
            }
            _ => Err(bad()),
        }
    }

    fn timestamp(&self, doc: &Doc) -> Option<Value> {
        let t = match (self.dialect, doc) {
            (_, Doc::Time(f)) => scalar::from_epoch(*f),
            (Dialect::Json, Doc::Int(i)) => scalar::from_epoch(*i as f64),
            (Dialect::Json, Doc::Float(f)) => scalar::from_epoch(*f),
            (Dialect::Json, Doc::Text(s)) => {
                scalar::parse_iso(s).or_else(|| scalar::parse_rfc822(s))
            }
            _ => None,
        }?;
        Some(Value::String(scalar::contract_time(t)))
    }
}
