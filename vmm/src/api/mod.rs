//! The control socket: JSON lines over a Unix socket (see `vmm/README.md`).

mod protocol;
mod server;
mod writes;
mod written;

pub use protocol::{ApiHandler, Request, Response, Status};
pub use server::{ApiError, ApiListener, ApiServer};
pub use written::WrittenBlocks;
