//! GetMetricStatistics and GetMetricData: the requests as `control::monitoring`'s queries,
//! their datapoints as the model's.

use std::collections::BTreeMap;

use control::monitoring::MetricKey;
use control::monitoring::get_metric_data::{
    self, MetricDataQuery, MetricDataRequest, MetricStat, Status,
};
use control::monitoring::get_metric_statistics::{self, MetricStatisticsQuery};
use control::monitoring::statistics::Statistic;
use serde_json::Value;
use shapes::cloudwatch::{
    Datapoint, GetMetricDataOutput, GetMetricStatisticsOutput, MetricDataResult, ScanBy,
    StandardUnit, StatusCode, ops,
};

use super::{now, pairs, refused, seconds, time};
use crate::errors::ApiError;
use crate::operation::{input, output};
use crate::{Call, Reply};

/// GetMetricStatistics.
pub(super) fn get_metric_statistics(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let request = input::<ops::GetMetricStatistics>(value)?;
    let label = request.metric_name.clone();
    let query = MetricStatisticsQuery {
        key: MetricKey::new(
            request.namespace,
            request.metric_name,
            pairs(request.dimensions),
        ),
        start: seconds(&request.start_time),
        end: seconds(&request.end_time),
        period: request.period,
        // The model's enum has the five names Statistic::parse knows.
        statistics: request
            .statistics
            .unwrap_or_default()
            .iter()
            .filter_map(|s| Statistic::parse(s.as_str()))
            .collect(),
        extended_statistics: request.extended_statistics.unwrap_or_default(),
        unit: request.unit.map(|u| u.as_str().to_string()),
    };
    let points = get_metric_statistics::get_metric_statistics(&c.st.plane.metrics, &query, now())
        .map_err(|e| refused(&e))?;
    let datapoints = points
        .into_iter()
        .map(|p| {
            let mut d = Datapoint {
                timestamp: Some(time(p.time)),
                unit: StandardUnit::from_wire(&p.unit),
                ..Default::default()
            };
            for (s, v) in p.statistics {
                let slot = match s {
                    Statistic::SampleCount => &mut d.sample_count,
                    Statistic::Average => &mut d.average,
                    Statistic::Sum => &mut d.sum,
                    Statistic::Minimum => &mut d.minimum,
                    Statistic::Maximum => &mut d.maximum,
                };
                *slot = Some(v);
            }
            if !query.extended_statistics.is_empty() {
                d.extended_statistics = Some(p.extended.into_iter().collect::<BTreeMap<_, _>>());
            }
            d
        })
        .collect();
    output::<ops::GetMetricStatistics>(GetMetricStatisticsOutput {
        label: Some(label),
        datapoints: Some(datapoints),
    })
}

/// GetMetricData.
pub(super) fn get_metric_data(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let request = input::<ops::GetMetricData>(value)?;
    let queries = request
        .metric_data_queries
        .into_iter()
        .map(|q| MetricDataQuery {
            id: q.id,
            metric_stat: q.metric_stat.map(|s| MetricStat {
                namespace: s.metric.namespace,
                metric_name: s.metric.metric_name,
                dimensions: pairs(s.metric.dimensions),
                period: s.period,
                stat: s.stat,
                unit: s.unit.map(|u| u.as_str().to_string()),
            }),
            expression: q.expression,
            label: q.label,
            return_data: q.return_data,
        })
        .collect();
    let command = MetricDataRequest {
        queries,
        start: seconds(&request.start_time),
        end: seconds(&request.end_time),
        ascending: request.scan_by == Some(ScanBy::TimestampAscending),
        max_datapoints: request.max_datapoints,
        next_token: request.next_token,
    };
    let page = get_metric_data::get_metric_data(&c.st.plane.metrics, &command, now())
        .map_err(|e| refused(&e))?;
    let results = page
        .results
        .into_iter()
        .map(|r| MetricDataResult {
            id: Some(r.id),
            label: Some(r.label),
            timestamps: Some(r.timestamps.into_iter().map(time).collect()),
            values: Some(r.values),
            status_code: Some(match r.status {
                Status::Complete => StatusCode::Complete,
                Status::PartialData => StatusCode::PartialData,
            }),
            messages: None,
        })
        .collect();
    output::<ops::GetMetricData>(GetMetricDataOutput {
        metric_data_results: Some(results),
        next_token: page.next_token,
        messages: Some(Vec::new()),
    })
}
