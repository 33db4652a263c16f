//! How a command's error tells the API what to answer.

/// An error of a command: a refusal the caller can act on, with its AWS error code, or a
/// failure of ours (`code` is `None`), which the API answers as an internal error.
pub trait Refusal: std::error::Error {
    /// The AWS error code (`InvalidGroup.NotFound`), or `None` for a failure of the agent.
    fn code(&self) -> Option<&'static str>;
}
