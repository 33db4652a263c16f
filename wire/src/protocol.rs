//! The wire protocols.

/// A protocol botocore names in a model's `metadata.protocols`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// EC2's query dialect (`ec2`).
    Ec2,
    /// awsQuery (`query`).
    Query,
    /// awsJson 1.0 / 1.1 (`json`).
    Json,
    /// Smithy RPC v2 CBOR (`smithy-rpc-v2-cbor`).
    RpcV2Cbor,
}

impl Protocol {
    /// The protocol botocore calls `name`, if this crate speaks it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ec2" => Some(Self::Ec2),
            "query" => Some(Self::Query),
            "json" => Some(Self::Json),
            "smithy-rpc-v2-cbor" => Some(Self::RpcV2Cbor),
            _ => None,
        }
    }

    /// botocore's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ec2 => "ec2",
            Self::Query => "query",
            Self::Json => "json",
            Self::RpcV2Cbor => "smithy-rpc-v2-cbor",
        }
    }

    /// Whether this is one of the two form-encoded, XML-answering protocols.
    pub fn is_query_family(self) -> bool {
        matches!(self, Self::Ec2 | Self::Query)
    }
}
