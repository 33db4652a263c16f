//! Turning decode and validation failures into each service's own error codes.
//!
//! - EC2: `MissingParameter`, `UnknownParameter`, else `InvalidParameterValue` (EC2's
//!   common client errors).
//! - SNS: `InvalidParameter` (its `InvalidParameterException`).
//! - CloudWatch: `MissingParameter` (its `MissingRequiredParameterException`); an enum,
//!   range or length failure `ValidationError` (its `ValidationException`); anything
//!   else `InvalidParameterValue` (its `InvalidParameterValueException`).
//! - Every other awsQuery service (STS, Auto Scaling, ELBv2, IAM): `ValidationError`,
//!   with the "1 validation error detected" message AWS writes.

use crate::encode::ServiceError;
use crate::model::ServiceModel;
use crate::protocol::Protocol;
use crate::request::{BodyError, DecodeError};
use crate::validate::{Kind, ValidationError};

/// The service's error for an input that fails the model.
pub fn validation(model: &ServiceModel, protocol: Protocol, e: &ValidationError) -> ServiceError {
    let path = &e.path;
    if protocol == Protocol::Ec2 {
        return match &e.kind {
            Kind::Missing => ServiceError::new(
                "MissingParameter",
                format!("The request must contain the parameter {path}"),
            ),
            Kind::Unknown => ServiceError::new(
                "UnknownParameter",
                format!("The parameter {path} is not recognized"),
            ),
            kind => ServiceError::new(
                "InvalidParameterValue",
                format!("Value for parameter {path} is invalid: {kind}"),
            ),
        };
    }
    match model.metadata.service_id.as_str() {
        "SNS" => ServiceError::new(
            "InvalidParameter",
            format!("Invalid parameter: {path} {}", e.kind),
        ),
        "CloudWatch" => match &e.kind {
            Kind::Missing => ServiceError::new(
                "MissingParameter",
                format!("The parameter {path} is required."),
            ),
            Kind::NotInEnum { .. } | Kind::OutOfRange { .. } | Kind::BadLength { .. } => {
                ServiceError::new("ValidationError", coral_message(e))
            }
            kind => ServiceError::new(
                "InvalidParameterValue",
                format!("The parameter {path} {kind}."),
            ),
        },
        _ => ServiceError::new("ValidationError", coral_message(e)),
    }
}

/// AWS's generic validation message.
fn coral_message(e: &ValidationError) -> String {
    let constraint = match &e.kind {
        Kind::Missing => "Member must not be null".to_string(),
        Kind::NotInEnum { allowed, .. } => {
            format!(
                "Member must satisfy enum value set: [{}]",
                crate::validate::enum_list(allowed)
            )
        }
        kind => format!("Member {kind}"),
    };
    let value = match &e.kind {
        Kind::NotInEnum { value, .. } => format!("Value '{value}' at"),
        Kind::OutOfRange { value, .. } => format!("Value '{value}' at"),
        _ => "Value at".to_string(),
    };
    format!(
        "1 validation error detected: {value} '{}' failed to satisfy constraint: {constraint}",
        e.path
    )
}

/// The service's error for any decode failure.
pub fn decode(model: &ServiceModel, protocol: Protocol, e: &DecodeError) -> ServiceError {
    match e {
        DecodeError::Invalid(v) => validation(model, protocol, v),
        DecodeError::TooLarge(limit) => ServiceError::new(
            "RequestEntityTooLarge",
            format!("The request body is larger than the limit of {limit} bytes"),
        )
        .with_status(413),
        DecodeError::Form(f) => ServiceError::new(
            "MalformedQueryString",
            format!("The request is not a valid form: {f}"),
        ),
        DecodeError::Doc(d) => ServiceError::new("SerializationException", crate::error_chain(d)),
        // EC2 names it as any other missing parameter.
        DecodeError::MissingAction if protocol == Protocol::Ec2 => ServiceError::new(
            "MissingParameter",
            "The request must contain the parameter Action",
        ),
        DecodeError::MissingAction => ServiceError::new(
            "MissingAction",
            "The request must contain the parameter Action",
        ),
        DecodeError::UnknownOperation(op) => unknown_operation(protocol, op),
        DecodeError::BadVersion { given, expected } => ServiceError::new(
            "NoSuchVersion",
            format!(
                "The requested version ({given}) of service {} does not exist; the version is {expected}",
                model.metadata.service_id
            ),
        ),
    }
}

/// The protocol's error for an operation the service does not have.
pub fn unknown_operation(protocol: Protocol, op: &str) -> ServiceError {
    if protocol.is_query_family() {
        ServiceError::new(
            "InvalidAction",
            format!("The action {op} is not valid for this web service."),
        )
    } else {
        ServiceError::new(
            "UnknownOperationException",
            format!("Operation {op} is not supported by this service"),
        )
    }
}

/// The protocol's error for a body that cannot be decompressed.
pub fn body(protocol: Protocol, e: &BodyError) -> ServiceError {
    match e {
        BodyError::TooLarge(limit) => ServiceError::new(
            "RequestEntityTooLarge",
            format!("The request body is larger than the limit of {limit} bytes"),
        )
        .with_status(413),
        BodyError::Unsupported(_) => {
            ServiceError::new("UnsupportedMediaType", e.to_string()).with_status(415)
        }
        BodyError::Corrupt(_) if protocol.is_query_family() => {
            ServiceError::new("MalformedQueryString", crate::error_chain(e))
        }
        BodyError::Corrupt(_) => ServiceError::new("SerializationException", crate::error_chain(e)),
    }
}
