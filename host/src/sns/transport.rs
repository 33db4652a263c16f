//! SNS's two ways out: an HTTP(S) POST to a subscriber's URL, and a mail through the SMTP
//! relay the agent was given (`--smtp HOST:PORT`, plain SMTP: meant for a relay on the host
//! or the loopback). Both block (ureq, lettre's synchronous transport); the delivery loop
//! runs them off the async threads, each bounded by a timeout.

use std::time::Duration;

use lettre::Transport as _;
use lettre::message::header::ContentType;

/// How long connecting to an endpoint may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one attempt may take in all (SNS's own HTTP timeout is 15 seconds).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The endpoint answered with a status other than 2xx.
    #[error("the endpoint answered HTTP {0}")]
    Status(u16),
    /// The endpoint could not be reached or did not answer in time.
    #[error("the endpoint could not be reached")]
    Http(#[source] Box<ureq::Transport>),
    /// No SMTP relay is configured.
    #[error("no SMTP relay is configured (agent --smtp HOST:PORT)")]
    NoRelay,
    /// An address is not one a mail can carry.
    #[error("the address {0} is not valid")]
    Address(String, #[source] lettre::address::AddressError),
    /// The mail could not be built.
    #[error("cannot build the mail")]
    Mail(#[source] lettre::error::Error),
    /// The relay refused the mail or could not be reached.
    #[error("the SMTP relay did not take the mail")]
    Smtp(#[source] lettre::transport::smtp::Error),
}

/// A client for HTTP(S) deliveries: no redirects followed, bounded connect and overall
/// times, connections kept for reuse.
#[derive(Debug, Clone)]
pub struct HttpClient(ureq::Agent);

impl Default for HttpClient {
    fn default() -> Self {
        Self(
            ureq::AgentBuilder::new()
                .timeout_connect(CONNECT_TIMEOUT)
                .timeout(ATTEMPT_TIMEOUT)
                .redirects(0)
                .user_agent("Amazon Simple Notification Service Agent")
                .build(),
        )
    }
}

impl HttpClient {
    /// POSTs `body` to `url` with `headers`; gives the 2xx status it got.
    pub fn post(&self, url: &str, headers: &[(&str, &str)], body: &str) -> Result<u16, SendError> {
        let mut req = self.0.post(url);
        for (k, v) in headers {
            req = req.set(k, v);
        }
        match req.send_string(body) {
            Ok(resp) if (200..300).contains(&resp.status()) => Ok(resp.status()),
            Ok(resp) => Err(SendError::Status(resp.status())),
            Err(ureq::Error::Status(code, _)) => Err(SendError::Status(code)),
            Err(ureq::Error::Transport(t)) => Err(SendError::Http(Box::new(t))),
        }
    }
}

/// The SMTP relay mails go through.
#[derive(Debug, Clone)]
pub struct Smtp {
    /// `HOST:PORT` of the relay.
    pub relay: Option<(String, u16)>,
    /// The sender (`Name <address>` or an address).
    pub from: String,
}

impl Smtp {
    /// Sends one plain-text mail to `to`.
    pub fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), SendError> {
        let (host, port) = self.relay.as_ref().ok_or(SendError::NoRelay)?;
        let from = self
            .from
            .parse()
            .map_err(|e| SendError::Address(self.from.clone(), e))?;
        let rcpt = to
            .parse()
            .map_err(|e| SendError::Address(to.to_string(), e))?;
        let mail = lettre::Message::builder()
            .from(from)
            .to(rcpt)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string())
            .map_err(SendError::Mail)?;
        let transport = lettre::SmtpTransport::builder_dangerous(host.as_str())
            .port(*port)
            .timeout(Some(ATTEMPT_TIMEOUT))
            .build();
        transport.send(&mail).map(|_| ()).map_err(SendError::Smtp)
    }
}
