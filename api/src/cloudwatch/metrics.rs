//! PutMetricData and ListMetrics: the requests as `control::monitoring`'s commands.

use control::monitoring::list_metrics::{self, ListMetricsQuery};
use control::monitoring::put_metric_data::{self, Datum, PutMetricData, StatisticSet};
use serde_json::Value;
use shapes::cloudwatch::{ListMetricsOutput, MetricDatum, RecentlyActive, ops};

use super::{metric_shape, now, pairs, refused, seconds};
use crate::errors::ApiError;
use crate::operation::{input, output};
use crate::{Call, Reply};

fn datum(d: MetricDatum) -> Datum {
    Datum {
        metric_name: d.metric_name,
        dimensions: pairs(d.dimensions),
        timestamp: d.timestamp.as_ref().map(seconds),
        value: d.value,
        statistic_values: d.statistic_values.map(|s| StatisticSet {
            sample_count: s.sample_count,
            sum: s.sum,
            minimum: s.minimum,
            maximum: s.maximum,
        }),
        values: d.values,
        counts: d.counts,
        unit: d.unit.map(|u| u.as_str().to_string()),
        storage_resolution: d.storage_resolution,
    }
}

/// PutMetricData: the datums of `MetricData` and of each `EntityMetricData` (the entity
/// itself is not kept).
pub(super) fn put_metric_data(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let request = input::<ops::PutMetricData>(value)?;
    let mut data: Vec<Datum> = request
        .metric_data
        .unwrap_or_default()
        .into_iter()
        .map(datum)
        .collect();
    for entity in request.entity_metric_data.unwrap_or_default() {
        data.extend(
            entity
                .metric_data
                .unwrap_or_default()
                .into_iter()
                .map(datum),
        );
    }
    let command = PutMetricData {
        namespace: request.namespace,
        data,
    };
    put_metric_data::put_metric_data(&c.st.plane.metrics, &command, now())
        .map_err(|e| refused(&e))?;
    output::<ops::PutMetricData>(shapes::Empty {})
}

/// ListMetrics.
pub(super) fn list_metrics(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let request = input::<ops::ListMetrics>(value)?;
    let query = ListMetricsQuery {
        namespace: request.namespace,
        metric_name: request.metric_name,
        dimensions: request
            .dimensions
            .unwrap_or_default()
            .into_iter()
            .map(|f| (f.name, f.value))
            .collect(),
        recently_active: request.recently_active == Some(RecentlyActive::Pt3h),
        next_token: request.next_token,
    };
    let page =
        list_metrics::list_metrics(&c.st.plane.metrics, &query, now()).map_err(|e| refused(&e))?;
    output::<ops::ListMetrics>(ListMetricsOutput {
        metrics: Some(page.metrics.into_iter().map(metric_shape).collect()),
        next_token: page.next_token,
        owning_accounts: None,
    })
}
