//! Which service, protocol and operation a request is for, among the loaded models.
//!
//! - `smithy-protocol: rpc-v2-cbor` (or a `/service/{S}/operation/{O}` path): RPC v2
//!   CBOR; `S` is the model's `targetPrefix` (what botocore sends) or its `serviceId`.
//! - `X-Amz-Target: {targetPrefix}.{Operation}`: awsJson.
//! - otherwise a form with `Action`: the query protocol (`ec2` or `query`) of the service
//!   whose signing name (`signingName`, else `endpointPrefix`) is the SigV4 credential
//!   scope's service, since the same action exists in several services.

use serde_json::Value;

use crate::encode::{HttpResponse, ServiceError, encode_error};
use crate::errors;
use crate::limits::Limits;
use crate::model::{ModelError, ServiceModel};
use crate::protocol::Protocol;
use crate::query::Form;
use crate::request::{self, DecodeError, HttpRequest};

/// The loaded service models.
#[derive(Debug, Default)]
pub struct Registry {
    services: Vec<ServiceModel>,
}

/// Errors adding a model to a registry.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The model does not load.
    #[error("the model does not load")]
    Model(#[from] ModelError),
    /// Another model has the same signing name, target prefix or service id.
    #[error("service {0} is already registered")]
    Duplicate(String),
}

/// A request matched to its service, protocol and operation.
#[derive(Debug)]
pub struct Routed<'r> {
    /// The service.
    pub service: &'r ServiceModel,
    /// The protocol the request speaks (the response speaks it too).
    pub protocol: Protocol,
    /// The operation's name.
    pub operation: String,
    form: Option<Form>,
}

/// Why a request could not be routed.
#[derive(Debug, thiserror::Error)]
pub enum RouteErrorKind {
    /// No loaded service answers for this signing name, target or path.
    #[error("no service answers for {0:?}")]
    UnknownService(String),
    /// The operation is not one of the service's.
    #[error("operation {0} is not valid for this service")]
    UnknownOperation(String),
    /// The credential scope names another service than the request's target.
    #[error("the request is signed for service {scope}, not {service}")]
    ScopeMismatch {
        /// The scope's service.
        scope: String,
        /// The service the request is for.
        service: String,
    },
    /// The form or its `Action` cannot be read.
    #[error("the request cannot be read")]
    Decode(#[source] DecodeError),
}

/// A routing failure, with what is known of the service and protocol to answer in.
#[derive(Debug, thiserror::Error)]
#[error("cannot route the request")]
pub struct RouteError<'r> {
    /// The service, when known.
    pub service: Option<&'r ServiceModel>,
    /// The protocol to answer in.
    pub protocol: Protocol,
    /// What went wrong.
    #[source]
    pub kind: RouteErrorKind,
}

impl RouteError<'_> {
    /// The error to answer.
    pub fn service_error(&self) -> ServiceError {
        match &self.kind {
            RouteErrorKind::UnknownOperation(op) => errors::unknown_operation(self.protocol, op),
            RouteErrorKind::UnknownService(s) if self.protocol.is_query_family() => {
                ServiceError::new(
                    "InvalidAction",
                    format!("No service at this endpoint answers for {s}"),
                )
            }
            RouteErrorKind::UnknownService(s) => ServiceError::new(
                "UnknownOperationException",
                format!("No service at this endpoint answers for {s}"),
            ),
            RouteErrorKind::ScopeMismatch { .. } => {
                ServiceError::new("IncompleteSignature", self.kind.to_string()).with_status(403)
            }
            RouteErrorKind::Decode(e) => match self.service {
                Some(m) => errors::decode(m, self.protocol, e),
                None => ServiceError::new("MalformedQueryString", crate::error_chain(e)),
            },
        }
    }

    /// The response to send.
    pub fn response(&self, request_id: &str) -> HttpResponse {
        encode_error(
            self.service,
            self.protocol,
            &self.service_error(),
            request_id,
        )
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a model.
    pub fn add(&mut self, model: ServiceModel) -> Result<(), AddError> {
        let clash = self.services.iter().any(|m| {
            m.metadata.service_id == model.metadata.service_id
                || m.signing_name() == model.signing_name()
        });
        if clash {
            return Err(AddError::Duplicate(model.metadata.service_id.clone()));
        }
        self.services.push(model);
        Ok(())
    }

    /// Loads `json` and adds it.
    pub fn add_json(&mut self, json: &str) -> Result<(), AddError> {
        self.add(ServiceModel::from_json(json)?)
    }

    /// The loaded models.
    pub fn services(&self) -> &[ServiceModel] {
        &self.services
    }

    /// The model whose signing name is `name`.
    pub fn by_signing_name(&self, name: &str) -> Option<&ServiceModel> {
        self.services.iter().find(|m| m.signing_name() == name)
    }

    /// Routes `req`; `scope_service` is the service of its verified SigV4 scope.
    pub fn route<'r>(
        &'r self,
        req: &HttpRequest<'_>,
        scope_service: Option<&str>,
        limits: &Limits,
    ) -> Result<Routed<'r>, RouteError<'r>> {
        let routed = if req.header("smithy-protocol").is_some() || req.path.starts_with("/service/")
        {
            self.route_cbor(req)?
        } else if let Some(target) = req.header("x-amz-target") {
            self.route_json(target)?
        } else {
            return self.route_query(req, scope_service, limits);
        };
        check_scope(routed, scope_service)
    }

    fn route_cbor(&self, req: &HttpRequest<'_>) -> Result<Routed<'_>, RouteError<'_>> {
        let fail = |service, kind| RouteError {
            service,
            protocol: Protocol::RpcV2Cbor,
            kind,
        };
        let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        let ["service", name, "operation", op] = parts.as_slice() else {
            return Err(fail(
                None,
                RouteErrorKind::UnknownService(req.path.chars().take(200).collect()),
            ));
        };
        let service = self
            .services
            .iter()
            .filter(|m| m.speaks(Protocol::RpcV2Cbor))
            .find(|m| {
                m.metadata.target_prefix.as_deref() == Some(name)
                    || m.metadata.service_id.replace(' ', "") == *name
            })
            .ok_or_else(|| {
                fail(
                    None,
                    RouteErrorKind::UnknownService(name.chars().take(200).collect()),
                )
            })?;
        routed(service, Protocol::RpcV2Cbor, op)
    }

    fn route_json(&self, target: &str) -> Result<Routed<'_>, RouteError<'_>> {
        let fail = |kind| RouteError {
            service: None,
            protocol: Protocol::Json,
            kind,
        };
        let short = || target.chars().take(200).collect::<String>();
        let (prefix, op) = target
            .rsplit_once('.')
            .ok_or_else(|| fail(RouteErrorKind::UnknownService(short())))?;
        let service = self
            .services
            .iter()
            .filter(|m| m.speaks(Protocol::Json))
            .find(|m| m.metadata.target_prefix.as_deref() == Some(prefix))
            .ok_or_else(|| fail(RouteErrorKind::UnknownService(short())))?;
        routed(service, Protocol::Json, op)
    }

    fn route_query<'r>(
        &'r self,
        req: &HttpRequest<'_>,
        scope_service: Option<&str>,
        limits: &Limits,
    ) -> Result<Routed<'r>, RouteError<'r>> {
        let service = scope_service.and_then(|s| self.by_signing_name(s));
        let protocol = match service {
            Some(m) if m.speaks(Protocol::Ec2) => Protocol::Ec2,
            _ => Protocol::Query,
        };
        let fail = |service, kind| RouteError {
            service,
            protocol,
            kind,
        };
        let Some(service) = service.filter(|m| m.speaks(protocol)) else {
            let name = scope_service.unwrap_or("an unsigned request").to_string();
            return Err(fail(None, RouteErrorKind::UnknownService(name)));
        };
        let form = request::read_form(req, limits)
            .map_err(|e| fail(Some(service), RouteErrorKind::Decode(e)))?;
        let action = form.action.clone().ok_or_else(|| {
            fail(
                Some(service),
                RouteErrorKind::Decode(DecodeError::MissingAction),
            )
        })?;
        let mut r = routed(service, protocol, &action)?;
        r.form = Some(form);
        Ok(r)
    }
}

fn routed<'r>(
    service: &'r ServiceModel,
    protocol: Protocol,
    op: &str,
) -> Result<Routed<'r>, RouteError<'r>> {
    if service.operation(op).is_none() {
        return Err(RouteError {
            service: Some(service),
            protocol,
            kind: RouteErrorKind::UnknownOperation(op.chars().take(200).collect()),
        });
    }
    Ok(Routed {
        service,
        protocol,
        operation: op.to_string(),
        form: None,
    })
}

fn check_scope<'r>(
    r: Routed<'r>,
    scope_service: Option<&str>,
) -> Result<Routed<'r>, RouteError<'r>> {
    match scope_service {
        Some(s) if s != r.service.signing_name() => Err(RouteError {
            service: Some(r.service),
            protocol: r.protocol,
            kind: RouteErrorKind::ScopeMismatch {
                scope: s.chars().take(100).collect(),
                service: r.service.signing_name().to_string(),
            },
        }),
        _ => Ok(r),
    }
}

impl Routed<'_> {
    /// Decodes and validates the operation's input.
    pub fn decode(&self, req: &HttpRequest<'_>, limits: &Limits) -> Result<Value, DecodeError> {
        match &self.form {
            Some(form) => {
                request::decode_form(self.service, self.protocol, &self.operation, form, limits)
            }
            None => request::decode_doc(
                self.service,
                self.protocol,
                &self.operation,
                req.body,
                limits,
            ),
        }
    }

    /// The service's error for a failed [`Routed::decode`].
    pub fn decode_error(&self, e: &DecodeError) -> ServiceError {
        errors::decode(self.service, self.protocol, e)
    }

    /// Encodes the operation's output.
    pub fn output(
        &self,
        output: &Value,
        request_id: &str,
    ) -> Result<HttpResponse, crate::encode::EncodeError> {
        crate::encode::encode_output(
            self.service,
            self.protocol,
            &self.operation,
            output,
            request_id,
        )
    }

    /// Encodes an EC2 answer whose output's members `write` writes; `None` when the
    /// request is not in EC2's protocol (see [`crate::encode::encode_ec2_written`]).
    pub fn output_ec2_written(
        &self,
        write: impl FnOnce(&mut Vec<u8>),
        request_id: &str,
    ) -> Option<Result<HttpResponse, crate::encode::EncodeError>> {
        (self.protocol == Protocol::Ec2).then(|| {
            crate::encode::encode_ec2_written(self.service, &self.operation, request_id, write)
        })
    }

    /// Encodes the operation's typed output, `value` giving its Value should the typed
    /// encoder leave it to the Value path (see [`crate::encode::encode_output_typed_or`]).
    pub fn output_typed<T, E>(
        &self,
        output: &T,
        value: impl FnOnce() -> Result<Value, E>,
        request_id: &str,
    ) -> Result<HttpResponse, crate::encode::EncodeError>
    where
        T: serde::Serialize + ?Sized,
        E: std::fmt::Display,
    {
        crate::encode::encode_output_typed_or(
            self.service,
            self.protocol,
            &self.operation,
            output,
            request_id,
            value,
        )
    }

    /// Encodes an error.
    pub fn error(&self, e: &ServiceError, request_id: &str) -> HttpResponse {
        encode_error(Some(self.service), self.protocol, e, request_id)
    }
}
