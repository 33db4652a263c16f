//! An operation's typed input and output, between the front and the handlers of every
//! service: the input from the model-checked Value, the output kept typed for `wire`'s
//! encoder.

use serde_json::Value;
use shapes::ec2_xml::Ec2Xml;
use wire::HttpResponse;

use super::Reply;
use super::errors::ApiError;

/// An operation the model has but no handler serves yet.
pub fn not_served(operation: &str) -> ApiError {
    ApiError::new(
        "InvalidAction",
        format!("The action {operation} is not valid for this web service."),
    )
}

/// The typed input of operation `O` from the model-checked Value.
pub fn input<O: shapes::Operation>(value: Value) -> Result<O::Input, ApiError> {
    O::input_from_value(value).map_err(|e| {
        ApiError::new(
            "InvalidParameterValue",
            format!("The input of {} is invalid: {e}", O::NAME),
        )
    })
}

/// Operation `O`'s typed output, for `wire` to encode.
pub fn output<O: shapes::Operation + 'static>(output: O::Output) -> Result<Reply, ApiError>
where
    O::Output: Send,
{
    Ok(Box::new(Typed::<O>(output)))
}

/// An output that serializes exactly as its operation's typed output does but builds its
/// parts as they are written (an answer too large to build whole first, such as
/// [`super::instances::InstancesPage`]). In EC2's protocol it writes itself, as the
/// generated writers do; in the others the typed encoder checks it against the model.
pub fn output_streamed<T: serde::Serialize + Ec2Xml + Send + 'static>(
    output: T,
) -> Result<Reply, ApiError> {
    Ok(Box::new(Streamed(output)))
}

/// A handler's typed output, which `wire` encodes in the request's protocol.
pub trait Output: Send {
    /// The response.
    fn encode(
        &self,
        routed: &wire::Routed<'_>,
        request_id: &str,
    ) -> Result<HttpResponse, wire::EncodeError>;
}

/// Operation `O`'s output. (Encoding it compiles its serde code here, for `wire`'s typed
/// encoder: a type-erased `Serialize` would compile it once in `shapes` but cost a
/// virtual call and a state move per value.)
struct Typed<O: shapes::Operation>(O::Output);

impl<O: shapes::Operation> Output for Typed<O>
where
    O::Output: Send,
{
    fn encode(
        &self,
        routed: &wire::Routed<'_>,
        request_id: &str,
    ) -> Result<HttpResponse, wire::EncodeError> {
        if O::EC2_XML {
            let written =
                routed.output_ec2_written(|out| O::write_ec2_xml(&self.0, out), request_id);
            if let Some(response) = written {
                return response;
            }
        }
        routed.output_typed(&self.0, || O::output_to_value(&self.0), request_id)
    }
}

/// An output built as it is written; see [`output_streamed`].
struct Streamed<T>(T);

impl<T: serde::Serialize + Ec2Xml + Send> Output for Streamed<T> {
    fn encode(
        &self,
        routed: &wire::Routed<'_>,
        request_id: &str,
    ) -> Result<HttpResponse, wire::EncodeError> {
        if let Some(response) =
            routed.output_ec2_written(|out| self.0.write_content(out), request_id)
        {
            return response;
        }
        routed.output_typed(&self.0, || serde_json::to_value(&self.0), request_id)
    }
}
