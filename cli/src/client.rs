//! The CLI's API client: SigV4-signed form POSTs to any of the agent's query-protocol
//! services (EC2, CloudWatch, SNS), their error documents turned into errors.

use std::time::Duration;

use wire::credentials::Credentials;

/// The EC2 API version requests are made in.
pub const EC2_API_VERSION: &str = "2016-11-15";
/// The region the agent serves, which requests are signed for.
pub const REGION: &str = "local-1";

/// A service spoken to with form POSTs (EC2's protocol or awsQuery): the name requests are
/// signed for and the API version they are made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// The SigV4 credential scope's service.
    pub signing_name: &'static str,
    /// The `Version` parameter.
    pub version: &'static str,
}

/// EC2.
pub const EC2: Service = Service {
    signing_name: "ec2",
    version: EC2_API_VERSION,
};
/// CloudWatch (awsQuery).
pub const CLOUDWATCH: Service = Service {
    signing_name: "monitoring",
    version: "2010-08-01",
};
/// SNS (awsQuery).
pub const SNS: Service = Service {
    signing_name: "sns",
    version: "2010-03-31",
};

/// Auto Scaling (awsQuery).
pub const AUTOSCALING: Service = Service {
    signing_name: "autoscaling",
    version: "2011-01-01",
};
/// Elastic Load Balancing v2 (awsQuery).
pub const ELBV2: Service = Service {
    signing_name: "elasticloadbalancing",
    version: "2015-12-01",
};

/// Errors of one API call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The agent answered with the service's error (EC2's `Response/Errors/Error` or
    /// awsQuery's `ErrorResponse/Error`).
    #[error("An error occurred ({code}) when calling the {action} operation: {message}")]
    Api {
        /// The action called.
        action: String,
        /// The service's error code.
        code: String,
        /// The message.
        message: String,
    },
    /// The agent could not be reached.
    #[error("cannot reach the agent at {endpoint}")]
    Transport {
        /// The endpoint.
        endpoint: String,
        /// The cause.
        #[source]
        source: Box<ureq::Error>,
    },
    /// The answer was not XML.
    #[error("the agent's answer to {action} is not XML: {detail}")]
    BadAnswer {
        /// The action called.
        action: String,
        /// What was wrong.
        detail: String,
    },
}

/// A client for one endpoint and set of credentials.
#[derive(Debug)]
pub struct Client {
    endpoint: String,
    host: String,
    path: String,
    creds: Credentials,
    agent: ureq::Agent,
}

impl Client {
    /// A client for `endpoint` (`http://host:port[/path]`).
    pub fn new(endpoint: &str, creds: Credentials) -> Self {
        let rest = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"))
            .unwrap_or(endpoint);
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        Self {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            host: host.to_string(),
            path: path.to_string(),
            creds,
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(60))
                .build(),
        }
    }

    /// Calls EC2's `action` with `params`; returns the response XML.
    pub fn call(&self, action: &str, params: &[(String, String)]) -> Result<String, CallError> {
        self.call_service(EC2, action, params)
    }

    /// Calls `service`'s `action` with `params` as a signed form POST; returns the response
    /// XML.
    pub fn call_service(
        &self,
        service: Service,
        action: &str,
        params: &[(String, String)],
    ) -> Result<String, CallError> {
        let mut body = format!("Action={action}&Version={}", service.version);
        for (k, v) in params {
            body.push('&');
            body.push_str(&wire::sigv4::uri_encode(k, false));
            body.push('=');
            body.push_str(&wire::sigv4::uri_encode(v, false));
        }
        let headers = sign_form_post(
            service.signing_name,
            &self.creds.access_key,
            &self.creds.secret_key,
            &self.host,
            &self.path,
            body.as_bytes(),
            chrono::Utc::now(),
        );
        let url = format!("http://{}{}", self.host, self.path);
        let mut req = self.agent.post(&url);
        for (k, v) in &headers {
            if k != "host" {
                req = req.set(k, v);
            }
        }
        match req.send_string(&body) {
            Ok(resp) => {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut resp.into_reader(), &mut text).map_err(|e| {
                    CallError::BadAnswer {
                        action: action.into(),
                        detail: e.to_string(),
                    }
                })?;
                Ok(text)
            }
            Err(ureq::Error::Status(_, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                let (code, message) = error_code(&text).map_err(|e| CallError::BadAnswer {
                    action: action.into(),
                    detail: e.to_string(),
                })?;
                Err(CallError::Api {
                    action: action.into(),
                    code,
                    message,
                })
            }
            Err(e) => Err(CallError::Transport {
                endpoint: self.endpoint.clone(),
                source: Box::new(e),
            }),
        }
    }
}

/// The code and message of an error document: the `Code` and `Message` of its `Error`
/// element, where both EC2's `Response/Errors/Error` and awsQuery's `ErrorResponse/Error`
/// keep them (else the first `Code` and `Message` anywhere).
pub fn error_code(xml: &str) -> Result<(String, String), roxmltree::Error> {
    let doc = roxmltree::Document::parse(xml)?;
    let scope = doc
        .descendants()
        .find(|n| n.has_tag_name("Error"))
        .unwrap_or_else(|| doc.root_element());
    let find = |name: &str| {
        scope
            .descendants()
            .find(|n| n.has_tag_name(name))
            .and_then(|n| n.text())
            .unwrap_or("")
            .to_string()
    };
    Ok((find("Code"), find("Message")))
}

/// The headers of a form POST to EC2 on `host` + `path`, signed at `now`: `content-type`,
/// `host`, `x-amz-date` and `authorization`.
pub fn sign_post(
    access_key: &str,
    secret: &str,
    host: &str,
    path: &str,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<(String, String)> {
    sign_form_post(EC2.signing_name, access_key, secret, host, path, body, now)
}

/// The headers of a form POST to the service signing as `service` on `host` + `path`,
/// signed at `now`.
pub fn sign_form_post(
    service: &str,
    access_key: &str,
    secret: &str,
    host: &str,
    path: &str,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<(String, String)> {
    let mut headers = vec![
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded; charset=utf-8".to_string(),
        ),
        ("host".to_string(), host.to_string()),
    ];
    let req = wire::HttpRequest {
        method: "POST",
        path,
        query: "",
        headers: &headers,
        body,
    };
    let signed = wire::sigv4::sign(&req, access_key, secret, REGION, service, now);
    headers.extend(signed);
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_error_documents_give_their_code_and_message() {
        let ec2 = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance ID 'i-1' does not exist</Message></Error></Errors><RequestID>r</RequestID></Response>"#;
        let query = r#"<ErrorResponse xmlns="https://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic does not exist</Message></Error><RequestId>r</RequestId></ErrorResponse>"#;
        assert_eq!(
            error_code(ec2).unwrap(),
            (
                "InvalidInstanceID.NotFound".to_string(),
                "The instance ID 'i-1' does not exist".to_string()
            )
        );
        assert_eq!(
            error_code(query).unwrap(),
            ("NotFound".to_string(), "Topic does not exist".to_string())
        );
        assert!(error_code("not xml").is_err());
    }

    #[test]
    fn form_posts_are_signed_for_their_service() {
        let now = chrono::Utc::now();
        let auth = |service: &str| {
            sign_form_post(service, "AK", "SK", "h:1", "/", b"Action=X", now)
                .into_iter()
                .find(|(k, _)| k == "authorization")
                .map(|(_, v)| v)
                .unwrap()
        };
        assert!(auth("monitoring").contains("/local-1/monitoring/aws4_request"));
        assert!(auth("sns").contains("/local-1/sns/aws4_request"));
        let ec2 = sign_post("AK", "SK", "h:1", "/", b"Action=X", now);
        assert!(
            ec2.iter()
                .any(|(k, v)| k == "authorization" && v == &auth("ec2"))
        );
    }
}
