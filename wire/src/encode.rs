//! Responses: an operation's output or an error, in the request's protocol.

pub(crate) mod error;
pub(crate) mod path;
pub mod typed;

pub use error::EncodeError;

use serde::Serialize;
use serde_json::Value;

use crate::doc::{self, Doc, decode::Dialect};
use crate::model::{Operation, ServiceModel, Shape, ShapeType};
use crate::protocol::Protocol;
use crate::query::Flavor;

pub use crate::service_error::{Fault, ServiceError};
use crate::xml::{Writer, encode as xml};

/// An HTTP response, without any framework's types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Encodes the output `output` (a contract Value object; ignored for operations without
/// output) of `operation`.
pub fn encode_output(
    model: &ServiceModel,
    protocol: Protocol,
    operation: &str,
    output: &Value,
    request_id: &str,
) -> Result<HttpResponse, EncodeError> {
    let op = model
        .operation(operation)
        .ok_or_else(|| EncodeError::NoOperation(operation.to_string()))?;
    let shape = op.output.as_ref().map(|o| &model.shapes[&o.shape]);
    match protocol {
        Protocol::Ec2 | Protocol::Query => {
            let flavor = if protocol == Protocol::Ec2 {
                Flavor::Ec2
            } else {
                Flavor::Query
            };
            let (head, tail) = xml_frame(model, protocol, operation, op, request_id);
            let mut w = Writer::new();
            w.raw(&head);
            if let Some(s) = shape {
                xml::members(model, flavor, s, output, &mut w)?;
            }
            w.raw(&tail);
            Ok(xml_response(200, w.finish().into_bytes(), request_id))
        }
        Protocol::Json | Protocol::RpcV2Cbor => {
            let doc = match shape {
                Some(s) => doc::encode::encode(model, dialect(protocol), s, output)?,
                None => Doc::Map(Vec::new()),
            };
            Ok(doc_response(
                Some(model),
                protocol,
                200,
                doc,
                request_id,
                None,
            ))
        }
    }
}

/// Encodes the typed output `output` of `operation` (ignored for operations without
/// output): the bytes of [`encode_output`] given its Value, written without one
/// ([`typed`]), unless the typed encoder leaves it to the Value path.
pub fn encode_output_typed<T: Serialize + ?Sized>(
    model: &ServiceModel,
    protocol: Protocol,
    operation: &str,
    output: &T,
    request_id: &str,
) -> Result<HttpResponse, EncodeError> {
    encode_output_typed_or(model, protocol, operation, output, request_id, || {
        serde_json::to_value(output)
    })
}

/// [`encode_output_typed`], with `value` giving the output's Value when the typed encoder
/// leaves it to the Value path: for a caller whose conversion to a Value is compiled
/// elsewhere (the shapes' `O::output_to_value`), so as not to compile it again.
pub fn encode_output_typed_or<T, E>(
    model: &ServiceModel,
    protocol: Protocol,
    operation: &str,
    output: &T,
    request_id: &str,
    value: impl FnOnce() -> Result<Value, E>,
) -> Result<HttpResponse, EncodeError>
where
    T: Serialize + ?Sized,
    E: std::fmt::Display,
{
    match typed::encode_output(model, protocol, operation, output, request_id) {
        Ok(r) => Ok(r),
        Err(typed::TypedError::Encode(e)) => Err(e),
        Err(typed::TypedError::Custom(m)) => Err(EncodeError::Serialize(m)),
        Err(typed::TypedError::Fallback(_)) => {
            let value = value().map_err(|e| EncodeError::Serialize(e.to_string()))?;
            encode_output(model, protocol, operation, &value, request_id)
        }
    }
}

/// An EC2 answer to `operation` whose output's members `write` writes (the EC2 writers
/// `shapes` generates give the bytes [`encode_output_typed`] gives).
pub fn encode_ec2_written(
    model: &ServiceModel,
    operation: &str,
    request_id: &str,
    write: impl FnOnce(&mut Vec<u8>),
) -> Result<HttpResponse, EncodeError> {
    let op = model
        .operation(operation)
        .ok_or_else(|| EncodeError::NoOperation(operation.to_string()))?;
    let (head, tail) = xml_frame(model, Protocol::Ec2, operation, op, request_id);
    let mut out = head.into_bytes();
    if op.output.is_some() {
        write(&mut out);
    }
    out.extend_from_slice(tail.as_bytes());
    Ok(xml_response(200, out, request_id))
}

/// The XML of an EC2 or awsQuery response around its output's members: what comes before
/// them and what comes after.
fn xml_frame(
    model: &ServiceModel,
    protocol: Protocol,
    operation: &str,
    op: &Operation,
    request_id: &str,
) -> (String, String) {
    let root = format!("{operation}Response");
    let (mut head, mut tail) = (Writer::new(), Writer::new());
    if protocol == Protocol::Ec2 {
        head.raw(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        head.open_ns(&root, &ec2_namespace(model))
            .leaf("requestId", request_id);
    } else {
        head.open_ns(&root, &query_namespace(model));
        if let Some(wrapper) = op.output.as_ref().and_then(|o| o.result_wrapper.as_ref()) {
            head.open(wrapper);
            tail.close(wrapper);
        }
        tail.open("ResponseMetadata")
            .leaf("RequestId", request_id)
            .close("ResponseMetadata");
    }
    tail.close(&root);
    (head.finish(), tail.finish())
}

/// Encodes `error`; without a model (a request no service answers), the protocol's
/// plain form is written.
pub fn encode_error(
    model: Option<&ServiceModel>,
    protocol: Protocol,
    error: &ServiceError,
    request_id: &str,
) -> HttpResponse {
    match protocol {
        Protocol::Ec2 => ec2_error(error, request_id),
        Protocol::Query => query_error(model, error, request_id),
        Protocol::Json | Protocol::RpcV2Cbor => {
            let shape = model.and_then(|m| m.error_shape(&error.code));
            let type_name = shape.map_or(error.code.as_str(), |(n, _)| n);
            let mut entries = vec![
                ("__type".to_string(), Doc::Text(type_name.to_string())),
                ("message".to_string(), Doc::Text(error.message.clone())),
            ];
            if let (Some(model), Some((_, s))) = (model, shape)
                && let Ok(Doc::Map(fields)) = doc::encode::encode(
                    model,
                    dialect(protocol),
                    &without_message(s),
                    &Value::Object(error.fields.clone()),
                )
            {
                entries.extend(fields);
            }
            let compat = model
                .is_some_and(ServiceModel::query_compatible)
                .then(|| format!("{};{}", error.code, error.fault.as_str()));
            doc_response(
                model,
                protocol,
                error.status,
                Doc::Map(entries),
                request_id,
                compat,
            )
        }
    }
}

/// EC2's error document, which needs no model.
pub fn ec2_error(error: &ServiceError, request_id: &str) -> HttpResponse {
    let mut w = Writer::new();
    w.raw(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    w.open("Response").open("Errors").open("Error");
    w.leaf("Code", &error.code).leaf("Message", &error.message);
    w.close("Error")
        .close("Errors")
        .leaf("RequestID", request_id)
        .close("Response");
    xml_response(error.status, w.finish().into_bytes(), request_id)
}

fn query_error(
    model: Option<&ServiceModel>,
    error: &ServiceError,
    request_id: &str,
) -> HttpResponse {
    let mut w = Writer::new();
    match model {
        Some(m) => w.open_ns("ErrorResponse", &query_namespace(m)),
        None => w.open("ErrorResponse"),
    };
    w.open("Error");
    w.leaf("Type", error.fault.as_str())
        .leaf("Code", &error.code)
        .leaf("Message", &error.message);
    if let Some(model) = model
        && let Some((_, s)) = model.error_shape(&error.code)
    {
        let mut fields = Writer::new();
        if xml::members(
            model,
            Flavor::Query,
            &without_message(s),
            &Value::Object(error.fields.clone()),
            &mut fields,
        )
        .is_ok()
        {
            w.raw(&fields.finish());
        }
    }
    w.close("Error")
        .leaf("RequestId", request_id)
        .close("ErrorResponse");
    xml_response(error.status, w.finish().into_bytes(), request_id)
}

/// An exception shape without its message member (written apart).
fn without_message(s: &Shape) -> Shape {
    let mut s = s.clone();
    s.members
        .0
        .retain(|(n, _)| !n.eq_ignore_ascii_case("message"));
    s.required.clear();
    debug_assert_eq!(s.kind, ShapeType::Structure);
    s
}

fn dialect(p: Protocol) -> Dialect {
    if p == Protocol::RpcV2Cbor {
        Dialect::Cbor
    } else {
        Dialect::Json
    }
}

fn ec2_namespace(model: &ServiceModel) -> String {
    format!(
        "http://ec2.amazonaws.com/doc/{}/",
        model.metadata.api_version
    )
}

fn query_namespace(model: &ServiceModel) -> String {
    model.metadata.xml_namespace.as_ref().map_or_else(
        || {
            format!(
                "https://{}.amazonaws.com/doc/{}/",
                model.metadata.endpoint_prefix, model.metadata.api_version
            )
        },
        |n| n.uri().to_string(),
    )
}

fn xml_response(status: u16, body: Vec<u8>, request_id: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![
            ("Content-Type".into(), "text/xml;charset=UTF-8".into()),
            ("x-amzn-RequestId".into(), request_id.into()),
        ],
        body,
    }
}

fn doc_response(
    model: Option<&ServiceModel>,
    protocol: Protocol,
    status: u16,
    doc: Doc,
    request_id: &str,
    compat: Option<String>,
) -> HttpResponse {
    let body = if protocol == Protocol::RpcV2Cbor {
        let mut out = Vec::new();
        ciborium::ser::into_writer(&doc.into_cbor(), &mut out)
            .expect("writing CBOR to memory cannot fail");
        out
    } else {
        serde_json::to_vec(&doc.into_json()).expect("a JSON value always serializes")
    };
    doc_http(model, protocol, status, body, request_id, compat)
}

/// A JSON or CBOR response with its body written.
fn doc_http(
    model: Option<&ServiceModel>,
    protocol: Protocol,
    status: u16,
    body: Vec<u8>,
    request_id: &str,
    compat: Option<String>,
) -> HttpResponse {
    let mut headers = vec![("x-amzn-RequestId".to_string(), request_id.to_string())];
    if protocol == Protocol::RpcV2Cbor {
        headers.push(("smithy-protocol".into(), "rpc-v2-cbor".into()));
        headers.push(("Content-Type".into(), "application/cbor".into()));
    } else {
        let version = model
            .and_then(|m| m.metadata.json_version.as_deref())
            .unwrap_or("1.0");
        headers.push((
            "Content-Type".into(),
            format!("application/x-amz-json-{version}"),
        ));
    }
    if let Some(c) = compat {
        headers.push(("x-amzn-query-error".into(), c));
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}
