//! The CLI's errors.

use super::client::CallError;
use wire::credentials::CredentialsError;

/// Errors of a CLI command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The API call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// No credentials.
    #[error("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --state-dir")]
    Credentials(#[source] CredentialsError),
    /// Bad command-line input.
    #[error("{0}")]
    Input(String),
    /// A file could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A wait ran out of time.
    #[error("waiter {0} timed out")]
    Timeout(String),
    /// The answer could not be read.
    #[error("the agent's answer could not be parsed: {0}")]
    Parse(String),
}
