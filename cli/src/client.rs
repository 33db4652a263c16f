//! The CLI's API client: SigV4-signed form POSTs, EC2 error documents turned into errors.

use std::time::Duration;

use wire::credentials::Credentials;

/// The EC2 API version requests are made in.
pub const EC2_API_VERSION: &str = "2016-11-15";
/// The region the agent serves, which requests are signed for.
pub const REGION: &str = "local-1";

/// Errors of one API call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The agent answered with an EC2 error.
    #[error("An error occurred ({code}) when calling the {action} operation: {message}")]
    Api {
        /// The action called.
        action: String,
        /// EC2's error code.
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

    /// Calls `action` with `params`; returns the response XML.
    pub fn call(&self, action: &str, params: &[(String, String)]) -> Result<String, CallError> {
        let mut body = format!("Action={action}&Version={}", EC2_API_VERSION);
        for (k, v) in params {
            body.push('&');
            body.push_str(&wire::sigv4::uri_encode(k, false));
            body.push('=');
            body.push_str(&wire::sigv4::uri_encode(v, false));
        }
        let headers = sign_post(
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
                let doc = roxmltree::Document::parse(&text).map_err(|e| CallError::BadAnswer {
                    action: action.into(),
                    detail: e.to_string(),
                })?;
                let find = |name: &str| {
                    doc.descendants()
                        .find(|n| n.has_tag_name(name))
                        .and_then(|n| n.text())
                        .unwrap_or("")
                        .to_string()
                };
                Err(CallError::Api {
                    action: action.into(),
                    code: find("Code"),
                    message: find("Message"),
                })
            }
            Err(e) => Err(CallError::Transport {
                endpoint: self.endpoint.clone(),
                source: Box::new(e),
            }),
        }
    }
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
    let signed = wire::sigv4::sign(&req, access_key, secret, REGION, "ec2", now);
    headers.extend(signed);
    headers
}
