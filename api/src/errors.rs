//! EC2 errors: a code, a message and an HTTP status, rendered as EC2's error document.

/// An error answered to an API caller.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status (400 for client errors, 401/403 for authentication, 500 for ours).
    pub status: u16,
    /// EC2's error code, such as `InvalidParameterValue`.
    pub code: String,
    /// A message naming the field and what is allowed.
    pub message: String,
    /// The other members of the service's exception shape for this code, by member name
    /// (CloudWatch's `dashboardValidationMessages`); usually none.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    /// A 400 error with `code`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code: code.to_string(),
            message: message.into(),
            fields: serde_json::Map::new(),
        }
    }

    /// `InvalidParameterValue` for `field`.
    pub fn invalid(field: &str, message: impl AsRef<str>) -> Self {
        Self::new(
            "InvalidParameterValue",
            format!(
                "Value for parameter {field} is invalid: {}",
                message.as_ref()
            ),
        )
    }

    /// `MissingParameter` for `field`.
    pub fn missing(field: &str) -> Self {
        Self::new(
            "MissingParameter",
            format!("The request must contain the parameter {field}"),
        )
    }

    /// An internal error; the cause is logged, not shown.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %host::error_chain(cause), "internal error");
        Self::internal_error()
    }

    /// EC2's `InternalError` (HTTP 500), for a cause that was logged already.
    pub fn internal_error() -> Self {
        Self {
            status: 500,
            code: "InternalError".into(),
            message: "An internal error has occurred".into(),
            fields: serde_json::Map::new(),
        }
    }

    /// The answer to a control-plane command's error: its AWS code and message, or an
    /// internal error (logged with its causes) when it is a failure of the agent's.
    pub fn refused<E: control::Refusal>(e: &E) -> Self {
        match e.code() {
            Some(code) => Self::new(code, e.to_string()),
            None => Self::internal(e),
        }
    }

    /// With member `name` of the exception shape set to `value`.
    pub fn with_field(mut self, name: &str, value: serde_json::Value) -> Self {
        self.fields.insert(name.to_string(), value);
        self
    }

    /// With another HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        Self::internal(&e)
    }
}
