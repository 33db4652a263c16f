//! `AWS/ApplicationELB` and `AWS/NetworkELB` from HAProxy's counters (`show stat`), read
//! every metrics interval by the `load balancer metrics` loop. Counters are turned into
//! per-interval counts (a reloaded worker starts its counters again: a counter that went
//! down counts from zero). Dimensions as ELB's: `LoadBalancer` (`app/NAME/ID`,
//! `net/NAME/ID`), and `LoadBalancer` with `TargetGroup` (`targetgroup/NAME/ID`) for the
//! per-group metrics; `RequestCountPerTarget` by `TargetGroup` as well.
//!
//! Application: `RequestCount`, `HTTPCode_Target_{2,3,4,5}XX_Count`, `HTTPCode_ELB_{4,5}XX_Count`
//! (answers HAProxy made itself: no target, a failed connection), `TargetResponseTime`
//! (seconds, HAProxy's average over its last requests), `HealthyHostCount`,
//! `UnHealthyHostCount`, `RequestCountPerTarget`. Network: `NewFlowCount`,
//! `ActiveFlowCount`, `ProcessedBytes`, `HealthyHostCount`, `UnHealthyHostCount`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use host::elb::StatRow;
use state::metrics::{Aggregate, MetricKey, Observation};

use super::{blocking, model};
use crate::Plane;

/// The counters kept between two readings, by (load balancer, proxy, name).
pub type Counters = HashMap<(String, String, String), StatRow>;

/// One load balancer's reading.
#[derive(Debug, Clone)]
pub struct Reading<'a> {
    /// `app/NAME/ID` or `net/NAME/ID`.
    pub lb_dimension: &'a str,
    /// Application (HTTP) or network.
    pub http: bool,
    /// Its target groups: (backend name, `targetgroup/NAME/ID`).
    pub groups: Vec<(String, String)>,
    /// `show stat`'s rows.
    pub rows: Vec<StatRow>,
}

fn delta(now: u64, before: Option<u64>) -> u64 {
    match before {
        Some(b) if now >= b => now - b,
        _ => now,
    }
}

struct Out<'a> {
    namespace: &'static str,
    time: i64,
    list: &'a mut Vec<Observation>,
}

impl Out<'_> {
    fn put(&mut self, name: &str, dims: &[(&str, &str)], unit: &str, value: f64, count: f64) {
        self.list.push(Observation {
            key: MetricKey::new(
                self.namespace,
                name,
                dims.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            time: self.time,
            high_resolution: false,
            unit: unit.into(),
            aggregate: Aggregate::of_value(value, count.max(1.0)),
        });
    }

    fn count(&mut self, name: &str, dims: &[(&str, &str)], n: u64) {
        self.put(name, dims, "Count", n as f64, 1.0);
    }
}

/// The observations of one reading at `time`, given the counters of the last one (which
/// are updated).
pub fn observations(r: &Reading<'_>, last: &mut Counters, time: i64) -> Vec<Observation> {
    let mut list = Vec::new();
    let namespace = if r.http {
        "AWS/ApplicationELB"
    } else {
        "AWS/NetworkELB"
    };
    let mut out = Out {
        namespace,
        time,
        list: &mut list,
    };
    let lb = [("LoadBalancer", r.lb_dimension)];
    let before = |row: &StatRow| {
        last.get(&(
            r.lb_dimension.to_string(),
            row.proxy.clone(),
            row.name.clone(),
        ))
        .cloned()
    };
    let d = |row: &StatRow, f: &dyn Fn(&StatRow) -> u64| delta(f(row), before(row).as_ref().map(f));
    let frontends: Vec<&StatRow> = r.rows.iter().filter(|s| s.name == "FRONTEND").collect();
    let mut target_responses = [0u64; 6];
    for (backend, tg) in &r.groups {
        let Some(b) = r
            .rows
            .iter()
            .find(|s| s.proxy == *backend && s.name == "BACKEND")
        else {
            continue;
        };
        let servers: Vec<&StatRow> = r
            .rows
            .iter()
            .filter(|s| s.proxy == *backend && s.is_server())
            .collect();
        let healthy = servers
            .iter()
            .filter(|s| s.status.starts_with("UP"))
            .count();
        let both = [
            ("LoadBalancer", r.lb_dimension),
            ("TargetGroup", tg.as_str()),
        ];
        out.put("HealthyHostCount", &both, "Count", healthy as f64, 1.0);
        out.put(
            "UnHealthyHostCount",
            &both,
            "Count",
            (servers.len() - healthy) as f64,
            1.0,
        );
        if !r.http {
            continue;
        }
        let mut requests = 0;
        for (i, class) in ["1", "2", "3", "4", "5"].iter().enumerate() {
            let n = d(b, &|s: &StatRow| s.responses[i]);
            requests += n;
            target_responses[i] += n;
            if *class != "1" {
                out.count(&format!("HTTPCode_Target_{class}XX_Count"), &both, n);
            }
        }
        out.count("RequestCount", &both, requests);
        let per_target = requests as f64 / (healthy.max(1) as f64);
        out.put(
            "RequestCountPerTarget",
            &[("TargetGroup", tg.as_str())],
            "Count",
            per_target,
            1.0,
        );
        out.put("RequestCountPerTarget", &both, "Count", per_target, 1.0);
        if requests > 0 {
            out.put(
                "TargetResponseTime",
                &both,
                "Seconds",
                b.response_ms as f64 / 1000.0,
                requests as f64,
            );
        }
    }
    if r.http {
        let requests: u64 = frontends.iter().map(|f| d(f, &|s| s.requests)).sum();
        out.count("RequestCount", &lb, requests);
        for (i, class) in [(1, "2"), (2, "3"), (3, "4"), (4, "5")] {
            out.count(
                &format!("HTTPCode_Target_{class}XX_Count"),
                &lb,
                target_responses[i],
            );
        }
        let answered = |i: usize| -> u64 {
            frontends
                .iter()
                .map(|f| d(f, &|s: &StatRow| s.responses[i]))
                .sum()
        };
        let elb_4xx = answered(3).saturating_sub(target_responses[3]);
        let elb_5xx = answered(4).saturating_sub(target_responses[4]);
        out.count("HTTPCode_ELB_4XX_Count", &lb, elb_4xx);
        out.count("HTTPCode_ELB_5XX_Count", &lb, elb_5xx);
        let times: Vec<&StatRow> = r
            .rows
            .iter()
            .filter(|s| s.name == "BACKEND" && r.groups.iter().any(|(b, _)| *b == s.proxy))
            .collect();
        let answered_by_targets: u64 = target_responses.iter().sum();
        if answered_by_targets > 0 && !times.is_empty() {
            let avg = times.iter().map(|s| s.response_ms as f64).sum::<f64>() / times.len() as f64;
            out.put(
                "TargetResponseTime",
                &lb,
                "Seconds",
                avg / 1000.0,
                answered_by_targets as f64,
            );
        }
    } else {
        let flows: u64 = frontends.iter().map(|f| d(f, &|s| s.sessions)).sum();
        out.count("NewFlowCount", &lb, flows);
        let active: u64 = frontends.iter().map(|f| f.current).sum();
        out.put("ActiveFlowCount", &lb, "Count", active as f64, 1.0);
        let bytes: u64 = frontends
            .iter()
            .map(|f| d(f, &|s| s.bytes.0) + d(f, &|s| s.bytes.1))
            .sum();
        out.put("ProcessedBytes", &lb, "Bytes", bytes as f64, 1.0);
    }
    for row in &r.rows {
        last.insert(
            (
                r.lb_dimension.to_string(),
                row.proxy.clone(),
                row.name.clone(),
            ),
            row.clone(),
        );
    }
    list
}

/// Reads every load balancer's HAProxy and records its metrics at `time`.
pub fn sample(plane: &Plane, last: &mut Counters, time: i64) -> Result<usize, super::ElbSyncError> {
    let lbs = state::elbv2::lbs(&plane.db.lock())?;
    let mut all = Vec::new();
    for lb in lbs {
        let groups: Vec<(String, String)> = state::elbv2::tgs_of_lb(&plane.db.lock(), &lb.arn)?
            .into_iter()
            .map(|tg| {
                (
                    model::backend_name(&tg),
                    model::tg_dimension(&tg).to_string(),
                )
            })
            .collect();
        let Ok(rows) = plane.elb.stats(model::arn_id(&lb.arn)) else {
            continue;
        };
        let reading = Reading {
            lb_dimension: model::lb_dimension(&lb.arn),
            http: lb.kind == "application",
            groups,
            rows,
        };
        all.extend(observations(&reading, last, time));
    }
    let n = all.len();
    plane
        .metrics
        .put(&all, time)
        .map_err(|e| super::ElbSyncError::Metrics(e.to_string()))?;
    Ok(n)
}

/// The loop (a unit of the agent), every `interval`.
pub async fn run(plane: Arc<Plane>, interval: Duration) {
    let mut last = Counters::new();
    loop {
        let now = crate::monitoring::sampler::next_tick(interval).await;
        match blocking(|| sample(&plane, &mut last, now as i64)) {
            Ok(n) => tracing::debug!(observations = n, "load balancers sampled"),
            Err(e) => {
                tracing::warn!(error = %host::error_chain(&e), "load balancer metrics failed")
            }
        }
    }
}

#[cfg(test)]
mod tests;
