//! The query protocols' requests: `ec2` and awsQuery (`query`).

pub mod decode;
pub mod form;
pub mod names;

pub use form::{Form, FormError, Node};
pub use names::Flavor;
