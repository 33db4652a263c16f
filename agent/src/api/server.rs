//! The HTTP front: body limits, form parsing, SigV4 authentication, dispatch, and EC2's
//! response and error documents.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};

use super::errors::ApiError;
use super::panics::{RequestId, contained, new_request_id};
use super::query::{Params, parse_pairs};
use super::sigv4::{self, SignedParts};
use super::xml::error_document;
use super::{ACTIONS, ApiState, Call, VERSION, dispatch};

/// The largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;
/// Oversized bodies up to this size are read and dropped before the error is sent.
const DRAIN_LIMIT: usize = 16 << 20;
/// How long a client may take to send its body.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The router: every path and method goes to the Query API handler, each request a unit
/// that fails alone (a panic is answered with `InternalError`).
pub fn router(state: Arc<ApiState>) -> Router {
    contained(Router::new().fallback(handle).with_state(state))
}

/// Serves the API on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<ApiState>) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

/// EC2's error document for `e`, with its HTTP status.
pub(super) fn error_response(e: &ApiError, request_id: &str) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        [(header::CONTENT_TYPE, "text/xml;charset=UTF-8")],
        error_document(&e.code, &e.message, request_id),
    )
        .into_response()
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
    match process(&st, &method, &uri, &headers, body, &request_id).await {
        Ok(xml) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/xml;charset=UTF-8")],
            xml,
        )
            .into_response(),
        Err(e) => {
            tracing::debug!(code = %e.code, message = %e.message, "request refused");
            error_response(&e, &request_id)
        }
    }
}

async fn process(
    st: &Arc<ApiState>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    request_id: &str,
) -> Result<String, ApiError> {
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
    let body = tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY))
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
        .map_err(|_| too_large())?;
    let malformed = |what: &str, e: &dyn std::error::Error| {
        ApiError::new(
            "MalformedQueryString",
            format!("The {what} is not a valid form: {e}"),
        )
    };
    let query =
        parse_pairs(uri.query().unwrap_or("")).map_err(|e| malformed("query string", &e))?;
    authenticate(st, method, uri, headers, &query, &body)?;
    let body_text = std::str::from_utf8(&body).map_err(|e| malformed("request body", &e))?;
    let mut pairs = parse_pairs(body_text).map_err(|e| malformed("request body", &e))?;
    pairs.extend(query.into_iter().filter(|(k, _)| !k.starts_with("X-Amz-")));
    let params = Params::from_pairs(pairs).map_err(|e| malformed("request", &e))?;
    let action = params.required("Action")?.to_string();
    if let Some(v) = params.get("Version")
        && v != VERSION
    {
        return Err(ApiError::new(
            "InvalidParameterValue",
            format!("Version '{v}' is not supported: the allowed value is {VERSION}"),
        ));
    }
    if ACTIONS.contains(&action.as_str()) && params.bool("DryRun")? {
        return Err(ApiError::new(
            "DryRunOperation",
            "Request would have succeeded, but DryRun flag is set.",
        )
        .with_status(412));
    }
    let call = Call {
        st,
        p: &params,
        request_id,
    };
    let started = std::time::Instant::now();
    let result = dispatch(&action, &call).await;
    tracing::debug!(%action, ok = result.is_ok(), elapsed_us = started.elapsed().as_micros() as u64, "request");
    result
}

fn auth_failure(message: &str) -> ApiError {
    ApiError::new("AuthFailure", message).with_status(401)
}

/// Checks the request's SigV4 signature against the agent's credentials.
fn authenticate(
    st: &ApiState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    query: &[(String, String)],
    body: &[u8],
) -> Result<(), ApiError> {
    let Some(auth) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            "MissingAuthenticationToken",
            "The request must be signed with AWS Signature Version 4 (no Authorization header).",
        )
        .with_status(401));
    };
    let auth = auth
        .to_str()
        .ok()
        .and_then(sigv4::parse_auth_header)
        .ok_or_else(|| {
            auth_failure("The Authorization header is not a valid AWS4-HMAC-SHA256 header.")
        })?;
    if auth.access_key != st.credentials.access_key {
        return Err(auth_failure(
            "AWS was not able to validate the provided access credentials",
        ));
    }
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| auth_failure("The request has no X-Amz-Date header."))?;
    let when = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| auth_failure("X-Amz-Date is not in the form YYYYMMDDTHHMMSSZ."))?
        .and_utc();
    if (chrono::Utc::now() - when).num_seconds().abs() > sigv4::MAX_SKEW_SECS {
        return Err(ApiError::new(
            "RequestExpired",
            format!(
                "Request has expired: X-Amz-Date {amz_date} is more than 15 minutes from the server's time."
            ),
        ));
    }
    let service = auth.scope.split('/').nth(2).unwrap_or("");
    if service != "ec2" {
        return Err(ApiError::new(
            "UnauthorizedOperation",
            format!(
                "You are not authorized to perform this operation: the credentials are scoped \
                 to service '{service}', not ec2."
            ),
        )
        .with_status(403));
    }
    let scope_date_matches = amz_date
        .get(..8)
        .is_some_and(|day| auth.scope.starts_with(day));
    if !scope_date_matches || !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(auth_failure(
            "The credential scope's date must match X-Amz-Date and the host header must be signed.",
        ));
    }
    let body_hash = sigv4::sha256_hex(body);
    let payload_hash = match headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        Some(h) if h != body_hash && h != "UNSIGNED-PAYLOAD" => {
            return Err(ApiError::new(
                "XAmzContentSHA256Mismatch",
                "The x-amz-content-sha256 header does not match the body.",
            ));
        }
        Some(h) => h.to_string(),
        None => body_hash,
    };
    let mut signed = Vec::new();
    for name in &auth.signed_headers {
        let values: Vec<&str> = headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return Err(auth_failure(&format!(
                "The signed header '{name}' is missing."
            )));
        }
        signed.push((name.clone(), values.join(",")));
    }
    let parts = SignedParts {
        method: method.as_str(),
        path: uri.path(),
        query: query.to_vec(),
        headers: signed,
        payload_hash,
    };
    let expected = sigv4::signature(
        &st.credentials.secret_key,
        amz_date,
        &auth.scope,
        &sigv4::canonical_request(&parts),
    );
    if !sigv4::constant_time_eq(&expected, &auth.signature) {
        return Err(ApiError::new(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method.",
        )
        .with_status(403));
    }
    Ok(())
}
