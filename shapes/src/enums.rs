//! What every generated enum shares: a string in the value, the model's spelling of it.
//!
//! The generator writes each enum with its inherent `as_str` and `from_wire` and then calls
//! `string_enum!`, which adds [`StringEnum`], `Display`, `FromStr`,
//! `Serialize` and `Deserialize` from those two: serde's derive would write a far larger
//! deserializer per enum (EC2's `InstanceType` has over 1,400 values).

use std::fmt;

/// A string shape with an `enum` list in the model.
pub trait StringEnum: Sized + Copy + 'static {
    /// The shape's name in the model (`InstanceType`).
    const SHAPE: &'static str;
    /// The value as the model spells it (`t2.micro`).
    fn as_str(&self) -> &'static str;
    /// The variant the model spells `value`, if any.
    fn from_wire(value: &str) -> Option<Self>;
}

/// A string that is none of an enum shape's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// The enum shape's name in the model.
    pub shape: &'static str,
    /// The string that was given.
    pub value: String,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a value of {}", self.value, self.shape)
    }
}

impl std::error::Error for UnknownValue {}

/// Reads an enum from a string without copying it.
pub(crate) struct Visitor<T>(pub(crate) std::marker::PhantomData<T>);

impl<T: StringEnum> serde::de::Visitor<'_> for Visitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a value of {}", T::SHAPE)
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<T, E> {
        T::from_wire(value)
            .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(value), &self))
    }
}

/// The trait impls of a generated enum, from its inherent `as_str` and `from_wire`.
macro_rules! string_enum {
    ($t:ident, $shape:literal) => {
        impl $crate::StringEnum for $t {
            const SHAPE: &'static str = $shape;
            fn as_str(&self) -> &'static str {
                $t::as_str(self)
            }
            fn from_wire(value: &str) -> Option<Self> {
                $t::from_wire(value)
            }
        }
        impl ::std::fmt::Display for $t {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl ::std::str::FromStr for $t {
            type Err = $crate::UnknownValue;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                $t::from_wire(value).ok_or_else(|| $crate::UnknownValue {
                    shape: $shape,
                    value: value.to_owned(),
                })
            }
        }
        impl $crate::ec2_xml::Ec2Xml for $t {
            fn write_content(&self, out: &mut Vec<u8>) {
                ::wire::xml::text::escaped(out, self.as_str());
            }
        }
        impl ::serde::Serialize for $t {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> ::serde::Deserialize<'de> for $t {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str($crate::enums::Visitor::<$t>(::std::marker::PhantomData))
            }
        }
    };
}
pub(crate) use string_enum;
