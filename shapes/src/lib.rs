//! Typed inputs and outputs of the AWS operations kec2 implements, generated from botocore's
//! service models by `scripts/gen-shapes/gen_shapes.py` (see `shapes/README.md`).
//!
//! Each service module (`ec2`, `sts`, `cloudwatch`, ...) holds:
//! - a Rust type for every structure and enum shape its operations reach, named as in the
//!   model (`ec2::RunInstancesRequest`, `ec2::Reservation`, `ec2::InstanceType`);
//! - `ops`, one marker type per operation implementing [`Operation`]
//!   (`ec2::ops::RunInstances`), and [`OperationInfo`] rows in `OPERATIONS`;
//! - `MODEL_JSON`, the trimmed botocore model those types come from, for the wire layer.
//!
//! The types are `serde_json::from_value`/`to_value` of the wire layer's `Value`: an object
//! keyed by the model's member names, absent members left out (never `null`), timestamps as
//! RFC 3339 strings in UTC, blobs as padded standard base64, enums as the model's strings.

mod blob;
pub mod ec2_xml;
mod enums;
mod services;
pub mod timestamp;

pub use blob::Blob;
pub(crate) use enums::string_enum;
pub use enums::{StringEnum, UnknownValue};
pub use services::*;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt::Debug;

/// One operation of one service, with the types of its input and output.
///
/// The conversions are not generic defaults: each operation's marker writes them out
/// (`operation!`), so that serde's code for every input and output is compiled once, in this
/// crate, rather than again in each crate that calls them (for EC2, minutes of a release build).
pub trait Operation {
    /// The botocore service name (`ec2`, `sts`, `cloudwatch`).
    const SERVICE: &'static str;
    /// The operation's name in the model (`RunInstances`).
    const NAME: &'static str;
    /// The input; [`Empty`] when the model gives the operation none.
    type Input: Serialize + DeserializeOwned + Debug + Clone + PartialEq;
    /// The output; [`Empty`] when the model gives the operation none.
    type Output: Serialize + DeserializeOwned + Debug + Clone + PartialEq;

    /// The typed input from the wire layer's decoded request.
    fn input_from_value(value: Value) -> Result<Self::Input, serde_json::Error>;
    /// The value of a typed input (for a client, or a test).
    fn input_to_value(input: &Self::Input) -> Result<Value, serde_json::Error>;
    /// The typed output from a decoded response (for a client, or a test).
    fn output_from_value(value: Value) -> Result<Self::Output, serde_json::Error>;
    /// The wire layer's value of a typed output, for it to encode.
    fn output_to_value(output: &Self::Output) -> Result<Value, serde_json::Error>;

    /// Whether [`Operation::write_ec2_xml`] writes the output: for the operations of a
    /// service that speaks EC2's protocol, whose shapes have generated writers.
    const EC2_XML: bool = false;
    /// Writes the output's members as EC2's XML (nothing unless [`Operation::EC2_XML`]).
    fn write_ec2_xml(_output: &Self::Output, _out: &mut Vec<u8>) {}
}

/// Declares an operation's marker type and its [`Operation`] impl, conversions written out;
/// `ec2_xml` at the end for an operation whose output has a generated EC2 writer.
macro_rules! operation {
    ($(#[$doc:meta])* $op:ident, $service:literal, $input:ty, $output:ty, ec2_xml) => {
        $crate::operation!(@impl $(#[$doc])* $op, $service, $input, $output,
            const EC2_XML: bool = true;
            fn write_ec2_xml(output: &$output, out: &mut Vec<u8>) {
                $crate::ec2_xml::Ec2Xml::write_content(output, out);
            }
        );
    };
    ($(#[$doc:meta])* $op:ident, $service:literal, $input:ty, $output:ty) => {
        $crate::operation!(@impl $(#[$doc])* $op, $service, $input, $output,);
    };
    (@impl $(#[$doc:meta])* $op:ident, $service:literal, $input:ty, $output:ty, $($extra:tt)*) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
        pub struct $op;

        impl $crate::Operation for $op {
            const SERVICE: &'static str = $service;
            const NAME: &'static str = stringify!($op);
            type Input = $input;
            type Output = $output;

            fn input_from_value(value: ::serde_json::Value) -> Result<$input, ::serde_json::Error> {
                ::serde_json::from_value(value)
            }
            fn input_to_value(input: &$input) -> Result<::serde_json::Value, ::serde_json::Error> {
                ::serde_json::to_value(input)
            }
            fn output_from_value(
                value: ::serde_json::Value,
            ) -> Result<$output, ::serde_json::Error> {
                ::serde_json::from_value(value)
            }
            fn output_to_value(
                output: &$output,
            ) -> Result<::serde_json::Value, ::serde_json::Error> {
                ::serde_json::to_value(output)
            }
            $($extra)*
        }
    };
}
pub(crate) use operation;

/// Something called once per operation of a service, with the operation's type
/// (`<service>::for_each_operation`): for building dispatch tables and for tests.
pub trait OperationVisitor {
    /// Called for operation `O`.
    fn visit<O: Operation>(&mut self);
}

/// An operation as the model names it and its shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationInfo {
    /// The operation's name (`RunInstances`).
    pub name: &'static str,
    /// The input shape's name in the model (`RunInstancesRequest`), if any.
    pub input: Option<&'static str>,
    /// The output shape's name in the model (`Reservation`), if any.
    pub output: Option<&'static str>,
    /// The error shapes the model lists for the operation (EC2 lists none).
    pub errors: &'static [&'static str],
}

/// A generated service.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    /// The botocore service name (`ec2`, `cloudwatch`).
    pub name: &'static str,
    /// The trimmed botocore model (`metadata`, `operations`, `shapes`).
    pub model_json: &'static str,
    /// The implemented operations.
    pub operations: &'static [OperationInfo],
}

/// The input or output of an operation the model gives none: the empty object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Empty {}

/// The service named `name`, if it is generated.
pub fn service(name: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.name == name)
}
