//! The typed encoder's bytes for scalars and container heads, per syntax: each written as
//! the Value path writes it (XML through `xml::Writer`, JSON through `serde_json`, CBOR
//! through `ciborium`'s `Value`).

use std::io::Write as _;

use chrono::{DateTime, Utc};
use serde::Serializer as _;

use super::{Enc, Syntax};
use crate::model::TimestampFormat;
use crate::scalar;
use crate::xml::xml_char;

/// A scalar, checked against its shape.
#[derive(Debug)]
pub(super) enum Scalar<'a> {
    /// A string (or enum).
    Text(&'a str),
    /// An integer or long.
    Int(i64),
    /// A float or double (finite).
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A timestamp.
    Time(DateTime<Utc>),
    /// A blob's bytes.
    Blob(Vec<u8>),
}

/// CBOR's major types written here.
pub(super) const CBOR_TEXT: u8 = 3;
pub(super) const CBOR_ARRAY: u8 = 4;
pub(super) const CBOR_MAP: u8 = 5;

/// The head of a CBOR data item of `major` type with argument `n`, in its shortest form.
pub(super) fn cbor_head(major: u8, n: u64) -> ([u8; 9], usize) {
    let mut h = [0u8; 9];
    let m = major << 5;
    let len = if n < 24 {
        h[0] = m | n as u8;
        1
    } else if n <= u64::from(u8::MAX) {
        h[0] = m | 24;
        h[1] = n as u8;
        2
    } else if n <= u64::from(u16::MAX) {
        h[0] = m | 25;
        h[1..3].copy_from_slice(&(n as u16).to_be_bytes());
        3
    } else if n <= u64::from(u32::MAX) {
        h[0] = m | 26;
        h[1..5].copy_from_slice(&(n as u32).to_be_bytes());
        5
    } else {
        h[0] = m | 27;
        h[1..9].copy_from_slice(&n.to_be_bytes());
        9
    };
    (h, len)
}

impl Enc<'_> {
    /// `<tag>`.
    pub(super) fn xml_open(&mut self, tag: &str) {
        self.out.push(b'<');
        self.out.extend_from_slice(tag.as_bytes());
        self.out.push(b'>');
    }

    /// `</tag>`.
    pub(super) fn xml_close(&mut self, tag: &str) {
        self.out.extend_from_slice(b"</");
        self.out.extend_from_slice(tag.as_bytes());
        self.out.push(b'>');
    }

    /// `s` as element content, escaped as `xml::escape_into` escapes it.
    pub(super) fn xml_text(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let mut run = 0;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            let (replacement, width): (&[u8], usize) = match b {
                b'&' => (b"&amp;", 1),
                b'<' => (b"&lt;", 1),
                b'>' => (b"&gt;", 1),
                b'"' => (b"&quot;", 1),
                b'\'' => (b"&apos;", 1),
                // U+FFFE and U+FFFF.
                0xef if matches!(bytes.get(i + 1..i + 3), Some([0xbf, 0xbe | 0xbf])) => {
                    ("\u{fffd}".as_bytes(), 3)
                }
                b if b < 0x20 && !xml_char(char::from(b)) => ("\u{fffd}".as_bytes(), 1),
                _ => {
                    i += 1;
                    continue;
                }
            };
            self.out.extend_from_slice(&bytes[run..i]);
            self.out.extend_from_slice(replacement);
            i += width;
            run = i;
        }
        self.out.extend_from_slice(&bytes[run..]);
    }

    /// A JSON string, escaped as `serde_json` escapes it.
    pub(super) fn json_str(&mut self, s: &str) {
        serde_json::Serializer::new(&mut self.out)
            .serialize_str(s)
            .expect("writing JSON to memory cannot fail");
    }

    /// A CBOR item's head.
    pub(super) fn cbor_head(&mut self, major: u8, n: usize) {
        let (h, len) = cbor_head(major, n as u64);
        self.out.extend_from_slice(&h[..len]);
    }

    /// A CBOR text string.
    pub(super) fn cbor_text(&mut self, s: &str) {
        self.cbor_head(CBOR_TEXT, s.len());
        self.out.extend_from_slice(s.as_bytes());
    }

    /// Rewrites the head at `pos` (`len` bytes, of `major` type) for `n` items.
    pub(super) fn cbor_patch(&mut self, pos: usize, len: usize, major: u8, n: usize) {
        let (h, new_len) = cbor_head(major, n as u64);
        if new_len == len {
            self.out[pos..pos + len].copy_from_slice(&h[..len]);
        } else {
            self.out
                .splice(pos..pos + len, h[..new_len].iter().copied());
        }
    }

    /// Writes `s` (its element's tag, or its key, written by the caller).
    pub(super) fn scalar(&mut self, format: Option<TimestampFormat>, s: Scalar<'_>) {
        match self.syntax {
            Syntax::Xml { .. } => self.xml_scalar(format, s),
            Syntax::Json => self.json_scalar(format, s),
            Syntax::Cbor => self.cbor_scalar(s),
        }
    }

    fn xml_scalar(&mut self, format: Option<TimestampFormat>, s: Scalar<'_>) {
        let write = |out: &mut Vec<u8>, v: &dyn std::fmt::Display| {
            write!(out, "{v}").expect("writing to memory cannot fail");
        };
        match s {
            Scalar::Text(t) => self.xml_text(t),
            Scalar::Int(i) => write(&mut self.out, &i),
            Scalar::Float(f) => write(&mut self.out, &f),
            Scalar::Bool(b) => self
                .out
                .extend_from_slice(if b { b"true" } else { b"false" }),
            Scalar::Time(t) => {
                let text = match format {
                    Some(TimestampFormat::UnixTimestamp) => scalar::epoch_json(t).to_string(),
                    Some(TimestampFormat::Rfc822) => scalar::rfc822(t),
                    _ => scalar::iso_millis(t),
                };
                self.xml_text(&text);
            }
            Scalar::Blob(b) => self.xml_text(&scalar::encode_blob(&b)),
        }
    }

    fn json_scalar(&mut self, format: Option<TimestampFormat>, s: Scalar<'_>) {
        let mut json = serde_json::Serializer::new(&mut self.out);
        let written = match s {
            Scalar::Text(t) => json.serialize_str(t),
            Scalar::Int(i) => json.serialize_i64(i),
            Scalar::Float(f) => json.serialize_f64(f),
            Scalar::Bool(b) => json.serialize_bool(b),
            Scalar::Time(t) => {
                let epoch = t.timestamp_millis() as f64 / 1000.0;
                match format {
                    Some(TimestampFormat::Iso8601) => json.serialize_str(&scalar::iso_millis(t)),
                    Some(TimestampFormat::Rfc822) => json.serialize_str(&scalar::rfc822(t)),
                    _ if epoch.fract() == 0.0 => json.serialize_i64(t.timestamp()),
                    _ => json.serialize_f64(epoch),
                }
            }
            Scalar::Blob(b) => json.serialize_str(&scalar::encode_blob(&b)),
        };
        written.expect("writing JSON to memory cannot fail");
    }

    fn cbor_scalar(&mut self, s: Scalar<'_>) {
        use ciborium::Value as Cbor;
        let item = match s {
            Scalar::Text(t) => return self.cbor_text(t),
            Scalar::Int(i) => Cbor::Integer(i.into()),
            Scalar::Float(f) => Cbor::Float(f),
            Scalar::Bool(b) => Cbor::Bool(b),
            Scalar::Time(t) => {
                // As `Doc::Time` becomes CBOR.
                let f = t.timestamp_millis() as f64 / 1000.0;
                let inner = if f.fract() == 0.0 && f.abs() < 9e15 {
                    Cbor::Integer((f as i64).into())
                } else {
                    Cbor::Float(f)
                };
                Cbor::Tag(1, Box::new(inner))
            }
            Scalar::Blob(b) => Cbor::Bytes(b),
        };
        ciborium::ser::into_writer(&item, &mut self.out)
            .expect("writing CBOR to memory cannot fail");
    }
}
