//! kec2's AWS protocol layer, driven by botocore's service models: routing a request to
//! its service, protocol and operation; verifying its SigV4 signature; decoding and
//! validating its input into a `serde_json::Value`; and encoding an output Value or an
//! error as that protocol's response. The protocols are `ec2`, awsQuery (`query`),
//! awsJson (`json`) and Smithy RPC v2 CBOR (`smithy-rpc-v2-cbor`).
//!
//! The Value contract: a structure is an object keyed by member name (absent members
//! omitted), a list an array, a map an object; strings and enums are strings, integers
//! and longs integers, floats and doubles numbers, booleans booleans; a timestamp is an
//! RFC 3339 UTC string ending in `Z` (milliseconds when not whole), a blob standard
//! base64 with padding.

pub mod credentials;
pub mod doc;
pub mod encode;
pub mod errors;
pub mod limits;
pub mod model;
pub mod protocol;
pub mod query;
pub mod request;
pub mod route;
pub mod scalar;
pub mod service_error;
pub mod sigv4;
pub mod validate;
pub mod xml;

pub use encode::{
    EncodeError, Fault, HttpResponse, ServiceError, encode_ec2_written, encode_error,
    encode_output, encode_output_typed,
};
pub use limits::Limits;
pub use model::{ModelError, ServiceModel};
pub use protocol::Protocol;
pub use request::{DecodeError, HttpRequest, decode_input};
pub use route::{Registry, RouteError, RouteErrorKind, Routed};
pub use validate::{Kind as ValidationKind, ValidationError};

/// An error with its chain of causes, `: `-separated.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
