//! CloudWatch's domain: metrics put and read back, and dashboards, over the metrics store
//! (`state::metrics`). One file per concern:
//!
//! - `put_metric_data.rs`: PutMetricData's checks (reserved namespaces, sizes, exclusive
//!   members, values, timestamps, resolutions) and the observations it records;
//! - `statistics.rs`: periods, statistics and percentiles, and points merged into periods,
//!   shared by the two queries;
//! - `get_metric_statistics.rs` and `get_metric_data.rs` (with its paging in
//!   `metric_data_pages.rs` and its expressions in `metric_math.rs`): the queries;
//! - `list_metrics.rs`: ListMetrics with its filters and pages;
//! - `dashboards.rs` and `dashboard_body.rs`: the dashboard commands and the check of a
//!   dashboard's JSON body;
//! - `alarms/`: metric and composite alarms, their evaluation, history and actions.
//! - `sampler.rs`: the agent's sampling of running instances every interval, with the
//!   metrics of a window in `instance_metrics.rs`, burstable types' credits in
//!   `cpu_credits.rs` and the status checks in `status_checks.rs`.
//!
//! Each command is a plain function over the store (and the time, in seconds since the
//! epoch) with its own error enum whose [`crate::Refusal::code`] is CloudWatch's code.

pub mod alarms;
pub mod cpu_credits;
pub mod dashboard_body;
pub mod dashboards;
#[cfg(test)]
mod fuzz;
pub mod get_metric_data;
pub mod get_metric_statistics;
pub mod instance_metrics;
pub mod list_metrics;
mod metric_data;
mod metric_data_pages;
pub mod metric_math;
pub mod put_metric_data;
pub mod sampler;
pub mod statistics;
pub mod status_checks;

pub use state::metrics::{MetricKey, MetricsStore};

/// A fresh metrics store in a temporary directory, for the commands' tests.
#[cfg(test)]
pub(crate) fn test_store() -> (tempfile::TempDir, MetricsStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = MetricsStore::open(&dir.path().join("metrics.db")).unwrap();
    (dir, s)
}
