//! One endpoint for every service: a request's SigV4 signature is verified, the request is
//! routed to its service, protocol and operation by the `wire` layer (the credential scope's
//! service for a form, `X-Amz-Target` for awsJson, `smithy-protocol` for RPC v2 CBOR), its
//! input decoded and checked against botocore's model, and then answered by that service's
//! dispatcher. Every answer and every error is written by `wire` in the request's protocol.

use std::sync::Arc;

use wire::sigv4::{CredentialStore, SigV4Error};
use wire::{HttpRequest, HttpResponse, Limits, Protocol, Registry, RouteErrorKind, ServiceError};

use super::errors::ApiError;
use super::models::registry;
use super::operation::not_served;
use super::query::{check_pairs, parse_pairs};
use super::{ApiState, Call};

/// The one key pair the agent serves.
struct AgentCredentials<'a>(&'a wire::credentials::Credentials);

impl CredentialStore for AgentCredentials<'_> {
    fn secret(&self, access_key: &str) -> Option<String> {
        (access_key == self.0.access_key).then(|| self.0.secret_key.clone())
    }
}

/// Answers one request (its body within the size limit, as sent).
pub async fn answer(st: &Arc<ApiState>, req: &HttpRequest<'_>, request_id: &str) -> HttpResponse {
    let registry = registry();
    let limits = Limits::default();
    if req.method == "GET" && req.path == control::sns::CERT_PATH {
        return sns_certificate(st);
    }
    if let Some(service) = scope_service(req)
        && registry.by_signing_name(service).is_none()
        && protocol_guess(registry, req, None).1 == Protocol::Ec2
    {
        return unauthorized_scope(service, request_id);
    }
    // A SubscribeURL, followed by a subscriber that holds no credentials: as on AWS,
    // ConfirmSubscription (and no other action) is answered unsigned, since the token it
    // carries, sent only to the endpoint, is the proof. It is routed to SNS as if signed
    // for it.
    let verified = if unsigned_confirmation(req) {
        None
    } else {
        Some(wire::sigv4::verify(
            req,
            &AgentCredentials(&st.credentials),
            now(),
        ))
    };
    let verified = match verified {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            let (model, protocol) = protocol_guess(registry, req, scope_service(req));
            let error = match protocol {
                Protocol::Ec2 => ec2_auth_error(&e),
                _ => ServiceError::new(e.code(), auth_message(&e)).with_status(e.status()),
            };
            return wire::encode_error(model, protocol, &error, request_id);
        }
    };
    let scope = verified
        .as_ref()
        .map_or("sns", |v| v.scope.service.as_str());
    let body = match wire::request::decoded_body(req, &limits) {
        Ok(b) => b,
        Err(e) => {
            let (model, protocol) = protocol_guess(registry, req, Some(scope));
            let error = wire::errors::body(protocol, &e);
            return wire::encode_error(model, protocol, &error, request_id);
        }
    };
    let req = HttpRequest {
        body: &body,
        ..*req
    };
    let routed = match registry.route(&req, Some(scope), &limits) {
        Ok(r) => r,
        Err(e) => return route_error(&e, scope, request_id),
    };
    // Unsigned, only ConfirmSubscription is answered, whatever else routing saw.
    if verified.is_none() && routed.operation != "ConfirmSubscription" {
        return routed.error(
            &ServiceError::new(
                "MissingAuthenticationToken",
                "Request is missing Authentication Token",
            )
            .with_status(403),
            request_id,
        );
    }
    // EC2's form rules beyond the model's: strict escapes, no duplicates, only characters
    // XML can carry.
    if routed.protocol == Protocol::Ec2
        && let Err(e) = check_ec2_form(&req)
    {
        return routed.error(&e.into(), request_id);
    }
    let input = match routed.decode(&req, &limits) {
        Ok(v) => v,
        Err(e) => {
            let error = ec2_own_code(&routed, &e).unwrap_or_else(|| routed.decode_error(&e));
            return routed.error(&error, request_id);
        }
    };
    let call = Call { st, request_id };
    let started = std::time::Instant::now();
    let result = match routed.service.signing_name() {
        "ec2" => super::dispatch_ec2(&routed.operation, &call, input).await,
        "sts" => super::sts::dispatch(&routed.operation, &call, input),
        "monitoring" => super::cloudwatch::dispatch(&routed.operation, &call, input),
        "sns" => {
            tokio::task::block_in_place(|| super::sns::dispatch(&routed.operation, &call, input))
        }
        "autoscaling" => tokio::task::block_in_place(|| {
            super::autoscaling::dispatch(&routed.operation, &call, input)
        }),
        "elasticloadbalancing" => {
            tokio::task::block_in_place(|| super::elbv2::dispatch(&routed.operation, &call, input))
        }
        _ => Err(not_served(&routed.operation)),
    };
    tracing::debug!(
        operation = %routed.operation,
        service = routed.service.signing_name(),
        ok = result.is_ok(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "request"
    );
    match result {
        Ok(output) => output.encode(&routed, request_id).unwrap_or_else(|e| {
            tracing::error!(operation = %routed.operation, error = %e, "output does not fit the model");
            routed.error(&ApiError::internal_error().into(), request_id)
        }),
        Err(e) => {
            tracing::debug!(code = %e.code, message = %e.message, "request refused");
            routed.error(&e.into(), request_id)
        }
    }
}

/// Whether `req` is an unsigned GET of SNS's ConfirmSubscription (a SubscribeURL): no
/// `Authorization` header, no presigned query, and `Action=ConfirmSubscription`.
fn unsigned_confirmation(req: &HttpRequest<'_>) -> bool {
    if req.method != "GET" || !req.body.is_empty() || req.header("authorization").is_some() {
        return false;
    }
    let Ok(pairs) = parse_pairs(req.query) else {
        return false;
    };
    let presigned = pairs.iter().any(|(k, _)| k.starts_with("X-Amz-"));
    let actions: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "Action")
        .map(|(_, v)| v.as_str())
        .collect();
    !presigned && actions == ["ConfirmSubscription"]
}

/// SNS's signing certificate (PEM), which subscribers fetch from a message's
/// `SigningCertURL` without credentials.
fn sns_certificate(st: &ApiState) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![(
            "Content-Type".to_string(),
            "application/x-pem-file".to_string(),
        )],
        body: st.sns_certificate.as_bytes().to_vec(),
    }
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// Checks the form (query string and body) of an EC2 request by EC2's strict rules.
fn check_ec2_form(req: &HttpRequest<'_>) -> Result<(), ApiError> {
    let malformed = |what: &str, e: &dyn std::error::Error| {
        ApiError::new(
            "MalformedQueryString",
            format!("The {what} is not a valid form: {e}"),
        )
    };
    let query = parse_pairs(req.query).map_err(|e| malformed("query string", &e))?;
    let body = std::str::from_utf8(req.body).map_err(|e| malformed("request body", &e))?;
    let mut pairs = parse_pairs(body).map_err(|e| malformed("request body", &e))?;
    pairs.extend(query.into_iter().filter(|(k, _)| !k.starts_with("X-Amz-")));
    check_pairs(&pairs).map_err(|e| malformed("request", &e))
}

/// The few model failures EC2 answers with a code of their own rather than
/// `InvalidParameterValue`: an unknown instance type given to `DescribeInstanceTypes`.
fn ec2_own_code(routed: &wire::Routed<'_>, e: &wire::DecodeError) -> Option<ServiceError> {
    let wire::DecodeError::Invalid(v) = e else {
        return None;
    };
    match (&v.kind, routed.operation.as_str()) {
        (wire::ValidationKind::NotInEnum { value, .. }, "DescribeInstanceTypes")
            if v.path.starts_with("InstanceType") =>
        {
            Some(ServiceError::new(
                "InvalidInstanceType",
                format!("The following supplied instance types do not exist: [{value}]"),
            ))
        }
        _ => None,
    }
}

/// The service named by the credential scope of an `Authorization` header or presigned
/// query, read without verifying it: only to pick the protocol of an authentication error.
fn scope_service<'r>(req: &HttpRequest<'r>) -> Option<&'r str> {
    let header = req
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"));
    if let Some((_, h)) = header {
        let credential = h.split("Credential=").nth(1)?.split([',', ' ']).next()?;
        return credential.split('/').nth(3);
    }
    let credential = req
        .query
        .split('&')
        .find_map(|p| p.strip_prefix("X-Amz-Credential="))?;
    if credential.contains('/') {
        credential.split('/').nth(3)
    } else {
        credential.split("%2F").nth(3)
    }
}

/// The model and protocol to answer an error in, before the request is routed: RPC v2 CBOR
/// or awsJson by their markers, else the query protocol of the scope's service (EC2's when
/// it is unknown, since EC2 is the endpoint's first service).
fn protocol_guess<'r>(
    registry: &'r Registry,
    req: &HttpRequest<'_>,
    scope: Option<&str>,
) -> (Option<&'r wire::ServiceModel>, Protocol) {
    let model = scope.and_then(|s| registry.by_signing_name(s));
    if req.header("smithy-protocol").is_some() || req.path.starts_with("/service/") {
        return (None, Protocol::RpcV2Cbor);
    }
    if req.header("x-amz-target").is_some() {
        return (None, Protocol::Json);
    }
    match model {
        Some(m) if !m.speaks(Protocol::Ec2) => (Some(m), Protocol::Query),
        _ => (registry.by_signing_name("ec2"), Protocol::Ec2),
    }
}

/// EC2's authentication errors, as the agent has always answered them.
fn ec2_auth_error(e: &SigV4Error) -> ServiceError {
    let (code, status) = match e {
        SigV4Error::Missing => ("MissingAuthenticationToken", 401),
        SigV4Error::UnknownKey | SigV4Error::Malformed(_) | SigV4Error::MissingHeader(_) => {
            ("AuthFailure", 401)
        }
        SigV4Error::Skewed(_) | SigV4Error::Expired => ("RequestExpired", 400),
        SigV4Error::ContentMismatch => ("XAmzContentSHA256Mismatch", 400),
        SigV4Error::Mismatch => ("SignatureDoesNotMatch", 403),
    };
    ServiceError::new(code, auth_message(e)).with_status(status)
}

fn auth_message(e: &SigV4Error) -> String {
    match e {
        SigV4Error::UnknownKey => {
            "AWS was not able to validate the provided access credentials".into()
        }
        SigV4Error::Mismatch => "The request signature we calculated does not match the signature \
             you provided. Check your AWS Secret Access Key and signing method."
            .into(),
        other => {
            let mut m = other.to_string();
            if let Some(first) = m.get_mut(..1) {
                first.make_ascii_uppercase();
            }
            m + "."
        }
    }
}

/// The answer to a request no service takes: a form signed for a service the endpoint does
/// not serve is refused as EC2 always has (`UnauthorizedOperation`); anything else in the
/// protocol and with the code the `wire` layer gives.
fn route_error(e: &wire::RouteError<'_>, scope: &str, request_id: &str) -> HttpResponse {
    if let RouteErrorKind::UnknownService(_) = e.kind
        && e.protocol.is_query_family()
    {
        return unauthorized_scope(scope, request_id);
    }
    e.response(request_id)
}

fn unauthorized_scope(scope: &str, request_id: &str) -> HttpResponse {
    let error = ServiceError::new(
        "UnauthorizedOperation",
        format!(
            "You are not authorized to perform this operation: the credentials are scoped to \
             service '{}', which this endpoint does not serve.",
            scope.chars().take(64).collect::<String>()
        ),
    )
    .with_status(403);
    wire::encode::ec2_error(&error, request_id)
}

impl From<ApiError> for ServiceError {
    fn from(e: ApiError) -> Self {
        let mut error = ServiceError::new(e.code, e.message).with_status(e.status);
        error.fields = e.fields;
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generated_model_loads_into_the_registry() {
        let r = registry();
        for (service, signing) in [
            ("ec2", "ec2"),
            ("sts", "sts"),
            ("cloudwatch", "monitoring"),
            ("sns", "sns"),
            ("elbv2", "elasticloadbalancing"),
        ] {
            assert!(shapes::service(service).is_some(), "{service}");
            assert!(r.by_signing_name(signing).is_some(), "{signing}");
        }
    }

    #[test]
    fn only_an_unsigned_get_of_confirm_subscription_goes_without_a_signature() {
        let get = |query: &'static str| HttpRequest {
            method: "GET",
            path: "/",
            query,
            headers: &[],
            body: b"",
        };
        let url = "Action=ConfirmSubscription&TopicArn=arn%3Aaws%3Asns%3Alocal-1%3A1%3At&Token=ab";
        assert!(unsigned_confirmation(&get(url)));
        for other in [
            "Action=Publish&TopicArn=x&Message=m",
            "Action=ConfirmSubscription&Action=Publish",
            "Action=ConfirmSubscription&X-Amz-Credential=AKID",
            "",
        ] {
            assert!(!unsigned_confirmation(&get(other)), "{other}");
        }
        let post = HttpRequest {
            method: "POST",
            ..get(url)
        };
        assert!(!unsigned_confirmation(&post));
        let with_body = HttpRequest {
            body: b"Action=Publish",
            ..get(url)
        };
        assert!(!unsigned_confirmation(&with_body));
        let headers = vec![(
            "Authorization".to_string(),
            "AWS4-HMAC-SHA256 x".to_string(),
        )];
        let signed = HttpRequest {
            headers: &headers,
            ..get(url)
        };
        assert!(!unsigned_confirmation(&signed));
    }

    #[test]
    fn the_scope_service_is_read_from_a_header_or_a_presigned_query() {
        let headers = vec![(
            "Authorization".to_string(),
            "AWS4-HMAC-SHA256 Credential=AKID/20261207/local-1/monitoring/aws4_request, \
             SignedHeaders=host, Signature=00"
                .to_string(),
        )];
        let req = HttpRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        assert_eq!(scope_service(&req), Some("monitoring"));
        let req = HttpRequest {
            headers: &[],
            query: "X-Amz-Credential=AKID%2F20261207%2Flocal-1%2Fsts%2Faws4_request&X-Amz-Date=1",
            ..req
        };
        assert_eq!(scope_service(&req), Some("sts"));
        let req = HttpRequest { query: "", ..req };
        assert_eq!(scope_service(&req), None);
    }
}
