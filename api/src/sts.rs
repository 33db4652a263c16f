//! STS: `GetCallerIdentity`, which tools call for the account id (Ansible's
//! `ec2_security_group`, Terraform's AWS provider). The agent has one identity: the
//! account's root user, whose key every request is signed with.

use serde_json::Value;
use shapes::sts::{GetCallerIdentityResponse, ops};

use super::errors::ApiError;
use super::operation::{input, not_served, output};
use super::{Call, Reply};

/// Runs one STS operation.
pub fn dispatch(operation: &str, c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    match operation {
        "GetCallerIdentity" => {
            input::<ops::GetCallerIdentity>(value)?;
            output::<ops::GetCallerIdentity>(caller_identity(&c.st.account_id))
        }
        other => Err(not_served(other)),
    }
}

/// The account's root user: its id is the account id, its ARN `arn:aws:iam::ACCOUNT:root`.
fn caller_identity(account_id: &str) -> GetCallerIdentityResponse {
    GetCallerIdentityResponse {
        user_id: Some(account_id.to_string()),
        account: Some(account_id.to_string()),
        arn: Some(format!("arn:aws:iam::{account_id}:root")),
    }
}
