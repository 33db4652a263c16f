//! The typed encoder's bytes for scalars and container heads, per syntax: each written as
//! the Value path writes it (XML through `xml::Writer`, JSON through `serde_json`, CBOR
//! through `ciborium`'s `Value`).

use std::io::Write as _;

use chrono::{DateTime, Utc};
use serde::Serializer as _;

use super::{Enc, Syntax};
use crate::model::TimestampFormat;
use crate::scalar;
use crate::xml::text;

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
        text::open_tag(&mut self.out, tag);
    }

    /// `</tag>`.
    pub(super) fn xml_close(&mut self, tag: &str) {
        text::close_tag(&mut self.out, tag);
    }

    /// `s` as element content, escaped (`xml::text::escaped`).
    pub(super) fn xml_text(&mut self, s: &str) {
        text::escaped(&mut self.out, s);
    }

    /// An integer in decimal (`xml::text::decimal`).
    pub(super) fn decimal(&mut self, v: i64) {
        text::decimal(&mut self.out, v);
    }

    /// A timestamp as `scalar::iso_millis` writes it (`xml::text::iso_millis`).
    pub(super) fn iso_millis(&mut self, t: DateTime<Utc>) {
        text::iso_millis(&mut self.out, t);
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
            Scalar::Int(i) => self.decimal(i),
            Scalar::Float(f) => write(&mut self.out, &f),
            Scalar::Bool(b) => self
                .out
                .extend_from_slice(if b { b"true" } else { b"false" }),
            Scalar::Time(t) => {
                let text = match format {
                    Some(TimestampFormat::UnixTimestamp) => scalar::epoch_json(t).to_string(),
                    Some(TimestampFormat::Rfc822) => scalar::rfc822(t),
                    _ => return self.iso_millis(t),
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::Plan;

    fn enc() -> Enc<'static> {
        let model = crate::ServiceModel::from_json(
            r#"{"metadata": {"apiVersion": "1", "endpointPrefix": "t", "protocols": ["ec2"],
                "serviceId": "T"}, "operations": {}, "shapes": {}}"#,
        )
        .unwrap();
        let plan: &'static Plan = Box::leak(Box::new(model.plan().clone()));
        Enc::new(plan, Syntax::Xml { list_item: "item" }, Vec::new())
    }

    fn take(e: &mut Enc<'_>) -> String {
        String::from_utf8(std::mem::take(&mut e.out)).unwrap()
    }

    #[test]
    fn times_integers_and_text_are_written_as_the_value_path_writes_them() {
        let mut e = enc();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut times = vec![
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(-1, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
            scalar::parse_iso("2016-12-31T23:59:60.5Z").unwrap(),
        ];
        for _ in 0..2000 {
            let secs = (next() % 400_000_000_000) as i64 - 100_000_000_000;
            let nanos = (next() % 1_000_000_000) as u32;
            times.push(Utc.timestamp_opt(secs, nanos).unwrap());
        }
        for t in times {
            e.iso_millis(t);
            assert_eq!(take(&mut e), scalar::iso_millis(t), "{t:?}");
        }
        for v in [0, 1, -1, 9, 10, -10, 1234567890, i64::MAX, i64::MIN] {
            e.decimal(v);
            assert_eq!(take(&mut e), v.to_string());
        }
        for _ in 0..2000 {
            let v = next() as i64 >> (next() % 64);
            e.decimal(v);
            assert_eq!(take(&mut e), v.to_string());
        }
        let mut text = String::new();
        for c in [
            'a', '&', '<', '>', '"', '\'', '\t', '\n', '\r', '\u{0}', '\u{1f}', '\u{7f}',
            '\u{fffd}', '\u{fffe}', '\u{ffff}', '\u{efbf}', '\u{f000}', '🦀', 'é',
        ] {
            text.push(c);
            text.push('x');
        }
        // Each special character at each offset of a word, among plain ones.
        let mut shifted = Vec::new();
        for c in [
            '&', '<', '>', '"', '\'', '\t', '\u{1}', '\u{1f}', '\u{fffe}', '\u{ffff}', '\u{efff}',
        ] {
            for at in 0..17 {
                let mut s = "abcdefghijklmnopqrstuvwx".to_string();
                s.insert(at, c);
                shifted.push(s);
            }
        }
        let shifted = shifted.iter().map(String::as_str);
        for s in [&text[..], "", "plain", "\u{ffff}", "&"]
            .into_iter()
            .chain(shifted)
        {
            e.xml_text(s);
            let mut want = String::new();
            crate::xml::escape_into(&mut want, s);
            assert_eq!(take(&mut e), want, "{s:?}");
        }
    }
}
