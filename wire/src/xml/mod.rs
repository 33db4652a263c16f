//! XML responses for `ec2` and awsQuery.

pub mod encode;
pub mod text;
pub mod writer;

pub use writer::{Writer, escape_into, xml_char};
