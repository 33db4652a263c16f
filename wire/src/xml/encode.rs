//! The contract Value to XML elements, as EC2 and awsQuery write them.

use std::borrow::Cow;

use serde_json::Value;

use super::writer::Writer;
use crate::encode::error::EncodeError;
use crate::encode::path::Path;
use crate::model::{Resolved, ServiceModel, Shape, ShapeType, TimestampFormat};
use crate::query::Flavor;
use crate::scalar;

type Result<T> = std::result::Result<T, EncodeError>;

/// How deep an output may nest.
const MAX_DEPTH: usize = 64;

/// Writes the members of the structure `shape` from `v` into `w`.
pub fn members(
    model: &ServiceModel,
    flavor: Flavor,
    shape: &Shape,
    v: &Value,
    w: &mut Writer,
) -> Result<()> {
    Encoder { model, flavor }.structure(shape, v, Path::Root, 0, w)
}

struct Encoder<'a> {
    model: &'a ServiceModel,
    flavor: Flavor,
}

impl Encoder<'_> {
    fn structure(
        &self,
        shape: &Shape,
        v: &Value,
        path: Path<'_>,
        depth: usize,
        w: &mut Writer,
    ) -> Result<()> {
        let obj = v
            .as_object()
            .ok_or_else(|| EncodeError::mismatch(&path.to_string(), shape))?;
        let mut found = 0;
        for (name, member) in shape.members.iter() {
            let Some(item) = obj.get(name) else {
                continue;
            };
            found += 1;
            if item.is_null() {
                continue;
            }
            let r = self.model.resolve(member);
            let tag = r.location_name().unwrap_or(name);
            self.element(r, tag, item, Path::Member(&path, name), depth + 1, w)?;
        }
        // Every key was one of the members, unless fewer were found than there are keys.
        if found < obj.len()
            && let Some(k) = obj.keys().find(|k| shape.members.get(k).is_none())
        {
            return Err(EncodeError::unknown(&Path::Member(&path, k).to_string()));
        }
        Ok(())
    }

    /// The element(s) for one value named `tag`.
    fn element(
        &self,
        r: Resolved<'_>,
        tag: &str,
        v: &Value,
        path: Path<'_>,
        depth: usize,
        w: &mut Writer,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(EncodeError::too_deep(&path.to_string()));
        }
        match r.kind() {
            ShapeType::Structure => {
                w.open(tag);
                self.structure(r.shape, v, path, depth, w)?;
                w.close(tag);
            }
            ShapeType::List => self.list(r, tag, v, path, depth, w)?,
            ShapeType::Map => self.map(r, tag, v, path, depth, w)?,
            _ => {
                let text = self.scalar(r, v, path)?;
                w.leaf(tag, &text);
            }
        }
        Ok(())
    }

    fn list(
        &self,
        r: Resolved<'_>,
        tag: &str,
        v: &Value,
        path: Path<'_>,
        depth: usize,
        w: &mut Writer,
    ) -> Result<()> {
        let items = v
            .as_array()
            .ok_or_else(|| EncodeError::mismatch(&path.to_string(), r.shape))?;
        let element = self
            .model
            .resolve(r.shape.member.as_ref().expect("checked at load"));
        let default = match self.flavor {
            Flavor::Ec2 => "item",
            Flavor::Query => "member",
        };
        if r.flattened() {
            let name = element.location_name().unwrap_or(tag);
            for (i, item) in items.iter().enumerate() {
                self.element(element, name, item, Path::Index(&path, i), depth + 1, w)?;
            }
            return Ok(());
        }
        let name = element.location_name().unwrap_or(default);
        w.open(tag);
        for (i, item) in items.iter().enumerate() {
            self.element(element, name, item, Path::Index(&path, i), depth + 1, w)?;
        }
        w.close(tag);
        Ok(())
    }

    fn map(
        &self,
        r: Resolved<'_>,
        tag: &str,
        v: &Value,
        path: Path<'_>,
        depth: usize,
        w: &mut Writer,
    ) -> Result<()> {
        let obj = v
            .as_object()
            .ok_or_else(|| EncodeError::mismatch(&path.to_string(), r.shape))?;
        let key = self
            .model
            .resolve(r.shape.key.as_ref().expect("checked at load"));
        let value = self
            .model
            .resolve(r.shape.value.as_ref().expect("checked at load"));
        let key_tag = key.location_name().unwrap_or("key");
        let value_tag = value.location_name().unwrap_or("value");
        let flattened = r.flattened();
        if !flattened {
            w.open(tag);
        }
        for (k, item) in obj {
            w.open(if flattened { tag } else { "entry" });
            w.leaf(key_tag, k);
            self.element(value, value_tag, item, Path::Member(&path, k), depth + 1, w)?;
            w.close(if flattened { tag } else { "entry" });
        }
        if !flattened {
            w.close(tag);
        }
        Ok(())
    }

    fn scalar<'v>(&self, r: Resolved<'_>, v: &'v Value, path: Path<'_>) -> Result<Cow<'v, str>> {
        let bad = || EncodeError::mismatch(&path.to_string(), r.shape);
        Ok(Cow::Owned(match r.kind() {
            ShapeType::String => return Ok(Cow::Borrowed(v.as_str().ok_or_else(bad)?)),
            ShapeType::Integer | ShapeType::Long => v.as_i64().ok_or_else(bad)?.to_string(),
            ShapeType::Float | ShapeType::Double => v.as_f64().ok_or_else(bad)?.to_string(),
            ShapeType::Boolean => {
                return Ok(Cow::Borrowed(if v.as_bool().ok_or_else(bad)? {
                    "true"
                } else {
                    "false"
                }));
            }
            ShapeType::Timestamp => {
                let t = v
                    .as_str()
                    .and_then(scalar::parse_contract)
                    .ok_or_else(bad)?;
                match r.timestamp_format() {
                    Some(TimestampFormat::UnixTimestamp) => scalar::epoch_json(t).to_string(),
                    Some(TimestampFormat::Rfc822) => scalar::rfc822(t),
                    _ => scalar::iso_millis(t),
                }
            }
            ShapeType::Blob => {
                let bytes = v.as_str().and_then(scalar::decode_blob).ok_or_else(bad)?;
                scalar::encode_blob(&bytes)
            }
            ShapeType::Structure | ShapeType::List | ShapeType::Map => return Err(bad()),
        }))
    }
}
