//! ListMetrics: the metrics put in the last two weeks (or three hours, `RecentlyActive`),
//! filtered by namespace, name and dimensions, in pages of 500.

use state::metrics::{DimensionFilter, ListFilter, MetricKey, MetricsStore, StoreError};

use crate::Refusal;

/// Metrics per page.
pub const PAGE: usize = 500;
/// How long a metric is listed after its last put: two weeks.
pub const LISTED_FOR: i64 = 14 * 86_400;
/// `RecentlyActive=PT3H`: three hours.
pub const RECENTLY: i64 = 3 * 3600;

/// A ListMetrics request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListMetricsQuery {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this metric name.
    pub metric_name: Option<String>,
    /// Only metrics with each of these dimensions (name, and value when given).
    pub dimensions: Vec<(String, Option<String>)>,
    /// Only metrics put in the last three hours.
    pub recently_active: bool,
    /// Where an earlier page stopped.
    pub next_token: Option<String>,
}

/// A page of metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsPage {
    /// The metrics.
    pub metrics: Vec<MetricKey>,
    /// Where the next page starts, when there is one.
    pub next_token: Option<String>,
}

/// Why ListMetrics is refused.
#[derive(Debug, thiserror::Error)]
pub enum ListMetricsError {
    /// The token is not one a page gave.
    #[error(
        "Value for parameter NextToken is invalid: it does not come from an earlier ListMetrics answer"
    )]
    NextToken,
    /// The store failed.
    #[error("cannot list the metrics")]
    Store(#[from] StoreError),
}

impl Refusal for ListMetricsError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::NextToken => Some("InvalidParameterValue"),
            Self::Store(_) => None,
        }
    }
}

/// A page of the metrics `q` asks for; `now` is seconds since the epoch.
pub fn list_metrics(
    store: &MetricsStore,
    q: &ListMetricsQuery,
    now: i64,
) -> Result<MetricsPage, ListMetricsError> {
    let after = match &q.next_token {
        None => 0,
        Some(t) => t
            .strip_prefix("lm1-")
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n > 0)
            .ok_or(ListMetricsError::NextToken)?,
    };
    let filter = ListFilter {
        namespace: q.namespace.clone(),
        name: q.metric_name.clone(),
        dimensions: q
            .dimensions
            .iter()
            .map(|(name, value)| DimensionFilter {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        put_since: now
            - if q.recently_active {
                RECENTLY
            } else {
                LISTED_FOR
            },
    };
    let listed = store.list(&filter, after, PAGE)?;
    Ok(MetricsPage {
        metrics: listed.metrics,
        next_token: listed.next.map(|n| format!("lm1-{n}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitoring::put_metric_data::{Datum, PutMetricData, put_metric_data};
    use crate::monitoring::test_store;

    const NOW: i64 = 1_796_688_000;

    #[test]
    fn metrics_are_listed_by_filter_in_pages_of_500_and_forged_tokens_refused() {
        let (_d, s) = test_store();
        let data: Vec<Datum> = (0..600)
            .map(|i| Datum {
                metric_name: if i % 2 == 0 { "Even" } else { "Odd" }.into(),
                dimensions: vec![("N".into(), i.to_string())],
                value: Some(1.0),
                ..Default::default()
            })
            .collect();
        for chunk in data.chunks(300) {
            let r = PutMetricData {
                namespace: "MyApp".into(),
                data: chunk.to_vec(),
            };
            put_metric_data(&s, &r, NOW - 4 * 3600).unwrap();
        }
        let all = ListMetricsQuery::default();
        let first = list_metrics(&s, &all, NOW).unwrap();
        assert_eq!(first.metrics.len(), 500);
        let next = ListMetricsQuery {
            next_token: first.next_token.clone(),
            ..all.clone()
        };
        let second = list_metrics(&s, &next, NOW).unwrap();
        assert_eq!((second.metrics.len(), second.next_token), (100, None));
        let one = ListMetricsQuery {
            metric_name: Some("Odd".into()),
            dimensions: vec![("N".into(), Some("7".into()))],
            ..all.clone()
        };
        let listed = list_metrics(&s, &one, NOW).unwrap().metrics;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].dimensions, [("N".to_string(), "7".to_string())]);
        let recent = ListMetricsQuery {
            recently_active: true,
            ..all.clone()
        };
        assert!(list_metrics(&s, &recent, NOW).unwrap().metrics.is_empty());
        let forged = ListMetricsQuery {
            next_token: Some("forged".into()),
            ..all
        };
        let e = list_metrics(&s, &forged, NOW).unwrap_err();
        assert_eq!(e.code(), Some("InvalidParameterValue"));
    }
}
