//! What the encoders refuse: an output that does not fit its model.

use crate::model::Shape;
use crate::validate;

/// An output Value that does not fit the model: a bug in the service that built it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A value of the wrong type.
    #[error("output {path} must be {expected}")]
    Mismatch {
        /// Where (member names).
        path: String,
        /// The model's type.
        expected: &'static str,
    },
    /// A member the shape does not have.
    #[error("output member {0} is not in the model")]
    Unknown(String),
    /// Nesting beyond the encoders' bound.
    #[error("output {0} nests too deeply")]
    TooDeep(String),
    /// The operation is not in the model.
    #[error("operation {0} is not in the model")]
    NoOperation(String),
    /// The typed output's own `Serialize` failed.
    #[error("the output does not serialize: {0}")]
    Serialize(String),
}

impl EncodeError {
    pub(crate) fn mismatch(path: &str, shape: &Shape) -> Self {
        Self::Mismatch {
            path: path.to_string(),
            expected: validate::type_name(shape.kind),
        }
    }

    pub(crate) fn unknown(path: &str) -> Self {
        Self::Unknown(path.to_string())
    }

    pub(crate) fn too_deep(path: &str) -> Self {
        Self::TooDeep(path.to_string())
    }
}
