//! Answers as axum responses: `wire`'s responses, and EC2's error document for what fails
//! before a request reaches the front.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::errors::ApiError;

/// EC2's error document for `e`, with its HTTP status: for what fails before a request
/// reaches the front.
pub(crate) fn error_response(e: &ApiError, request_id: &str) -> Response {
    let error = wire::ServiceError::new(e.code.clone(), e.message.clone()).with_status(e.status);
    to_response(wire::encode::ec2_error(&error, request_id))
}

pub(crate) fn to_response(r: wire::HttpResponse) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, r.body).into_response();
    for (k, v) in r.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            response.headers_mut().append(k, v);
        }
    }
    response
}
