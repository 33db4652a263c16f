//! EC2's XML written straight from the typed shapes. The generator gives every structure an
//! EC2 output reaches an [`Ec2Xml`] impl that writes its members in model order, each under
//! its wire name; the scalars' text comes from `wire::xml::text`, as the typed encoder's
//! does, so both write the same bytes (`wire/tests/typed_shapes.rs` checks every EC2
//! operation). It is the fast path for EC2's answers: no model walk, no serde state.

use chrono::{DateTime, Utc};
use wire::xml::text;

use crate::{Blob, Empty};

/// A value EC2's XML can carry: it writes an element's content.
pub trait Ec2Xml {
    /// Writes the value as the content of its element (a structure's members, a scalar's
    /// text).
    fn write_content(&self, out: &mut Vec<u8>);
}

/// `<tag>` `v` `</tag>`.
pub fn element<T: Ec2Xml + ?Sized>(out: &mut Vec<u8>, tag: &str, v: &T) {
    open(out, tag);
    v.write_content(out);
    close(out, tag);
}

/// A list in its wrapper `tag`, each item an element `item`.
pub fn list<T: Ec2Xml>(out: &mut Vec<u8>, tag: &str, item: &str, items: &[T]) {
    open(out, tag);
    for i in items {
        element(out, item, i);
    }
    close(out, tag);
}

/// A float member: left out when it is not finite, as the typed encoder leaves it.
pub fn number<T: Ec2Xml + Copy + Into<f64>>(out: &mut Vec<u8>, tag: &str, v: T) {
    if v.into().is_finite() {
        element(out, tag, &v);
    }
}

/// `<tag>`.
pub fn open(out: &mut Vec<u8>, tag: &str) {
    text::open_tag(out, tag);
}

/// `</tag>`.
pub fn close(out: &mut Vec<u8>, tag: &str) {
    text::close_tag(out, tag);
}

impl Ec2Xml for String {
    fn write_content(&self, out: &mut Vec<u8>) {
        text::escaped(out, self);
    }
}

impl Ec2Xml for bool {
    fn write_content(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
    }
}

impl Ec2Xml for i32 {
    fn write_content(&self, out: &mut Vec<u8>) {
        text::decimal(out, i64::from(*self));
    }
}

impl Ec2Xml for i64 {
    fn write_content(&self, out: &mut Vec<u8>) {
        text::decimal(out, *self);
    }
}

impl Ec2Xml for f64 {
    fn write_content(&self, out: &mut Vec<u8>) {
        // A number that is not finite has no text ([`number`] leaves its member out).
        if self.is_finite() {
            use std::io::Write as _;
            write!(out, "{self}").expect("writing to memory cannot fail");
        }
    }
}

impl Ec2Xml for f32 {
    fn write_content(&self, out: &mut Vec<u8>) {
        // serde widens it, and so does the typed encoder.
        f64::from(*self).write_content(out);
    }
}

impl Ec2Xml for DateTime<Utc> {
    fn write_content(&self, out: &mut Vec<u8>) {
        text::iso_millis(out, *self);
    }
}

impl Ec2Xml for Blob {
    fn write_content(&self, out: &mut Vec<u8>) {
        text::escaped(out, &wire::scalar::encode_blob(&self.0));
    }
}

impl Ec2Xml for Empty {
    fn write_content(&self, _: &mut Vec<u8>) {}
}

impl<T: Ec2Xml + ?Sized> Ec2Xml for Box<T> {
    fn write_content(&self, out: &mut Vec<u8>) {
        (**self).write_content(out);
    }
}
