//! Decoding a request's input, for any protocol, once the operation is known.

use serde_json::Value;

use crate::doc::{self, Doc, DocError, decode::Dialect};
use crate::limits::Limits;
use crate::model::ServiceModel;
use crate::protocol::Protocol;
use crate::query::{self, Flavor, Form, FormError};
use crate::validate::ValidationError;

/// An HTTP request, without any framework's types.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// `POST`, `GET`.
    pub method: &'a str,
    /// The path as sent (percent-encoded).
    pub path: &'a str,
    /// The query string as sent, without `?`.
    pub query: &'a str,
    /// Headers (names in any case; repeated names allowed).
    pub headers: &'a [(String, String)],
    /// The body (already decompressed).
    pub body: &'a [u8],
}

impl HttpRequest<'_> {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request's input could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// A body over the limit.
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// A form that cannot be read.
    #[error("the request's form cannot be read")]
    Form(#[source] FormError),
    /// A JSON or CBOR body that cannot be read.
    #[error("the request body cannot be read")]
    Doc(#[source] DocError),
    /// A query-protocol request without `Action`.
    #[error("the request has no Action")]
    MissingAction,
    /// An operation the service does not have.
    #[error("operation {0} is not valid for this service")]
    UnknownOperation(String),
    /// A `Version` other than the model's.
    #[error("version {given} is not supported; the service speaks {expected}")]
    BadVersion {
        /// The version sent.
        given: String,
        /// The model's `apiVersion`.
        expected: String,
    },
    /// An input that fails the model.
    #[error("the input is invalid")]
    Invalid(#[source] ValidationError),
}

/// Reads the form of a query-protocol request (body and query string).
pub fn read_form(req: &HttpRequest<'_>, limits: &Limits) -> Result<Form, DecodeError> {
    if req.body.len() > limits.max_body {
        return Err(DecodeError::TooLarge(limits.max_body));
    }
    Form::parse(req.query, req.body, limits).map_err(DecodeError::Form)
}

/// Decodes the input of `operation` from a query-protocol form.
pub fn decode_form(
    model: &ServiceModel,
    protocol: Protocol,
    operation: &str,
    form: &Form,
    limits: &Limits,
) -> Result<Value, DecodeError> {
    let op = model
        .operation(operation)
        .ok_or_else(|| DecodeError::UnknownOperation(operation.to_string()))?;
    if let Some(v) = &form.version
        && *v != model.metadata.api_version
    {
        return Err(DecodeError::BadVersion {
            given: v.clone(),
            expected: model.metadata.api_version.clone(),
        });
    }
    let flavor = if protocol == Protocol::Ec2 {
        Flavor::Ec2
    } else {
        Flavor::Query
    };
    match &op.input {
        Some(input) => query::decode::decode(
            model,
            flavor,
            &model.shapes[&input.shape],
            &form.root,
            limits,
        )
        .map_err(DecodeError::Invalid),
        None if form.root.children.is_empty() => Ok(Value::Object(serde_json::Map::new())),
        None => {
            let first = form
                .root
                .children
                .keys()
                .next()
                .cloned()
                .unwrap_or_default();
            Err(DecodeError::Invalid(ValidationError::new(
                first,
                crate::validate::Kind::Unknown,
            )))
        }
    }
}

/// Decodes the input of `operation` from a JSON or CBOR body.
pub fn decode_doc(
    model: &ServiceModel,
    protocol: Protocol,
    operation: &str,
    body: &[u8],
    limits: &Limits,
) -> Result<Value, DecodeError> {
    let op = model
        .operation(operation)
        .ok_or_else(|| DecodeError::UnknownOperation(operation.to_string()))?;
    if body.len() > limits.max_body {
        return Err(DecodeError::TooLarge(limits.max_body));
    }
    let (doc, dialect) = if protocol == Protocol::RpcV2Cbor {
        (Doc::from_cbor(body, limits.max_depth * 2), Dialect::Cbor)
    } else {
        (Doc::from_json(body, limits.max_depth * 2), Dialect::Json)
    };
    let doc = doc.map_err(DecodeError::Doc)?;
    match &op.input {
        Some(input) => doc::decode::decode(
            model,
            dialect,
            &model.shapes[&input.shape],
            &doc,
            limits.max_depth,
        )
        .map_err(DecodeError::Invalid),
        None => Ok(Value::Object(serde_json::Map::new())),
    }
}

/// Decodes the input of `operation` from `req` in `protocol`.
pub fn decode_input(
    model: &ServiceModel,
    protocol: Protocol,
    operation: &str,
    req: &HttpRequest<'_>,
    limits: &Limits,
) -> Result<Value, DecodeError> {
    if protocol.is_query_family() {
        let form = read_form(req, limits)?;
        decode_form(model, protocol, operation, &form, limits)
    } else {
        decode_doc(model, protocol, operation, req.body, limits)
    }
}

/// Why a body cannot be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// A `Content-Encoding` other than `gzip` or `identity`.
    #[error("content encoding {0:?} is not supported")]
    Unsupported(String),
    /// The gzip stream is corrupt.
    #[error("the gzip body is corrupt")]
    Corrupt(#[source] std::io::Error),
    /// The body is larger than the limit once decompressed.
    #[error("the body is larger than {0} bytes once decompressed")]
    TooLarge(usize),
}

/// The body as the codecs read it: decompressed when `Content-Encoding: gzip` (botocore
/// compresses large CloudWatch `PutMetricData` bodies), within `limits.max_body`. SigV4
/// signs the body as sent, so verify before calling this.
pub fn decoded_body<'a>(
    req: &HttpRequest<'a>,
    limits: &Limits,
) -> Result<std::borrow::Cow<'a, [u8]>, BodyError> {
    use std::io::Read;
    let encoding = req.header("content-encoding").map(str::trim).unwrap_or("");
    match encoding.to_ascii_lowercase().as_str() {
        "" | "identity" => Ok(std::borrow::Cow::Borrowed(req.body)),
        "gzip" => {
            let mut out = Vec::new();
            let mut reader =
                flate2::read::MultiGzDecoder::new(req.body).take(limits.max_body as u64 + 1);
            reader.read_to_end(&mut out).map_err(BodyError::Corrupt)?;
            if out.len() > limits.max_body {
                return Err(BodyError::TooLarge(limits.max_body));
            }
            Ok(std::borrow::Cow::Owned(out))
        }
        other => Err(BodyError::Unsupported(other.chars().take(40).collect())),
    }
}
