//! Decoding a query-protocol form into the contract Value, checking it against the model.

use serde_json::{Map, Value};

use super::form::Node;
use super::names::Flavor;
use crate::limits::Limits;
use crate::model::{Resolved, ServiceModel, Shape, ShapeType};
use crate::scalar;
use crate::validate::{self, Kind, ValidationError};

type Result<T> = std::result::Result<T, ValidationError>;

/// Decodes `root` (the form without `Action` and `Version`) as the input structure
/// `shape`.
pub fn decode(
    model: &ServiceModel,
    flavor: Flavor,
    shape: &Shape,
    root: &Node,
    limits: &Limits,
) -> Result<Value> {
    let d = Decoder {
        model,
        flavor,
        limits,
    };
    d.structure(shape, root, "", 0)
}

struct Decoder<'a> {
    model: &'a ServiceModel,
    flavor: Flavor,
    limits: &'a Limits,
}

fn join(path: &str, part: &str) -> String {
    if path.is_empty() {
        part.to_string()
    } else {
        format!("{path}.{part}")
    }
}

fn unknown(path: &str, node: &Node) -> ValidationError {
    let first = node.children.keys().next().map_or("", String::as_str);
    ValidationError::new(join(path, first), Kind::Unknown)
}

/// The list indices of `node`'s children (1-based, no leading zeros), in order.
fn indexed<'n>(node: &'n Node, path: &str) -> Result<Vec<&'n Node>> {
    let mut items = Vec::with_capacity(node.children.len());
    for (k, child) in &node.children {
        let i = k
            .parse::<u32>()
            .ok()
            .filter(|&i| i >= 1 && !k.starts_with('0') && !k.starts_with('+'))
            .ok_or_else(|| ValidationError::new(join(path, k), Kind::Unknown))?;
        items.push((i, child));
    }
    items.sort_by_key(|(i, _)| *i);
    Ok(items.into_iter().map(|(_, n)| n).collect())
}

impl Decoder<'_> {
    fn structure(&self, shape: &Shape, node: &Node, path: &str, depth: usize) -> Result<Value> {
        validate::depth(depth, self.limits.max_depth, path)?;
        if node.value.as_deref().is_some_and(|v| !v.is_empty()) {
            return Err(validate::wrong_type(path, shape));
        }
        let mut out = Map::new();
        let mut used = 0usize;
        for (name, member) in shape.members.iter() {
            let r = self.model.resolve(member);
            let element = r.shape.member.as_ref().map(|m| self.model.resolve(m));
            let wire = self.flavor.member_name(&r, element.as_ref(), name);
            let p = join(path, &wire);
            match node.children.get(&wire) {
                Some(child) => {
                    used += 1;
                    if let Some(v) = self.member(r, child, &p, depth + 1)? {
                        out.insert(name.to_string(), v);
                    }
                }
                None if shape.is_required(name) => {
                    return Err(ValidationError::new(p, Kind::Missing));
                }
                None => {}
            }
        }
        if used < node.children.len() {
            let known: Vec<String> = shape
                .members
                .iter()
                .map(|(n, m)| {
                    let r = self.model.resolve(m);
                    let element = r.shape.member.as_ref().map(|e| self.model.resolve(e));
                    self.flavor.member_name(&r, element.as_ref(), n)
                })
                .collect();
            let extra = node
                .children
                .keys()
                .find(|k| !known.contains(k))
                .map_or("", String::as_str);
            return Err(ValidationError::new(join(path, extra), Kind::Unknown));
        }
        Ok(Value::Object(out))
    }

    /// A member's value; `None` for an absent one (an empty EC2 list).
    fn member(
        &self,
        r: Resolved<'_>,
        node: &Node,
        path: &str,
        depth: usize,
    ) -> Result<Option<Value>> {
        match r.kind() {
            ShapeType::Structure => self.structure(r.shape, node, path, depth).map(Some),
            ShapeType::List => self.list(r, node, path, depth).map(Some),
            ShapeType::Map => self.map(r, node, path, depth).map(Some),
            _ => {
                if !node.children.is_empty() {
                    return Err(unknown(path, node));
                }
                let text = node.value.as_deref().unwrap_or("");
                scalar_from_text(r, text, path).map(Some)
            }
        }
    }

    fn list(&self, r: Resolved<'_>, node: &Node, path: &str, depth: usize) -> Result<Value> {
        validate::depth(depth, self.limits.max_depth, path)?;
        let element = self
            .model
            .resolve(r.shape.member.as_ref().expect("checked at load"));
        if node.children.is_empty() && node.value.as_deref() == Some("") {
            validate::length(r.shape, 0, path)?;
            return Ok(Value::Array(Vec::new()));
        }
        if node.value.is_some() {
            return Err(validate::wrong_type(path, r.shape));
        }
        let (holder, base) = if self.flavor == Flavor::Ec2 || self.flavor.flattens(&r) {
            (node, path.to_string())
        } else {
            let name = self.flavor.name_of(&element, "member");
            let p = join(path, &name);
            if node.children.len() != 1 || !node.children.contains_key(&name) {
                return Err(unknown(path, node));
            }
            (&node.children[&name], p)
        };
        let items = indexed(holder, &base)?;
        validate::length(r.shape, items.len(), path)?;
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let p = join(&base, &(i + 1).to_string());
            match self.member(element, item, &p, depth + 1)? {
                Some(v) => out.push(v),
                None => return Err(validate::wrong_type(&p, element.shape)),
            }
        }
        Ok(Value::Array(out))
    }

    fn map(&self, r: Resolved<'_>, node: &Node, path: &str, depth: usize) -> Result<Value> {
        validate::depth(depth, self.limits.max_depth, path)?;
        if node.children.is_empty() && node.value.as_deref() == Some("") {
            validate::length(r.shape, 0, path)?;
            return Ok(Value::Object(Map::new()));
        }
        if node.value.is_some() {
            return Err(validate::wrong_type(path, r.shape));
        }
        let (holder, base) = if self.flavor.flattens(&r) {
            (node, path.to_string())
        } else {
            if node.children.len() != 1 || !node.children.contains_key("entry") {
                return Err(unknown(path, node));
            }
            (&node.children["entry"], join(path, "entry"))
        };
        let key = self
            .model
            .resolve(r.shape.key.as_ref().expect("checked at load"));
        let value = self
            .model
            .resolve(r.shape.value.as_ref().expect("checked at load"));
        let key_name = self.flavor.name_of(&key, "key");
        let value_name = self.flavor.name_of(&value, "value");
        let entries = indexed(holder, &base)?;
        validate::length(r.shape, entries.len(), path)?;
        let mut out = Map::new();
        for (i, entry) in entries.into_iter().enumerate() {
            let p = join(&base, &(i + 1).to_string());
            if let Some(extra) = entry
                .children
                .keys()
                .find(|k| **k != key_name && **k != value_name)
            {
                return Err(ValidationError::new(join(&p, extra), Kind::Unknown));
            }
            let kp = join(&p, &key_name);
            let k = entry
                .children
                .get(&key_name)
                .ok_or_else(|| ValidationError::new(kp.clone(), Kind::Missing))?;
            let Some(Value::String(k)) = self.member(key, k, &kp, depth + 1)? else {
                return Err(validate::wrong_type(&kp, key.shape));
            };
            let vp = join(&p, &value_name);
            let v = entry
                .children
                .get(&value_name)
                .ok_or_else(|| ValidationError::new(vp.clone(), Kind::Missing))?;
            let v = self
                .member(value, v, &vp, depth + 1)?
                .ok_or_else(|| validate::wrong_type(&vp, value.shape))?;
            if out.insert(k, v).is_some() {
                return Err(ValidationError::new(kp, Kind::Duplicate));
            }
        }
        Ok(Value::Object(out))
    }
}

/// A scalar from its form text.
pub fn scalar_from_text(r: Resolved<'_>, text: &str, path: &str) -> Result<Value> {
    let shape = r.shape;
    let bad = || validate::wrong_type(path, shape);
    match shape.kind {
        ShapeType::String => {
            validate::string(shape, text, path)?;
            Ok(Value::String(text.to_string()))
        }
        ShapeType::Integer | ShapeType::Long => {
            let n: i64 = text.trim().parse().map_err(|_| bad())?;
            validate::integer(shape, n, path)?;
            Ok(Value::from(n))
        }
        ShapeType::Float | ShapeType::Double => {
            let f: f64 = text.trim().parse().map_err(|_| bad())?;
            let v = scalar::float_value(f).ok_or_else(bad)?;
            validate::number(shape, f, path)?;
            Ok(v)
        }
        ShapeType::Boolean => match text.to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(bad()),
        },
        ShapeType::Timestamp => {
            let t = scalar::parse_iso(text)
                .or_else(|| text.trim().parse::<f64>().ok().and_then(scalar::from_epoch))
                .or_else(|| scalar::parse_rfc822(text))
                .ok_or_else(bad)?;
            Ok(Value::String(scalar::contract_time(t)))
        }
        ShapeType::Blob => {
            let bytes = scalar::decode_blob(text).ok_or_else(bad)?;
            validate::length(shape, bytes.len(), path)?;
            Ok(Value::String(scalar::encode_blob(&bytes)))
        }
        ShapeType::Structure | ShapeType::List | ShapeType::Map => Err(bad()),
    }
}
