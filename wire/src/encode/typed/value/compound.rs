//! Structures, lists and maps as serde hands them over, member by member.

use std::borrow::Cow;

use serde::Serialize;
use serde::ser::{
    Impossible, SerializeMap, SerializeSeq, SerializeStruct, SerializeTuple, SerializeTupleStruct,
    Serializer,
};

use super::super::scalar::{CBOR_ARRAY, CBOR_MAP};
use super::super::{Enc, Result, Syntax, TypedError};
use super::{Slot, ValueSer};
use crate::encode::error::EncodeError;
use crate::encode::path::Path;
use crate::model::{PlanRef, PlanShape};

/// A structure: its fields matched to the model's members by a cursor, since they come in
/// model order.
pub(crate) struct StructSer<'e, 'm, 'p> {
    enc: &'e mut Enc<'m>,
    shape: &'m PlanShape,
    slot: Slot<'m>,
    path: Path<'p>,
    depth: usize,
    /// The next member a field may be.
    cursor: usize,
    /// How many members were written.
    count: usize,
    /// Where the members start (JSON), or the map's head (CBOR).
    region: usize,
    head_len: usize,
    base: usize,
}

impl<'e, 'm, 'p> StructSer<'e, 'm, 'p> {
    pub(super) fn new(mut v: ValueSer<'e, 'm, 'p>, len: usize) -> Self {
        v.open(true);
        let (region, head_len) = begin(v.enc, CBOR_MAP, len);
        Self {
            base: v.enc.entries.len(),
            enc: v.enc,
            shape: v.shape,
            slot: v.slot,
            path: v.path,
            depth: v.depth,
            cursor: 0,
            count: 0,
            region,
            head_len,
        }
    }
}

/// Opens a JSON object or array (`{`, `[`) or writes a CBOR head for `len` items, and
/// gives where the entries start (JSON) or the head is (CBOR), and the head's length.
fn begin(enc: &mut Enc<'_>, major: u8, len: usize) -> (usize, usize) {
    match enc.syntax {
        Syntax::Xml { .. } => (enc.out.len(), 0),
        Syntax::Json => {
            enc.out.push(if major == CBOR_MAP { b'{' } else { b'[' });
            (enc.out.len(), 0)
        }
        Syntax::Cbor => {
            let at = enc.out.len();
            enc.cbor_head(major, len);
            (at, enc.out.len() - at)
        }
    }
}

impl SerializeStruct for StructSer<'_, '_, '_> {
    type Ok = ();
    type Error = TypedError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        let members = &self.shape.members;
        let index = match members[self.cursor..].iter().position(|m| m.is(key)) {
            Some(i) => self.cursor + i,
            None if members[..self.cursor].iter().any(|m| m.is(key)) => {
                return Err(TypedError::Fallback("members out of model order"));
            }
            None => {
                return Err(EncodeError::Unknown(Path::Member(&self.path, key).to_string()).into());
            }
        };
        self.cursor = index + 1;
        let member = &members[index];
        let sep = self.enc.syntax == Syntax::Json && self.count > 0;
        let start = self.enc.out.len();
        value.serialize(ValueSer::of(
            self.enc,
            &member.r,
            Slot::Member {
                name: &member.wire,
                sep,
            },
            Path::Member(&self.path, &member.name),
            self.depth + 1,
        ))?;
        if self.enc.out.len() > start {
            self.count += 1;
            if self.enc.syntax == Syntax::Json {
                self.enc
                    .entry(Cow::Borrowed(&member.wire), start + usize::from(sep));
            }
        }
        Ok(())
    }

    fn end(self) -> Result<()> {
        match self.enc.syntax {
            Syntax::Xml { .. } => ValueSer::close(self.enc, self.slot),
            Syntax::Json => {
                self.enc.settle(self.region, self.base);
                self.enc.out.push(b'}');
            }
            Syntax::Cbor => self
                .enc
                .cbor_patch(self.region, self.head_len, CBOR_MAP, self.count),
        }
        Ok(())
    }
}

/// A list.
pub(crate) struct SeqSer<'e, 'm, 'p> {
    enc: &'e mut Enc<'m>,
    item: &'m PlanRef,
    /// The elements' tag (XML).
    item_tag: &'m str,
    /// The wrapper element to close (XML, unless flattened).
    wrapper: Option<&'m str>,
    path: Path<'p>,
    depth: usize,
    index: usize,
    head: usize,
    head_len: usize,
}

impl<'e, 'm, 'p> SeqSer<'e, 'm, 'p> {
    pub(super) fn new(mut v: ValueSer<'e, 'm, 'p>, len: Option<usize>) -> Self {
        let item = v.shape.item.as_ref().expect("lists are checked at load");
        let (mut item_tag, mut wrapper) = ("", None);
        if let Syntax::Xml { list_item } = v.enc.syntax {
            let tag = v.tag();
            if v.flattened {
                item_tag = item.location_name.as_deref().unwrap_or(tag);
            } else {
                item_tag = item.location_name.as_deref().unwrap_or(list_item);
                wrapper = Some(tag);
                v.enc.xml_open(tag);
            }
        } else {
            v.open(false);
        }
        let (head, head_len) = begin(v.enc, CBOR_ARRAY, len.unwrap_or(0));
        Self {
            enc: v.enc,
            item,
            item_tag,
            wrapper,
            path: v.path,
            depth: v.depth,
            index: 0,
            head,
            head_len,
        }
    }
}

impl SerializeSeq for SeqSer<'_, '_, '_> {
    type Ok = ();
    type Error = TypedError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let slot = Slot::Item {
            tag: self.item_tag,
            sep: self.index > 0,
        };
        value.serialize(ValueSer::of(
            self.enc,
            self.item,
            slot,
            Path::Index(&self.path, self.index),
            self.depth + 1,
        ))?;
        self.index += 1;
        Ok(())
    }

    fn end(self) -> Result<()> {
        match self.enc.syntax {
            Syntax::Xml { .. } => {
                if let Some(tag) = self.wrapper {
                    self.enc.xml_close(tag);
                }
            }
            Syntax::Json => self.enc.out.push(b']'),
            Syntax::Cbor => self
                .enc
                .cbor_patch(self.head, self.head_len, CBOR_ARRAY, self.index),
        }
        Ok(())
    }
}

impl SerializeTuple for SeqSer<'_, '_, '_> {
    type Ok = ();
    type Error = TypedError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<()> {
        SerializeSeq::end(self)
    }
}

impl SerializeTupleStruct for SeqSer<'_, '_, '_> {
    type Ok = ();
    type Error = TypedError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<()> {
        SerializeSeq::end(self)
    }
}

/// A map: its entries written as they come and put in key order when it ends.
pub(crate) struct MapSer<'e, 'm, 'p> {
    enc: &'e mut Enc<'m>,
    value: &'m PlanRef,
    /// The tags of an entry, its key and its value (XML).
    entry_tag: &'m str,
    key_tag: &'m str,
    value_tag: &'m str,
    wrapper: Option<&'m str>,
    path: Path<'p>,
    depth: usize,
    key: Option<String>,
    count: usize,
    region: usize,
    head: usize,
    head_len: usize,
    base: usize,
}

impl<'e, 'm, 'p> MapSer<'e, 'm, 'p> {
    pub(super) fn new(mut v: ValueSer<'e, 'm, 'p>, len: Option<usize>) -> Self {
        let key = v.shape.key.as_ref().expect("maps are checked at load");
        let value = v.shape.value.as_ref().expect("maps are checked at load");
        let tag = v.tag();
        let mut wrapper = None;
        if let Syntax::Xml { .. } = v.enc.syntax {
            if !v.flattened {
                wrapper = Some(tag);
                v.enc.xml_open(tag);
            }
        } else {
            v.open(false);
        }
        let (head, head_len) = begin(v.enc, CBOR_MAP, len.unwrap_or(0));
        Self {
            base: v.enc.entries.len(),
            region: v.enc.out.len(),
            enc: v.enc,
            value,
            entry_tag: if v.flattened { tag } else { "entry" },
            key_tag: key.location_name.as_deref().unwrap_or("key"),
            value_tag: value.location_name.as_deref().unwrap_or("value"),
            wrapper,
            path: v.path,
            depth: v.depth,
            key: None,
            count: 0,
            head,
            head_len,
        }
    }
}

impl SerializeMap for MapSer<'_, '_, '_> {
    type Ok = ();
    type Error = TypedError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.key = Some(key.serialize(KeySer)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let key = self.key.take().expect("serde gives a key before its value");
        let enc = &mut *self.enc;
        if enc.syntax == Syntax::Json && self.count > 0 {
            enc.out.push(b',');
        }
        let start = enc.out.len();
        match enc.syntax {
            Syntax::Xml { .. } => {
                enc.xml_open(self.entry_tag);
                enc.xml_open(self.key_tag);
                enc.xml_text(&key);
                enc.xml_close(self.key_tag);
            }
            Syntax::Json => {
                enc.json_str(&key);
                enc.out.push(b':');
            }
            Syntax::Cbor => enc.cbor_text(&key),
        }
        let slot = Slot::Item {
            tag: self.value_tag,
            sep: false,
        };
        value.serialize(ValueSer::of(
            enc,
            self.value,
            slot,
            Path::Member(&self.path, &key),
            self.depth + 1,
        ))?;
        if let Syntax::Xml { .. } = enc.syntax {
            enc.xml_close(self.entry_tag);
        }
        enc.entry(Cow::Owned(key), start);
        self.count += 1;
        Ok(())
    }

    fn end(self) -> Result<()> {
        let n = self.enc.settle(self.region, self.base);
        match self.enc.syntax {
            Syntax::Xml { .. } => {
                if let Some(tag) = self.wrapper {
                    self.enc.xml_close(tag);
                }
            }
            Syntax::Json => self.enc.out.push(b'}'),
            Syntax::Cbor => self.enc.cbor_patch(self.head, self.head_len, CBOR_MAP, n),
        }
        Ok(())
    }
}

/// A map's key, as serde_json's Value keeps it: a string (integers written out).
struct KeySer;

type NoCompound = Impossible<String, TypedError>;

fn key_fallback<T>() -> Result<T> {
    Err(TypedError::Fallback("a map key that is not a string"))
}

impl Serializer for KeySer {
    type Ok = String;
    type Error = TypedError;
    type SerializeSeq = NoCompound;
    type SerializeTuple = NoCompound;
    type SerializeTupleStruct = NoCompound;
    type SerializeTupleVariant = NoCompound;
    type SerializeMap = NoCompound;
    type SerializeStruct = NoCompound;
    type SerializeStructVariant = NoCompound;

    fn serialize_str(self, v: &str) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_char(self, v: char) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, v: &'static str) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<String> {
        v.serialize(self)
    }
    fn serialize_i8(self, v: i8) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i16(self, v: i16) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i32(self, v: i32) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i64(self, v: i64) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u8(self, v: u8) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u16(self, v: u16) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u32(self, v: u32) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u64(self, v: u64) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_bool(self, _: bool) -> Result<String> {
        key_fallback()
    }
    fn serialize_f32(self, _: f32) -> Result<String> {
        key_fallback()
    }
    fn serialize_f64(self, _: f64) -> Result<String> {
        key_fallback()
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<String> {
        key_fallback()
    }
    fn serialize_none(self) -> Result<String> {
        key_fallback()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<String> {
        key_fallback()
    }
    fn serialize_unit(self) -> Result<String> {
        key_fallback()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String> {
        key_fallback()
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String> {
        key_fallback()
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<NoCompound> {
        key_fallback()
    }
    fn serialize_tuple(self, _: usize) -> Result<NoCompound> {
        key_fallback()
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<NoCompound> {
        key_fallback()
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<NoCompound> {
        key_fallback()
    }
    fn serialize_map(self, _: Option<usize>) -> Result<NoCompound> {
        key_fallback()
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<NoCompound> {
        key_fallback()
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<NoCompound> {
        key_fallback()
    }
}
