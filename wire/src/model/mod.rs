//! botocore's `service-2.json`: metadata, operations and shapes, checked once when loaded
//! so that the codecs can follow references without failing.

mod ordered;
mod plan;
mod shape;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

pub use ordered::Ordered;
pub(crate) use plan::{Plan, PlanRef, PlanShape};
pub use shape::{ErrorTrait, Member, Resolved, Shape, ShapeType, TimestampFormat, XmlNamespace};

use crate::protocol::Protocol;

/// Errors loading a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The document is not JSON of the expected form.
    #[error("the model is not a botocore service model")]
    Json(#[source] serde_json::Error),
    /// One shape is malformed.
    #[error("shape {name} is malformed")]
    Shape {
        /// The shape.
        name: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A reference names a shape the model does not have.
    #[error("{from} refers to shape {target}, which the model does not define")]
    MissingShape {
        /// Where the reference is.
        from: String,
        /// The missing shape.
        target: String,
    },
    /// A list without `member`, or a map without `key` or `value`.
    #[error("shape {0} lacks its member, key or value")]
    Incomplete(String),
    /// An operation's input or output is not a structure.
    #[error("operation {operation}'s {which} shape {shape} is not a structure")]
    NotStructure {
        /// The operation.
        operation: String,
        /// `input` or `output`.
        which: &'static str,
        /// The shape.
        shape: String,
    },
    /// `required` names a member the structure does not have.
    #[error("shape {shape} requires member {member}, which it does not have")]
    UnknownRequired {
        /// The structure.
        shape: String,
        /// The member.
        member: String,
    },
    /// No protocol this crate speaks.
    #[error("the model's protocols {0:?} include none this crate speaks")]
    NoProtocol(Vec<String>),
}

/// The model's `metadata`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// The default protocol.
    pub protocol: Option<String>,
    /// All protocols, preferred first.
    #[serde(default)]
    pub protocols: Vec<String>,
    /// `2016-11-15`.
    pub api_version: String,
    /// The `X-Amz-Target` prefix (JSON) and service name (RPC v2).
    pub target_prefix: Option<String>,
    /// `1.0` or `1.1`.
    pub json_version: Option<String>,
    /// The host prefix, also the signing name when `signingName` is absent.
    pub endpoint_prefix: String,
    /// The SigV4 service name.
    pub signing_name: Option<String>,
    /// `EC2`, `CloudWatch`.
    pub service_id: String,
    /// The XML namespace of responses.
    pub xml_namespace: Option<XmlNamespace>,
    /// Present on services that moved from awsQuery and keep its error codes.
    pub aws_query_compatible: Option<serde_json::Value>,
}

/// An operation's `output`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputRef {
    /// The output shape.
    pub shape: String,
    /// The awsQuery `{Op}Result` element.
    pub result_wrapper: Option<String>,
}

/// An operation's `http`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Http {
    /// `POST`.
    pub method: Option<String>,
    /// `/`.
    pub request_uri: Option<String>,
}

/// An error reference.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorRef {
    /// The exception shape.
    pub shape: String,
}

/// An operation.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// `RunInstances`.
    pub name: String,
    /// Method and URI.
    #[serde(default)]
    pub http: Http,
    /// The input shape.
    pub input: Option<Member>,
    /// The output shape.
    pub output: Option<OutputRef>,
    /// The exceptions it may raise.
    #[serde(default)]
    pub errors: Vec<ErrorRef>,
}

#[derive(Deserialize)]
struct RawModel {
    metadata: Metadata,
    operations: BTreeMap<String, Operation>,
    shapes: BTreeMap<String, Shape>,
}

/// Only the shapes, as untyped values: to name the shape that fails to load. (Shapes are
/// not loaded through `Value` in the first place because it would lose member order.)
#[derive(Deserialize)]
struct UntypedShapes {
    shapes: BTreeMap<String, serde_json::Value>,
}

/// The error naming the first malformed shape, else `e` itself.
fn shape_error(text: &str, e: serde_json::Error) -> ModelError {
    let Ok(untyped) = serde_json::from_str::<UntypedShapes>(text) else {
        return ModelError::Json(e);
    };
    for (name, v) in untyped.shapes {
        if let Err(source) = Shape::deserialize(v) {
            return ModelError::Shape { name, source };
        }
    }
    ModelError::Json(e)
}

/// A loaded, checked service model.
#[derive(Debug, Clone)]
pub struct ServiceModel {
    /// The metadata.
    pub metadata: Metadata,
    /// Operations by name.
    pub operations: BTreeMap<String, Operation>,
    /// Shapes by name.
    pub shapes: BTreeMap<String, Shape>,
    protocols: Vec<Protocol>,
    /// The model compiled for the typed encoder, on first use (from the model as loaded:
    /// the fields are not changed after).
    plan: OnceLock<Plan>,
}

impl ServiceModel {
    /// Reads and checks a `service-2.json` document (whole or trimmed).
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let raw: RawModel = serde_json::from_str(text).map_err(|e| shape_error(text, e))?;
        let shapes = raw.shapes;
        let listed: Vec<String> = if raw.metadata.protocols.is_empty() {
            raw.metadata.protocol.iter().cloned().collect()
        } else {
            raw.metadata.protocols.clone()
        };
        let protocols: Vec<Protocol> = listed
            .iter()
            .filter_map(|p| Protocol::from_name(p))
            .collect();
        if protocols.is_empty() {
            return Err(ModelError::NoProtocol(listed));
        }
        let model = Self {
            metadata: raw.metadata,
            operations: raw.operations,
            shapes,
            protocols,
            plan: OnceLock::new(),
        };
        model.check()?;
        Ok(model)
    }

    fn check(&self) -> Result<(), ModelError> {
        for (name, shape) in &self.shapes {
            self.check_shape(name, shape)?;
        }
        for (name, op) in &self.operations {
            if let Some(input) = &op.input {
                self.check_operation_shape(name, "input", &input.shape)?;
            }
            if let Some(output) = &op.output {
                self.check_operation_shape(name, "output", &output.shape)?;
            }
            for e in &op.errors {
                self.require(name, &e.shape)?;
            }
        }
        Ok(())
    }

    fn check_shape(&self, name: &str, shape: &Shape) -> Result<(), ModelError> {
        match shape.kind {
            ShapeType::Structure => {
                for (m, member) in shape.members.iter() {
                    self.require(&format!("{name}.{m}"), &member.shape)?;
                }
                if let Some(r) = shape
                    .required
                    .iter()
                    .find(|r| shape.members.get(r).is_none())
                {
                    return Err(ModelError::UnknownRequired {
                        shape: name.into(),
                        member: r.clone(),
                    });
                }
            }
            ShapeType::List => {
                let m = shape
                    .member
                    .as_ref()
                    .ok_or_else(|| ModelError::Incomplete(name.into()))?;
                self.require(name, &m.shape)?;
            }
            ShapeType::Map => {
                for m in [&shape.key, &shape.value] {
                    let m = m
                        .as_ref()
                        .ok_or_else(|| ModelError::Incomplete(name.into()))?;
                    self.require(name, &m.shape)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn require(&self, from: &str, target: &str) -> Result<(), ModelError> {
        if self.shapes.contains_key(target) {
            Ok(())
        } else {
            Err(ModelError::MissingShape {
                from: from.into(),
                target: target.into(),
            })
        }
    }

    fn check_operation_shape(
        &self,
        op: &str,
        which: &'static str,
        shape: &str,
    ) -> Result<(), ModelError> {
        self.require(op, shape)?;
        if self.shapes[shape].kind != ShapeType::Structure {
            return Err(ModelError::NotStructure {
                operation: op.into(),
                which,
                shape: shape.into(),
            });
        }
        Ok(())
    }

    /// The operation named `name`.
    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.operations.get(name)
    }

    /// The shape named `name`.
    pub fn shape(&self, name: &str) -> Option<&Shape> {
        self.shapes.get(name)
    }

    /// A reference resolved to its shape (every reference was checked at load).
    pub fn resolve<'m>(&'m self, member: &'m Member) -> Resolved<'m> {
        let (shape_name, shape) = self
            .shapes
            .get_key_value(member.shape.as_str())
            .expect("references are checked when the model is loaded");
        Resolved {
            member,
            shape_name,
            shape,
        }
    }

    /// The model compiled for encoding (built on first use).
    pub(crate) fn plan(&self) -> &Plan {
        self.plan.get_or_init(|| Plan::new(self))
    }

    /// The protocols this model lists that this crate speaks, preferred first.
    pub fn protocols(&self) -> &[Protocol] {
        &self.protocols
    }

    /// Whether the model lists `p`.
    pub fn speaks(&self, p: Protocol) -> bool {
        self.protocols.contains(&p)
    }

    /// The SigV4 service name: `signingName`, else `endpointPrefix`.
    pub fn signing_name(&self) -> &str {
        self.metadata
            .signing_name
            .as_deref()
            .unwrap_or(&self.metadata.endpoint_prefix)
    }

    /// Whether the service keeps its awsQuery error codes on JSON and CBOR.
    pub fn query_compatible(&self) -> bool {
        self.metadata.aws_query_compatible.is_some()
    }

    /// The exception shape whose code is `code` (its `error.code`, else its name).
    pub fn error_shape(&self, code: &str) -> Option<(&str, &Shape)> {
        self.shapes
            .iter()
            .filter(|(_, s)| s.exception)
            .find(|(name, s)| {
                s.error
                    .as_ref()
                    .and_then(|e| e.code.as_deref())
                    .unwrap_or(name)
                    == code
            })
            .map(|(n, s)| (n.as_str(), s))
    }
}
