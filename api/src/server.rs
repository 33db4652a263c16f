//! The HTTP server: methods, body limits and timeouts; everything else is the front's
//! (`front.rs`), which answers in the request's protocol.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::Response;
use axum::{Extension, Router};

use super::ApiState;
use super::errors::ApiError;
use super::front;
use super::http::{error_response, to_response};
use super::panics::{RequestId, contained, new_request_id};

/// The largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;
/// Oversized bodies up to this size are read and dropped before the error is sent.
const DRAIN_LIMIT: usize = 16 << 20;
/// How long a client may take to send its body.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The router: every path and method goes to the front, each request a unit that fails
/// alone (a panic is answered with `InternalError`).
pub fn router(state: Arc<ApiState>) -> Router {
    contained(Router::new().fallback(handle).with_state(state))
}

/// Serves the API on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<ApiState>) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

async fn handle(
    State(st): State<Arc<ApiState>>,
    request_id: Option<Extension<RequestId>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = match request_id {
        Some(Extension(RequestId(id))) => id,
        None => new_request_id(),
    };
    let body = match read_body(&method, &headers, body).await {
        Ok(b) => b,
        Err(e) => {
            tracing::debug!(code = %e.code, message = %e.message, "request refused");
            return error_response(&e, &request_id);
        }
    };
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let req = wire::HttpRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &headers,
        body: &body,
    };
    to_response(front::answer(&st, &req, &request_id).await)
}

/// The body of a POST or GET, within [`MAX_BODY`] and [`BODY_TIMEOUT`].
async fn read_body(
    method: &Method,
    headers: &HeaderMap,
    body: Body,
) -> Result<axum::body::Bytes, ApiError> {
    if method != Method::POST && method != Method::GET {
        return Err(ApiError::new(
            "InvalidParameterValue",
            format!("HTTP method {method} is not supported: use POST or GET"),
        )
        .with_status(405));
    }
    let too_large = || {
        ApiError::new(
            "RequestEntityTooLarge",
            format!("The request body is larger than the limit of {MAX_BODY} bytes"),
        )
        .with_status(413)
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        // Read (and drop) a moderately oversized body so that the client, which is still
        // sending it, gets the answer rather than a broken connection.
        if declared.is_some_and(|n| n <= DRAIN_LIMIT) {
            let _ =
                tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, DRAIN_LIMIT)).await;
        }
        return Err(too_large());
    }
    tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY))
        .await
        .map_err(|_| {
            ApiError::new(
                "RequestTimeout",
                format!(
                    "The request body was not received within {} seconds",
                    BODY_TIMEOUT.as_secs()
                ),
            )
        })?
        .map_err(|_| too_large())
}
