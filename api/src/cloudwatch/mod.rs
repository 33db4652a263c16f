//! CloudWatch, as far as the endpoint's skeleton goes: `ListMetrics` over every protocol
//! CloudWatch's clients speak (RPC v2 CBOR, awsJson 1.0, awsQuery). The agent records no
//! metrics yet, so the list is empty; the request is still checked against the model and
//! its filters read.

use serde_json::Value;
use shapes::cloudwatch::{ListMetricsOutput, ops};

use super::errors::ApiError;
use super::operation::{input, not_served, output};
use super::{Call, Reply};

/// Runs one CloudWatch operation.
pub fn dispatch(operation: &str, _c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    match operation {
        "ListMetrics" => {
            let request = input::<ops::ListMetrics>(value)?;
            if request.next_token.is_some() {
                return Err(ApiError::invalid(
                    "NextToken",
                    "it does not come from an earlier ListMetrics answer",
                ));
            }
            output::<ops::ListMetrics>(ListMetricsOutput {
                metrics: Some(Vec::new()),
                next_token: None,
                owning_accounts: None,
            })
        }
        other => Err(not_served(other)),
    }
}
