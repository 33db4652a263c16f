//! The errors a service answers: a code, a message, a status, who is at fault, and for
//! modeled exceptions their other members.

use serde_json::Value;

use crate::model::ServiceModel;

/// Who is at fault for an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The caller (HTTP 4xx).
    Sender,
    /// The service (HTTP 5xx).
    Receiver,
}

impl Fault {
    /// `Sender` or `Receiver`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sender => "Sender",
            Self::Receiver => "Receiver",
        }
    }
}

/// An error to answer: a code, a message, a status, and for modeled exceptions the
/// exception's other members (a contract Value object).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceError {
    /// The error code (`InvalidParameterValue`).
    pub code: String,
    /// The message.
    pub message: String,
    /// The HTTP status.
    pub status: u16,
    /// Who is at fault.
    pub fault: Fault,
    /// Other members of the exception shape, by member name.
    pub fields: serde_json::Map<String, Value>,
}

impl ServiceError {
    /// A caller's error (HTTP 400).
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            status: 400,
            fault: Fault::Sender,
            fields: serde_json::Map::new(),
        }
    }

    /// With another status (5xx also makes the service the one at fault).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        if status >= 500 {
            self.fault = Fault::Receiver;
        }
        self
    }

    /// The exception `shape_name` of `model`, with its code, status and fault.
    pub fn modeled(
        model: &ServiceModel,
        shape_name: &str,
        message: impl Into<String>,
    ) -> Option<Self> {
        let shape = model.shape(shape_name).filter(|s| s.exception)?;
        let e = shape.error.clone().unwrap_or_default();
        let status = e
            .http_status_code
            .unwrap_or(if e.sender_fault { 400 } else { 500 });
        Some(Self {
            code: e.code.unwrap_or_else(|| shape_name.to_string()),
            message: message.into(),
            status,
            fault: if e.sender_fault || status < 500 {
                Fault::Sender
            } else {
                Fault::Receiver
            },
            fields: serde_json::Map::new(),
        })
    }
}
