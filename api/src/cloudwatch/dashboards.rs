//! PutDashboard, GetDashboard, ListDashboards and DeleteDashboards as
//! `control::monitoring::dashboards`' commands.

use control::monitoring::dashboards;
use serde_json::{Value, json};
use shapes::cloudwatch::{
    DashboardEntry, DeleteDashboardsOutput, GetDashboardOutput, ListDashboardsOutput,
    PutDashboardOutput, ops,
};

use super::refused;
use crate::errors::ApiError;
use crate::operation::{input, output};
use crate::{Call, Reply};

/// PutDashboard; a body refused lists its problems in the error's
/// `dashboardValidationMessages`, as CloudWatch's `DashboardInvalidInputError`.
pub(super) fn put_dashboard(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let request = input::<ops::PutDashboard>(value)?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    dashboards::put_dashboard(
        &c.st.plane.metrics,
        &request.dashboard_name,
        &request.dashboard_body,
        now_ms,
    )
    .map_err(|e| {
        let messages: Vec<Value> = e
            .messages()
            .iter()
            .map(|m| json!({"DataPath": m.data_path, "Message": m.message}))
            .collect();
        let error = refused(&e);
        if messages.is_empty() {
            error
        } else {
            error.with_field("dashboardValidationMessages", Value::Array(messages))
        }
    })?;
    output::<ops::PutDashboard>(PutDashboardOutput {
        dashboard_validation_messages: Some(Vec::new()),
    })
}

/// GetDashboard.
pub(super) fn get_dashboard(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let request = input::<ops::GetDashboard>(value)?;
    let row = dashboards::get_dashboard(&c.st.plane.metrics, &request.dashboard_name)
        .map_err(|e| refused(&e))?;
    output::<ops::GetDashboard>(GetDashboardOutput {
        dashboard_arn: Some(dashboards::arn(&c.st.account_id, &row.name)),
        dashboard_body: Some(row.body),
        dashboard_name: Some(row.name),
    })
}

/// ListDashboards.
pub(super) fn list_dashboards(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let request = input::<ops::ListDashboards>(value)?;
    let page = dashboards::list_dashboards(
        &c.st.plane.metrics,
        request.dashboard_name_prefix.as_deref(),
        request.next_token.as_deref(),
    )
    .map_err(|e| refused(&e))?;
    let entries = page
        .dashboards
        .into_iter()
        .map(|d| DashboardEntry {
            dashboard_arn: Some(dashboards::arn(&c.st.account_id, &d.name)),
            last_modified: chrono::DateTime::from_timestamp_millis(d.last_modified_ms),
            size: Some(d.body.len() as i64),
            dashboard_name: Some(d.name),
        })
        .collect();
    output::<ops::ListDashboards>(ListDashboardsOutput {
        dashboard_entries: Some(entries),
        next_token: page.next_token,
    })
}

/// DeleteDashboards.
pub(super) fn delete_dashboards(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let request = input::<ops::DeleteDashboards>(value)?;
    dashboards::delete_dashboards(&c.st.plane.metrics, &request.dashboard_names)
        .map_err(|e| refused(&e))?;
    output::<ops::DeleteDashboards>(DeleteDashboardsOutput {})
}
