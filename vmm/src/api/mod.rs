//! The control socket: JSON lines over a Unix socket (see `vmm/README.md`).

mod protocol;
mod server;
mod writes;

pub use protocol::{ApiHandler, Request, Response, Status};
pub use server::{ApiError, ApiListener, ApiServer};
pub use writes::WrittenBlocks;
