//! Random outputs by the model, and a serializable view of a contract Value that hands its
//! members over in model order, as the generated shapes do: for checking the typed encoder
//! against the Value path.

use std::collections::HashSet;
use std::sync::Mutex;

use base64::Engine;
use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use wire::ServiceModel;
use wire::model::{Shape, ShapeType};

/// A small deterministic generator (splitmix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Strings that each protocol must escape or carry as they are.
const TRICKY: &[&str] = &[
    "",
    "plain",
    "a<b>&\"c'd",
    "tab\there\nnewline\rreturn",
    "\u{1}\u{8}\u{b}\u{1f}controls",
    "\u{fffe}\u{ffff}\u{fffd}",
    "é ü 中文 🦀",
    "\\back\\slash/",
    "]]>",
    "&amp;",
    "\u{7f}\u{80}\u{2028}",
];

/// A random string: a tricky one, or random characters.
pub fn string(rng: &mut Rng) -> String {
    if rng.one_in(2) {
        return rng.pick(TRICKY).to_string();
    }
    let n = rng.below(12);
    (0..n)
        .map(|_| match rng.below(4) {
            0 => char::from(b' ' + rng.below(95) as u8),
            1 => char::from_u32(rng.below(0x20) as u32).unwrap(),
            2 => char::from_u32(0x80 + rng.below(0x800) as u32).unwrap_or('x'),
            _ => char::from_u32(0xfff0 + rng.below(0x10) as u32).unwrap_or('y'),
        })
        .collect()
}

fn number(rng: &mut Rng) -> f64 {
    match rng.below(6) {
        0 => *rng.pick(&[0.0, -0.0, 0.5, -2.0, 1e21, 1.5e-7, 123456789.0, 0.1]),
        1 => rng.below(1000) as f64,
        2 => (rng.next() as i64 as f64) / 1e9,
        3 => f64::from(rng.next() as u32 as f32) / 7.0,
        4 => -(rng.below(1 << 40) as f64) / 1024.0,
        _ => f64::from_bits(rng.next() >> 2),
    }
}

/// A random contract Value of `shape`, nesting at most `depth` more levels (required
/// members are always there, so that a typed shape can read it).
pub fn value(model: &ServiceModel, shape: &Shape, rng: &mut Rng, depth: usize) -> Value {
    let deeper = |rng: &mut Rng, s: &str| {
        let shape = &model.shapes[s];
        value(model, shape, rng, depth.saturating_sub(1))
    };
    match shape.kind {
        ShapeType::Structure => {
            let mut obj = Map::new();
            for (name, member) in shape.members.iter() {
                let required = shape.is_required(name);
                if !required && (depth == 0 || rng.one_in(3)) {
                    if rng.one_in(8) {
                        obj.insert(name.to_string(), Value::Null);
                    }
                    continue;
                }
                obj.insert(name.to_string(), deeper(rng, &member.shape));
            }
            Value::Object(obj)
        }
        ShapeType::List => {
            let n = if depth == 0 { 0 } else { rng.below(4) };
            let item = &shape.member.as_ref().unwrap().shape;
            Value::Array((0..n).map(|_| deeper(rng, item)).collect())
        }
        ShapeType::Map => {
            let n = if depth == 0 { 0 } else { rng.below(4) };
            let key = &model.shapes[&shape.key.as_ref().unwrap().shape];
            let item = &shape.value.as_ref().unwrap().shape;
            let mut obj = Map::new();
            for _ in 0..n {
                let k = match &key.enum_values {
                    Some(values) if !values.is_empty() => rng.pick(values).clone(),
                    _ => string(rng),
                };
                obj.insert(k, deeper(rng, item));
            }
            Value::Object(obj)
        }
        ShapeType::String => match &shape.enum_values {
            Some(values) if !values.is_empty() => Value::String(rng.pick(values).clone()),
            _ => Value::String(string(rng)),
        },
        ShapeType::Integer => Value::from(match rng.below(3) {
            0 => rng.below(100) as i64,
            1 => i64::from(rng.next() as i32),
            _ => *rng.pick(&[0, -1, i64::from(i32::MAX), i64::from(i32::MIN)]),
        }),
        ShapeType::Long => Value::from(match rng.below(3) {
            0 => rng.below(100) as i64,
            1 => rng.next() as i64,
            _ => *rng.pick(&[0, -1, i64::MAX, i64::MIN, 1 << 53]),
        }),
        ShapeType::Float => {
            let f = number(rng) as f32;
            let f = if f.is_finite() { f } else { 1.25 };
            Value::from(f64::from(f))
        }
        ShapeType::Double => {
            let f = number(rng);
            Value::from(if f.is_finite() { f } else { 2.5 })
        }
        ShapeType::Boolean => Value::Bool(rng.one_in(2)),
        ShapeType::Timestamp => {
            // Years 1970 to 2100, whole seconds or not.
            let ms = rng.below(4_102_444_800_000) as i64;
            let ms = if rng.one_in(2) { ms - ms % 1000 } else { ms };
            let t = chrono::DateTime::from_timestamp_millis(ms).unwrap();
            Value::String(wire::scalar::contract_time(t))
        }
        ShapeType::Blob => {
            let bytes: Vec<u8> = (0..rng.below(9)).map(|_| rng.next() as u8).collect();
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
    }
}

/// `name` as a `&'static str` (serde's field names are), each distinct name leaked once.
fn interned(name: &str) -> &'static str {
    static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut names = NAMES.lock().unwrap();
    let names = names.get_or_insert_with(HashSet::new);
    if let Some(n) = names.get(name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// A contract Value seen as the typed shapes serialize: a structure's members in model
/// order (then any the model does not have), through `serialize_struct`; a map's entries in
/// reverse key order (the encoder must sort them); numbers as integers when they are.
#[derive(Debug, Clone, Copy)]
pub struct ModelOrdered<'a> {
    pub model: &'a ServiceModel,
    /// The shape of the value, if the model has one for it (an unknown member has none).
    pub shape: Option<&'a Shape>,
    pub value: &'a Value,
}

impl<'a> ModelOrdered<'a> {
    fn of(&self, shape: Option<&'a Shape>, value: &'a Value) -> Self {
        Self {
            model: self.model,
            shape,
            value,
        }
    }

    fn target(&self, name: &str) -> Option<&'a Shape> {
        let member = self.shape?.members.get(name)?;
        self.model.shapes.get(&member.shape)
    }
}

impl Serialize for ModelOrdered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.value {
            Value::Null => s.serialize_none(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => s.serialize_i64(i),
                (None, Some(u)) => s.serialize_u64(u),
                _ => s.serialize_f64(n.as_f64().unwrap()),
            },
            Value::String(t) => s.serialize_str(t),
            Value::Array(items) => {
                let item = self
                    .shape
                    .and_then(|sh| sh.member.as_ref())
                    .and_then(|m| self.model.shapes.get(&m.shape));
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(&self.of(item, v))?;
                }
                seq.end()
            }
            Value::Object(obj) if self.shape.is_some_and(|sh| sh.kind == ShapeType::Map) => {
                let item = self
                    .shape
                    .and_then(|sh| sh.value.as_ref())
                    .and_then(|m| self.model.shapes.get(&m.shape));
                let mut map = s.serialize_map(Some(obj.len()))?;
                for (k, v) in obj.iter().rev() {
                    map.serialize_entry(k, &self.of(item, v))?;
                }
                map.end()
            }
            Value::Object(obj) => {
                let mut st = s.serialize_struct("ModelOrdered", obj.len())?;
                let members: Vec<&str> = self
                    .shape
                    .map(|sh| sh.members.iter().map(|(n, _)| n).collect())
                    .unwrap_or_default();
                for name in &members {
                    if let Some(v) = obj.get(*name) {
                        st.serialize_field(interned(name), &self.of(self.target(name), v))?;
                    }
                }
                for (k, v) in obj {
                    if !members.contains(&k.as_str()) {
                        st.serialize_field(interned(k), &self.of(None, v))?;
                    }
                }
                st.end()
            }
        }
    }
}
