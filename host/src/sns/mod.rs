//! SNS's data plane: the signing key and certificate (`signer.rs`) and the transports that
//! carry deliveries out (`transport.rs`: HTTP(S) and SMTP). What to deliver, when and how
//! often is the control plane's (`control::sns`).

pub mod signer;
pub mod transport;

pub use signer::{Signer, SignerError};
pub use transport::{HttpClient, SendError, Smtp};
