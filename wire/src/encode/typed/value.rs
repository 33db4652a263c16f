//! One value of the output, checked against its shape as serde hands it over: a scalar is
//! written whole; a structure, list or map hands over to its [`compound`] state.

mod compound;

use serde::Serialize;
use serde::ser::{Impossible, Serializer};

use super::scalar::Scalar;
use super::{Enc, Result, Syntax, TypedError};
use crate::encode::error::EncodeError;
use crate::encode::path::Path;
use crate::model::{PlanRef, PlanShape, ShapeType, TimestampFormat};
use crate::scalar;
use crate::validate;
use compound::{MapSer, SeqSer, StructSer};

/// How deep an output may nest (as the Value path bounds it).
pub(super) const MAX_DEPTH: usize = 64;

/// Where a value goes, which says what comes before and after it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Slot<'m> {
    /// The output structure itself: its members are the response's (XML), or it is the
    /// whole document (JSON, CBOR).
    Root,
    /// A structure's member, named `name` on the wire: absent when its value is (`None`,
    /// unit); JSON writes a comma before it when `sep`.
    Member { name: &'m str, sep: bool },
    /// A list's element or a map's value, its element named `tag` (XML); JSON writes a
    /// comma before it when `sep`. It may not be absent.
    Item { tag: &'m str, sep: bool },
}

/// The serializer of one value.
pub(crate) struct ValueSer<'e, 'm, 'p> {
    pub(super) enc: &'e mut Enc<'m>,
    /// Its shape.
    pub(super) shape: &'m PlanShape,
    /// Whether a list or map is flattened (its reference's trait merged with its shape's).
    pub(super) flattened: bool,
    /// Its timestamp format, if any.
    pub(super) timestamp_format: Option<TimestampFormat>,
    pub(super) slot: Slot<'m>,
    pub(super) path: Path<'p>,
    /// How deep it is (the root structure is at 0, its members at 1).
    pub(super) depth: usize,
}

impl<'e, 'm, 'p> ValueSer<'e, 'm, 'p> {
    /// The serializer of a value of reference `r`.
    pub(super) fn of(
        enc: &'e mut Enc<'m>,
        r: &'m PlanRef,
        slot: Slot<'m>,
        path: Path<'p>,
        depth: usize,
    ) -> Self {
        let shape = enc.plan.shape(r.shape);
        Self {
            enc,
            shape,
            flattened: r.flattened,
            timestamp_format: r.timestamp_format,
            slot,
            path,
            depth,
        }
    }

    /// The error for a value that is not of the shape's type.
    pub(super) fn mismatch(&self) -> TypedError {
        EncodeError::Mismatch {
            path: self.path.to_string(),
            expected: validate::type_name(self.shape.kind),
        }
        .into()
    }

    fn check_depth(&self) -> Result<()> {
        if self.depth > MAX_DEPTH {
            return Err(EncodeError::TooDeep(self.path.to_string()).into());
        }
        Ok(())
    }

    /// An absent value (`None`, unit, a float that is not finite): left out as a member,
    /// refused elsewhere.
    fn absent(self) -> Result<()> {
        match self.slot {
            Slot::Member { .. } => Ok(()),
            Slot::Root => Err(self.mismatch()),
            Slot::Item { .. } => {
                self.check_depth()?;
                Err(self.mismatch())
            }
        }
    }

    /// The element's tag (XML).
    pub(super) fn tag(&self) -> &'m str {
        match self.slot {
            Slot::Member { name, .. } => name,
            Slot::Item { tag, .. } => tag,
            Slot::Root => "",
        }
    }

    /// Writes what comes before the value: for XML, the element's start tag (`xml` is
    /// false for the lists and maps that write their own); for JSON, the separator and the
    /// key; for CBOR, the key.
    pub(super) fn open(&mut self, xml: bool) {
        let enc = &mut *self.enc;
        match (enc.syntax, self.slot) {
            (_, Slot::Root) => {}
            (Syntax::Xml { .. }, Slot::Member { name: tag, .. } | Slot::Item { tag, .. }) => {
                if xml {
                    enc.xml_open(tag);
                }
            }
            (Syntax::Json, Slot::Member { name, sep }) => {
                if sep {
                    enc.out.push(b',');
                }
                enc.json_str(name);
                enc.out.push(b':');
            }
            (Syntax::Json, Slot::Item { sep, .. }) => {
                if sep {
                    enc.out.push(b',');
                }
            }
            (Syntax::Cbor, Slot::Member { name, .. }) => enc.cbor_text(name),
            (Syntax::Cbor, Slot::Item { .. }) => {}
        }
    }

    /// Writes what comes after a scalar or structure: XML's end tag.
    pub(super) fn close(enc: &mut Enc<'m>, slot: Slot<'m>) {
        if let (Syntax::Xml { .. }, Slot::Member { name: tag, .. } | Slot::Item { tag, .. }) =
            (enc.syntax, slot)
        {
            enc.xml_close(tag);
        }
    }

    fn scalar(mut self, s: Scalar<'_>) -> Result<()> {
        self.open(true);
        self.enc.scalar(self.timestamp_format, s);
        Self::close(self.enc, self.slot);
        Ok(())
    }

    fn integer(self, v: Option<i64>, f: f64) -> Result<()> {
        self.check_depth()?;
        match self.shape.kind {
            ShapeType::Integer | ShapeType::Long => match v {
                Some(i) => self.scalar(Scalar::Int(i)),
                None => Err(self.mismatch()),
            },
            ShapeType::Float | ShapeType::Double => self.scalar(Scalar::Float(f)),
            _ => Err(self.mismatch()),
        }
    }
}

impl<'e, 'm, 'p> Serializer for ValueSer<'e, 'm, 'p> {
    type Ok = ();
    type Error = TypedError;
    type SerializeSeq = SeqSer<'e, 'm, 'p>;
    type SerializeTuple = SeqSer<'e, 'm, 'p>;
    type SerializeTupleStruct = SeqSer<'e, 'm, 'p>;
    type SerializeTupleVariant = Impossible<(), TypedError>;
    type SerializeMap = MapSer<'e, 'm, 'p>;
    type SerializeStruct = StructSer<'e, 'm, 'p>;
    type SerializeStructVariant = Impossible<(), TypedError>;

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.check_depth()?;
        if self.shape.kind != ShapeType::Boolean {
            return Err(self.mismatch());
        }
        self.scalar(Scalar::Bool(v))
    }

    fn serialize_i8(self, v: i8) -> Result<()> {
        self.serialize_i64(v.into())
    }

    fn serialize_i16(self, v: i16) -> Result<()> {
        self.serialize_i64(v.into())
    }

    fn serialize_i32(self, v: i32) -> Result<()> {
        self.serialize_i64(v.into())
    }

    fn serialize_i64(self, v: i64) -> Result<()> {
        self.integer(Some(v), v as f64)
    }

    fn serialize_i128(self, v: i128) -> Result<()> {
        // As serde_json's Value holds it: an i64 or u64, else not at all.
        if let Ok(v) = u64::try_from(v) {
            self.serialize_u64(v)
        } else if let Ok(v) = i64::try_from(v) {
            self.serialize_i64(v)
        } else {
            Err(TypedError::Custom("number out of range".into()))
        }
    }

    fn serialize_u8(self, v: u8) -> Result<()> {
        self.serialize_i64(v.into())
    }

    fn serialize_u16(self, v: u16) -> Result<()> {
        self.serialize_i64(v.into())
    }

    fn serialize_u32(self, v: u32) -> Result<()> {
        self.serialize_i64(v.into())
    }

    fn serialize_u64(self, v: u64) -> Result<()> {
        self.integer(i64::try_from(v).ok(), v as f64)
    }

    fn serialize_u128(self, v: u128) -> Result<()> {
        match u64::try_from(v) {
            Ok(v) => self.serialize_u64(v),
            Err(_) => Err(TypedError::Custom("number out of range".into())),
        }
    }

    fn serialize_f32(self, v: f32) -> Result<()> {
        // serde_json's Value widens it.
        self.serialize_f64(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<()> {
        if !v.is_finite() {
            // serde_json's Value holds no such number: `null`.
            return self.absent();
        }
        self.check_depth()?;
        match self.shape.kind {
            ShapeType::Float | ShapeType::Double => self.scalar(Scalar::Float(v)),
            _ => Err(self.mismatch()),
        }
    }

    fn serialize_char(self, v: char) -> Result<()> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<()> {
        self.check_depth()?;
        let s = match self.shape.kind {
            ShapeType::String => Scalar::Text(v),
            ShapeType::Timestamp => {
                Scalar::Time(scalar::parse_contract(v).ok_or_else(|| self.mismatch())?)
            }
            ShapeType::Blob => Scalar::Blob(scalar::decode_blob(v).ok_or_else(|| self.mismatch())?),
            _ => return Err(self.mismatch()),
        };
        self.scalar(s)
    }

    fn serialize_bytes(self, _: &[u8]) -> Result<()> {
        Err(TypedError::Fallback("raw bytes"))
    }

    fn serialize_none(self) -> Result<()> {
        self.absent()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<()> {
        self.absent()
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<()> {
        self.absent()
    }

    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<()> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<()> {
        Err(TypedError::Fallback("an enum variant with data"))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSer<'e, 'm, 'p>> {
        self.check_depth()?;
        if self.shape.kind != ShapeType::List {
            return Err(self.mismatch());
        }
        Ok(SeqSer::new(self, len))
    }

    fn serialize_tuple(self, len: usize) -> Result<SeqSer<'e, 'm, 'p>> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<SeqSer<'e, 'm, 'p>> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(TypedError::Fallback("an enum variant with data"))
    }

    fn serialize_map(self, len: Option<usize>) -> Result<MapSer<'e, 'm, 'p>> {
        self.check_depth()?;
        match self.shape.kind {
            ShapeType::Map => Ok(MapSer::new(self, len)),
            ShapeType::Structure => Err(TypedError::Fallback("a map for a structure")),
            _ => Err(self.mismatch()),
        }
    }

    fn serialize_struct(self, _: &'static str, len: usize) -> Result<StructSer<'e, 'm, 'p>> {
        self.check_depth()?;
        match self.shape.kind {
            ShapeType::Structure => Ok(StructSer::new(self, len)),
            ShapeType::Map => Err(TypedError::Fallback("a structure for a map")),
            _ => Err(self.mismatch()),
        }
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(TypedError::Fallback("an enum variant with data"))
    }
}
