//! GetMetricData's pages: the queries' datapoints, one query after another, cut every
//! `MaxDatapoints`; a `NextToken` names where the next page starts and which request it
//! belongs to (a hash of the request without its token and page size).

use super::metric_data::{MetricDataPage, MetricDataRequest, MetricDataResult, Status};

/// Where a page starts: the datapoints already answered, for the request hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cursor {
    skip: u64,
    fingerprint: u64,
}

impl Cursor {
    /// The first page.
    pub(super) fn start(fingerprint: u64) -> Self {
        Self {
            skip: 0,
            fingerprint,
        }
    }

    /// The cursor a token names, if it is one of ours for this request.
    pub(super) fn parse(token: &str, fingerprint: u64) -> Option<Self> {
        let rest = token.strip_prefix("gmd1-")?;
        let (skip, hash) = rest.split_once('-')?;
        let skip: u64 = skip.parse().ok()?;
        let hash = u64::from_str_radix(hash, 16).ok()?;
        (hash == fingerprint && skip > 0).then_some(Self { skip, fingerprint })
    }

    fn token(self) -> String {
        format!("gmd1-{}-{:016x}", self.skip, self.fingerprint)
    }
}

/// A hash of what decides the answer (FNV-1a over its debug form, without the token and
/// page size), so that a token is refused on another request.
pub(super) fn fingerprint(request: &MetricDataRequest) -> u64 {
    let relevant = (
        &request.queries,
        request.start,
        request.end,
        request.ascending,
    );
    let text = format!("{relevant:?}");
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One query's datapoints, in the order answered.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Series {
    /// The query's id.
    pub id: String,
    /// Its label.
    pub label: String,
    /// (period start, value).
    pub points: Vec<(i64, f64)>,
}

/// The page starting at `cursor` of `series`, at most `max` datapoints.
pub(super) fn page(series: Vec<Series>, cursor: Cursor, max: i64) -> MetricDataPage {
    let mut skip = cursor.skip;
    let mut room = max.max(0) as u64;
    let mut answered = cursor.skip;
    let mut more = false;
    let mut results = Vec::with_capacity(series.len());
    for Series { id, label, points } in series {
        let n = points.len() as u64;
        let from = skip.min(n);
        skip -= from;
        let take = (n - from).min(room);
        room -= take;
        answered += take;
        let partial = from + take < n;
        more |= partial;
        let (timestamps, values) = points
            .into_iter()
            .skip(from as usize)
            .take(take as usize)
            .unzip();
        results.push(MetricDataResult {
            id,
            label,
            timestamps,
            values,
            status: if partial {
                Status::PartialData
            } else {
                Status::Complete
            },
        });
    }
    MetricDataPage {
        results,
        next_token: more.then(|| {
            Cursor {
                skip: answered,
                fingerprint: cursor.fingerprint,
            }
            .token()
        }),
    }
}
