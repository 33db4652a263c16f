//! Shapes and member references: the parts of botocore's `shapes` the codecs read.

use serde::Deserialize;

use super::ordered::Ordered;

/// A shape's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ShapeType {
    /// Members by name.
    Structure,
    /// A sequence of `member`.
    List,
    /// `key` to `value`.
    Map,
    /// UTF-8 text (enums too).
    String,
    /// A 32-bit integer.
    Integer,
    /// A 64-bit integer.
    Long,
    /// A 32-bit float.
    Float,
    /// A 64-bit float.
    Double,
    /// `true` or `false`.
    Boolean,
    /// A point in time.
    Timestamp,
    /// Bytes.
    Blob,
}

/// How a timestamp is written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TimestampFormat {
    /// `2026-12-07T01:02:03.000Z`.
    #[serde(rename = "iso8601")]
    Iso8601,
    /// Seconds since the epoch.
    #[serde(rename = "unixTimestamp")]
    UnixTimestamp,
    /// `Mon, 07 Dec 2026 01:02:03 GMT`.
    #[serde(rename = "rfc822")]
    Rfc822,
}

/// An XML namespace: a plain URI or `{"uri": ..., "prefix": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum XmlNamespace {
    /// Just the URI.
    Uri(String),
    /// URI with an optional prefix.
    Full {
        /// The namespace URI.
        uri: String,
        /// The prefix, if any.
        prefix: Option<String>,
    },
}

impl XmlNamespace {
    /// The namespace URI.
    pub fn uri(&self) -> &str {
        match self {
            Self::Uri(u) | Self::Full { uri: u, .. } => u,
        }
    }
}

/// The `error` trait of an exception shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorTrait {
    /// The error code (the shape's name when absent).
    pub code: Option<String>,
    /// The HTTP status.
    pub http_status_code: Option<u16>,
    /// Whether the caller is at fault (`Sender`) rather than the service (`Receiver`).
    #[serde(default)]
    pub sender_fault: bool,
}

/// A reference to a shape from a structure member, a list's `member` or a map's
/// `key`/`value`, with the serialization traits set on the reference.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The target shape's name.
    pub shape: String,
    /// `header`, `querystring`, `uri`, `statusCode` (REST protocols; unused by ours).
    pub location: Option<String>,
    /// The serialized name.
    pub location_name: Option<String>,
    /// The EC2 query name (wins over `locationName` on EC2 input).
    pub query_name: Option<String>,
    /// An XML element name (rarely used).
    pub xml_name: Option<String>,
    /// Whether a list or map is written without a wrapper element.
    pub flattened: Option<bool>,
    /// An XML namespace for this member.
    pub xml_namespace: Option<XmlNamespace>,
    /// Filled by the SDK with a fresh token when absent.
    #[serde(default)]
    pub idempotency_token: bool,
    /// The timestamp format for this member.
    pub timestamp_format: Option<TimestampFormat>,
    /// Written as an XML attribute.
    #[serde(default)]
    pub xml_attribute: bool,
}

/// A shape.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shape {
    /// The type.
    #[serde(rename = "type")]
    pub kind: ShapeType,
    /// A structure's members, in model order.
    #[serde(default)]
    pub members: Ordered<Member>,
    /// A structure's required member names.
    #[serde(default)]
    pub required: Vec<String>,
    /// A string's allowed values.
    #[serde(rename = "enum")]
    pub enum_values: Option<Vec<String>>,
    /// The least value (numbers) or length (strings, blobs, lists, maps).
    pub min: Option<f64>,
    /// The greatest value or length.
    pub max: Option<f64>,
    /// A list's element.
    pub member: Option<Member>,
    /// A map's key.
    pub key: Option<Member>,
    /// A map's value.
    pub value: Option<Member>,
    /// A list or map written without a wrapper element.
    #[serde(default)]
    pub flattened: bool,
    /// A timestamp's wire format.
    pub timestamp_format: Option<TimestampFormat>,
    /// An exception structure.
    #[serde(default)]
    pub exception: bool,
    /// An exception's code, status and fault.
    pub error: Option<ErrorTrait>,
    /// A serialized name set on the shape itself.
    pub location_name: Option<String>,
    /// An XML namespace set on the shape.
    pub xml_namespace: Option<XmlNamespace>,
    /// A tagged union (exactly one member set).
    #[serde(default)]
    pub union: bool,
}

impl Shape {
    /// Whether `name` is a required member.
    pub fn is_required(&self, name: &str) -> bool {
        self.required.iter().any(|r| r == name)
    }
}

/// A member reference resolved to its shape, with the traits of both merged the way
/// botocore merges them (the reference's own trait wins).
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'m> {
    /// The reference.
    pub member: &'m Member,
    /// The target shape's name.
    pub shape_name: &'m str,
    /// The target shape.
    pub shape: &'m Shape,
}

impl<'m> Resolved<'m> {
    /// `locationName` of the reference, else of the shape.
    pub fn location_name(&self) -> Option<&'m str> {
        self.member
            .location_name
            .as_deref()
            .or(self.shape.location_name.as_deref())
    }

    /// Whether a list or map is flattened.
    pub fn flattened(&self) -> bool {
        self.member.flattened.unwrap_or(self.shape.flattened)
    }

    /// The timestamp format, if one is set.
    pub fn timestamp_format(&self) -> Option<TimestampFormat> {
        self.member.timestamp_format.or(self.shape.timestamp_format)
    }

    /// The type of the target shape.
    pub fn kind(&self) -> ShapeType {
        self.shape.kind
    }
}
