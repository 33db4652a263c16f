//! GetMetricData's request and answer: its queries (a metric read with a statistic, or an
//! expression over other queries), and each query's series of timestamps and values.

/// A metric and how to read it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricStat {
    /// The namespace.
    pub namespace: Option<String>,
    /// The metric's name.
    pub metric_name: Option<String>,
    /// Its dimensions as (name, value).
    pub dimensions: Vec<(String, String)>,
    /// The period in seconds.
    pub period: i32,
    /// The statistic (`Average`, `p90`).
    pub stat: String,
    /// Only the points of this unit.
    pub unit: Option<String>,
}

/// One query of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDataQuery {
    /// Its id: a lowercase letter, then letters, digits and `_`.
    pub id: String,
    /// A metric to read.
    pub metric_stat: Option<MetricStat>,
    /// A metric math expression.
    pub expression: Option<String>,
    /// Its label (the metric's name when absent).
    pub label: Option<String>,
    /// Whether its values are answered (true when absent).
    pub return_data: Option<bool>,
}

/// A GetMetricData request.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDataRequest {
    /// The queries.
    pub queries: Vec<MetricDataQuery>,
    /// From (inclusive), seconds since the epoch.
    pub start: i64,
    /// To (exclusive).
    pub end: i64,
    /// Oldest first (else newest first, the default).
    pub ascending: bool,
    /// At most this many datapoints in this answer.
    pub max_datapoints: Option<i32>,
    /// Where an earlier answer stopped.
    pub next_token: Option<String>,
}

/// Whether a query's values are all in this answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// All of them.
    Complete,
    /// More follow with the answer's `NextToken`.
    PartialData,
}

/// One query's values in this answer.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDataResult {
    /// The query's id.
    pub id: String,
    /// Its label.
    pub label: String,
    /// Period starts, in the order asked for.
    pub timestamps: Vec<i64>,
    /// The statistic per period.
    pub values: Vec<f64>,
    /// Whether more follow.
    pub status: Status,
}

/// An answer.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDataPage {
    /// The queries' results, in the request's order (those with `ReturnData`).
    pub results: Vec<MetricDataResult>,
    /// Where the next answer starts, when there is one.
    pub next_token: Option<String>,
}
