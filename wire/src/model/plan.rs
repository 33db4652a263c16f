//! The model compiled for encoding: shapes by index, and every reference (a structure's
//! member, a list's element, a map's key and value) resolved once to its target's index
//! with the traits botocore merges from the reference and the shape (`locationName`,
//! `flattened`, `timestampFormat`). An encoder then walks indices instead of looking up
//! shape names per element.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Member, ServiceModel, ShapeType, TimestampFormat};

/// The compiled model (built once per [`ServiceModel`], on first use).
#[derive(Debug, Clone)]
pub struct Plan {
    /// Shape names, in the model's (sorted) order: the index of a shape is its position.
    names: Vec<String>,
    shapes: Vec<PlanShape>,
}

/// One shape, compiled.
#[derive(Debug, Clone)]
pub struct PlanShape {
    /// The type.
    pub kind: ShapeType,
    /// A structure's members, in model order.
    pub members: Vec<PlanMember>,
    /// A list's element.
    pub item: Option<PlanRef>,
    /// A map's key.
    pub key: Option<PlanRef>,
    /// A map's value.
    pub value: Option<PlanRef>,
}

/// A structure's member.
#[derive(Debug)]
pub struct PlanMember {
    /// The member's name in the model (what paths in errors name).
    pub name: String,
    /// Its name on the wire: `locationName` (of the reference, else of the shape), else the
    /// member's name. The XML element and the JSON/CBOR key alike.
    pub wire: String,
    /// The reference.
    pub r: PlanRef,
    /// The address of a field name last found equal to `name` (serde's field names are
    /// `&'static str`, so the same type's field comes with the same address again).
    seen: AtomicUsize,
}

impl Clone for PlanMember {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            wire: self.wire.clone(),
            r: self.r.clone(),
            seen: AtomicUsize::new(self.seen.load(Ordering::Relaxed)),
        }
    }
}

impl PlanMember {
    /// Whether the field name `key` is this member's name: by its address when it was seen
    /// before (an address and a length name the same bytes), else by its bytes.
    pub fn is(&self, key: &'static str) -> bool {
        if key.len() != self.name.len() {
            return false;
        }
        let at = key.as_ptr() as usize;
        if self.seen.load(Ordering::Relaxed) == at {
            return true;
        }
        if self.name.as_bytes().first() != key.as_bytes().first() || self.name != key {
            return false;
        }
        self.seen.store(at, Ordering::Relaxed);
        true
    }
}

/// A reference resolved to its target, traits merged (the reference's own wins).
#[derive(Debug, Clone)]
pub struct PlanRef {
    /// The target shape's index.
    pub shape: usize,
    /// `locationName`, if set.
    pub location_name: Option<String>,
    /// Whether a list or map is written without a wrapper element.
    pub flattened: bool,
    /// The timestamp format, if one is set.
    pub timestamp_format: Option<TimestampFormat>,
}

impl Plan {
    /// Compiles `model` (whose references were all checked when it was loaded).
    pub(super) fn new(model: &ServiceModel) -> Self {
        let names: Vec<String> = model.shapes.keys().cloned().collect();
        let compile = |m: &Member| {
            let r = model.resolve(m);
            PlanRef {
                shape: names
                    .binary_search_by(|n| n.as_str().cmp(r.shape_name))
                    .expect("references are checked when the model is loaded"),
                location_name: r.location_name().map(str::to_string),
                flattened: r.flattened(),
                timestamp_format: r.timestamp_format(),
            }
        };
        let shapes = model
            .shapes
            .values()
            .map(|s| PlanShape {
                kind: s.kind,
                members: s
                    .members
                    .iter()
                    .map(|(name, m)| {
                        let r = compile(m);
                        PlanMember {
                            name: name.to_string(),
                            wire: r.location_name.clone().unwrap_or_else(|| name.to_string()),
                            r,
                            seen: AtomicUsize::new(0),
                        }
                    })
                    .collect(),
                item: s.member.as_ref().map(compile),
                key: s.key.as_ref().map(compile),
                value: s.value.as_ref().map(compile),
            })
            .collect();
        Self { names, shapes }
    }

    /// The index of the shape named `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.binary_search_by(|n| n.as_str().cmp(name)).ok()
    }

    /// The shape at `index`.
    pub fn shape(&self, index: usize) -> &PlanShape {
        &self.shapes[index]
    }
}
