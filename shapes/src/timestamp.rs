//! The `timestamp` shape: `chrono::DateTime<Utc>` in the types, an RFC 3339 string in UTC
//! with `Z` in the wire layer's value (`2024-05-01T12:00:00Z`, with as many fraction digits as
//! the instant needs: none, 3, 6 or 9). Reading accepts any RFC 3339 offset and converts it.
//!
//! The generated types name these modules in `#[serde(with = "...")]`: this one for a
//! required member, `option` for an optional one, `list` and `list::option` for lists.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// The value's form of an instant.
pub fn to_string(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The instant of an RFC 3339 string.
pub fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc))
}

/// Serializes a required timestamp.
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&to_string(t))
}

/// Deserializes a required timestamp.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    parse(&text).map_err(|e| {
        serde::de::Error::custom(format_args!("a timestamp is not RFC 3339 ({text:?}): {e}"))
    })
}

/// One timestamp, for `serialize_with` inside the other forms.
struct One<'a>(&'a DateTime<Utc>);

impl serde::Serialize for One<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize(self.0, serializer)
    }
}

/// One timestamp, for `deserialize_with` inside the other forms.
struct Owned(DateTime<Utc>);

impl<'de> Deserialize<'de> for Owned {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize(deserializer).map(Owned)
    }
}

/// An optional timestamp (the member is left out when `None`).
pub mod option {
    use super::*;

    /// Serializes a present optional timestamp.
    pub fn serialize<S: Serializer>(
        t: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::serialize(t, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Deserializes an optional timestamp (absent is handled by `#[serde(default)]`).
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<Owned>::deserialize(deserializer).map(|t| t.map(|t| t.0))
    }
}

/// A list of timestamps.
pub mod list {
    use super::*;
    use serde::ser::SerializeSeq;

    /// Serializes a list of timestamps.
    pub fn serialize<S: Serializer>(
        ts: &[DateTime<Utc>],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(ts.len()))?;
        for t in ts {
            seq.serialize_element(&One(t))?;
        }
        seq.end()
    }

    /// Deserializes a list of timestamps.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<DateTime<Utc>>, D::Error> {
        Vec::<Owned>::deserialize(deserializer).map(|ts| ts.into_iter().map(|t| t.0).collect())
    }

    /// An optional list of timestamps.
    pub mod option {
        use super::super::*;

        /// Serializes a present optional list of timestamps.
        pub fn serialize<S: Serializer>(
            ts: &Option<Vec<DateTime<Utc>>>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match ts {
                Some(ts) => super::serialize(ts, serializer),
                None => serializer.serialize_none(),
            }
        }

        /// Deserializes an optional list of timestamps.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Vec<DateTime<Utc>>>, D::Error> {
            Option::<Vec<Owned>>::deserialize(deserializer)
                .map(|ts| ts.map(|ts| ts.into_iter().map(|t| t.0).collect()))
        }
    }
}
