//! CloudWatch over every protocol its clients speak (RPC v2 CBOR, awsJson 1.0, awsQuery):
//! metrics (`metrics.rs`: PutMetricData, ListMetrics; `queries.rs`: GetMetricStatistics,
//! GetMetricData), dashboards (`dashboards.rs`) and alarms (`alarms.rs`). Each handler turns the operation's
//! typed input into a command of `control::monitoring`, run on the plane's metrics store,
//! and its result into the typed output; a refusal is answered with CloudWatch's code and
//! the HTTP status its model gives that code.

mod alarms;
mod dashboards;
mod metrics;
mod queries;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::errors::ApiError;
use super::operation::not_served;
use super::{Call, Reply};

/// Runs one CloudWatch operation.
pub fn dispatch(operation: &str, c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    match operation {
        "PutMetricData" => metrics::put_metric_data(c, value),
        "ListMetrics" => metrics::list_metrics(c, value),
        "GetMetricStatistics" => queries::get_metric_statistics(c, value),
        "GetMetricData" => queries::get_metric_data(c, value),
        "PutDashboard" => dashboards::put_dashboard(c, value),
        "GetDashboard" => dashboards::get_dashboard(c, value),
        "ListDashboards" => dashboards::list_dashboards(c, value),
        "DeleteDashboards" => dashboards::delete_dashboards(c, value),
        "PutMetricAlarm" => alarms::put_metric_alarm(c, value),
        "PutCompositeAlarm" => alarms::put_composite_alarm(c, value),
        "DescribeAlarms" => alarms::describe_alarms(c, value),
        "DescribeAlarmsForMetric" => alarms::describe_alarms_for_metric(c, value),
        "DescribeAlarmHistory" => alarms::describe_alarm_history(c, value),
        "SetAlarmState" => alarms::set_alarm_state(c, value),
        "DeleteAlarms" => alarms::delete_alarms(c, value),
        "EnableAlarmActions" => alarms::enable_alarm_actions(c, value),
        "DisableAlarmActions" => alarms::disable_alarm_actions(c, value),
        "TagResource" => alarms::tag_resource(c, value),
        "UntagResource" => alarms::untag_resource(c, value),
        "ListTagsForResource" => alarms::list_tags_for_resource(c, value),
        other => Err(not_served(other)),
    }
}

/// A command's refusal with CloudWatch's code, and the status the model gives it (404 for
/// `ResourceNotFound`); a failure of the agent's is CloudWatch's `InternalServiceError`
/// (its `InternalServiceFault`, HTTP 500), the cause logged.
fn refused<E: control::Refusal>(e: &E) -> ApiError {
    let mut error = ApiError::refused(e);
    if error.status >= 500 {
        error.code = "InternalServiceError".into();
    }
    let status = crate::models::registry()
        .by_signing_name("monitoring")
        .and_then(|m| m.error_shape(&error.code))
        .and_then(|(_, s)| s.error.as_ref()?.http_status_code);
    match status {
        Some(s) if error.status < 500 => error.with_status(s),
        _ => error,
    }
}

/// Seconds since the epoch (sub-second parts dropped).
fn seconds(t: &DateTime<Utc>) -> i64 {
    t.timestamp()
}

/// A time from seconds since the epoch.
fn time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

/// Now, in seconds since the epoch.
fn now() -> i64 {
    Utc::now().timestamp()
}

/// Dimensions as (name, value) pairs.
fn pairs(dimensions: Option<Vec<shapes::cloudwatch::Dimension>>) -> Vec<(String, String)> {
    dimensions
        .unwrap_or_default()
        .into_iter()
        .map(|d| (d.name, d.value))
        .collect()
}

/// A metric key as the model's `Metric`.
fn metric_shape(k: control::monitoring::MetricKey) -> shapes::cloudwatch::Metric {
    shapes::cloudwatch::Metric {
        namespace: Some(k.namespace),
        metric_name: Some(k.name),
        dimensions: Some(
            k.dimensions
                .into_iter()
                .map(|(name, value)| shapes::cloudwatch::Dimension { name, value })
                .collect(),
        ),
    }
}
