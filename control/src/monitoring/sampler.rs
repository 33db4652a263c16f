//! The agent's sampler: every interval it reads each running instance's counters and checks
//! from outside the guest, judges the status checks, and records the `AWS/EC2` and `AWS/EBS`
//! metrics in the metrics store. The status-check metrics are recorded every interval; the
//! usage metrics once per window: the interval with detailed monitoring, five intervals with
//! basic (with the default 60-second interval, EC2's 1 and 5 minutes). Sampling faster than
//! a minute keeps the points at 1-second resolution too, so 10-second alarms can read them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use host::compute::usage::{Usage, UsageError};
use state::instances::{self, InstanceRow, InstanceState};
use state::metrics::{MetricKey, Observation, PutError, Resolution};

use super::cpu_credits::Ledger;
use super::instance_metrics::{self, EC2_NAMESPACE, Reading, Window};
use super::status_checks::{Check, Facts, Health};
use crate::Plane;

/// Basic monitoring's window, in intervals.
pub const BASIC_WINDOW: u32 = 5;
/// How many instances are read at once.
const READ_CONCURRENCY: usize = 32;

/// What the sampler keeps of one instance's run between ticks.
#[derive(Debug, Clone)]
struct Track {
    /// The vmm run (its start time).
    run: u64,
    /// The reading the current window started with.
    window_start: Reading,
    /// The block devices' error count at the last tick.
    errors: u64,
    /// CPU credits, for burstable types.
    ledger: Option<Ledger>,
}

/// Why a tick recorded nothing.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The running instances could not be listed.
    #[error("cannot list the running instances")]
    Db(#[from] rusqlite::Error),
    /// The metrics could not be recorded.
    #[error("cannot record the instance metrics")]
    Put(#[from] PutError),
}

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Running instances sampled.
    pub instances: usize,
    /// Observations recorded.
    pub observations: usize,
}

/// The sampler's memory between ticks.
#[derive(Debug)]
pub struct Sampler {
    plane: Arc<Plane>,
    interval: Duration,
    tracks: HashMap<String, Track>,
}

impl Sampler {
    /// A sampler of `plane`'s instances every `interval`.
    pub fn new(plane: Arc<Plane>, interval: Duration) -> Self {
        Self {
            plane,
            interval,
            tracks: HashMap::new(),
        }
    }

    /// The sampling interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Samples every running instance at `now` (seconds since the epoch).
    pub async fn tick(&mut self, now: f64) -> Result<TickReport, SampleError> {
        let rows: Vec<InstanceRow> = instances::live(&self.plane.db.lock())?
            .into_iter()
            .filter(|r| r.state == InstanceState::Running && r.pid_start.is_some())
            .collect();
        let compute = &self.plane.compute;
        // Each read owns what it reads, so the stream is Send without borrowing `rows`.
        let reads = rows.clone().into_iter().map(|row| {
            let compute = compute.clone();
            async move { compute.usage(&row).await }
        });
        let usages: Vec<Result<Usage, UsageError>> = futures_util::stream::iter(reads)
            .buffered(READ_CONCURRENCY)
            .collect()
            .await;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let wait = (self.interval / 2).min(Duration::from_secs(1));
        let reach = match self.plane.network.reachability(&ids, wait).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %host::error_chain(&e), "the reachability check failed");
                HashMap::new()
            }
        };
        let host_ok = compute.host_resources_ok();
        let groups: HashMap<String, String> = state::autoscaling::members(&self.plane.db.lock())?
            .into_iter()
            .map(|m| (m.instance_id, m.group_name))
            .collect();
        let mut observations = Vec::new();
        let mut live = HashMap::new();
        for (row, usage) in rows.iter().zip(usages) {
            let run = row.pid_start.unwrap_or_default();
            live.insert(row.id.clone(), run);
            let volumes_ok = self.volumes_ok(row, usage.as_ref().ok())?;
            let facts = Facts {
                vmm_answers: usage.is_ok(),
                host_ok,
                reach: reach.get(&row.id).copied(),
                volumes_ok,
            };
            let health = self.plane.health.record(&row.id, run, &facts, now as i64);
            let mut mine = self.status_observations(row, &health, now);
            if let Ok(usage) = usage {
                mine.extend(self.usage_observations(row, run, usage, now));
            }
            // As EC2 does, an Auto Scaling group's instances are also aggregated by the
            // `AutoScalingGroupName` dimension.
            if let Some(group) = groups.get(&row.id) {
                let aggregated = instance_metrics::by_group(&mine, group);
                mine.extend(aggregated);
            }
            observations.extend(mine);
        }
        self.tracks.retain(|id, t| live.get(id) == Some(&t.run));
        self.plane.health.retain(&live);
        let report = TickReport {
            instances: rows.len(),
            observations: observations.len(),
        };
        let store = self.plane.metrics.clone();
        let at = now as i64;
        tokio::task::spawn_blocking(move || store.put(&observations, at))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
        Ok(report)
    }

    /// Whether instance `row`'s volume files are readable and its block devices reported no
    /// new errors since the last tick (`None`: it has no volumes).
    fn volumes_ok(
        &mut self,
        row: &InstanceRow,
        usage: Option<&Usage>,
    ) -> Result<Option<bool>, SampleError> {
        let volumes = state::volumes::attached_to(&self.plane.db.lock(), &row.id)?;
        if volumes.is_empty() {
            return Ok(None);
        }
        let dir = &self.plane.compute.config.state_dir;
        let readable = volumes
            .iter()
            .all(|v| std::fs::File::open(host::storage::volume_path(dir, &v.id)).is_ok());
        let errors = usage.map_or(0, block_errors);
        let before = self.tracks.get(&row.id).map_or(errors, |t| t.errors);
        if let Some(t) = self.tracks.get_mut(&row.id) {
            t.errors = errors;
        }
        Ok(Some(readable && errors <= before))
    }

    /// The `StatusCheckFailed*` metrics of one instance at `now`.
    fn status_observations(&self, row: &InstanceRow, h: &Health, now: f64) -> Vec<Observation> {
        let w = self.window(row, now as i64);
        let any = if h.system == Check::Failed || h.instance == Check::Failed {
            1.0
        } else {
            0.0
        };
        [
            ("StatusCheckFailed", any),
            ("StatusCheckFailed_System", h.system.failed_metric()),
            ("StatusCheckFailed_Instance", h.instance.failed_metric()),
            ("StatusCheckFailed_AttachedEBS", h.ebs.failed_metric()),
        ]
        .into_iter()
        .map(|(name, v)| {
            instance_metrics::observation(
                &w,
                EC2_NAMESPACE,
                name,
                "InstanceId",
                &row.id,
                "Count",
                v,
            )
        })
        .collect()
    }

    /// The usage metrics of one instance, when its window ends at this tick.
    fn usage_observations(
        &mut self,
        row: &InstanceRow,
        run: u64,
        usage: Usage,
        now: f64,
    ) -> Vec<Observation> {
        let reading = Reading { at: now, usage };
        let window_len = self.window_seconds(row);
        let high_resolution = self.high_resolution();
        let track = match self.tracks.get_mut(&row.id) {
            Some(t) if t.run == run => t,
            _ => {
                let ledger = self.starting_ledger(row, now as i64);
                let errors = block_errors(&reading.usage);
                let window_start = first_window_start(&reading, window_len);
                self.tracks.insert(
                    row.id.clone(),
                    Track {
                        run,
                        window_start,
                        errors,
                        ledger,
                    },
                );
                // A vmm that started within this window: its first window counts from its
                // start, so a guest's boot-time work is not lost.
                let Some(track) = self.tracks.get_mut(&row.id) else {
                    return Vec::new();
                };
                if track.window_start.at >= reading.at {
                    return Vec::new();
                }
                track
            }
        };
        let started = track.window_start.at;
        // The window ends when the tick crosses one of its boundaries.
        if (now / window_len).floor() <= (started / window_len).floor() {
            return Vec::new();
        }
        let w = Window {
            instance_id: &row.id,
            vcpus: row.vcpus,
            start: started as i64,
            high_resolution,
        };
        let mut out = instance_metrics::observations(&w, &track.window_start, &reading);
        if let Some(ledger) = &mut track.ledger {
            let cpu_seconds =
                instance_metrics::cpu_utilization(&track.window_start, &reading, row.vcpus)
                    .map_or(0.0, |pct| {
                        pct / 100.0 * (now - started) * f64::from(row.vcpus)
                    });
            let spent = ledger.book(now - started, cpu_seconds);
            out.push(instance_metrics::observation(
                &w,
                EC2_NAMESPACE,
                "CPUCreditUsage",
                "InstanceId",
                &row.id,
                "Count",
                spent.usage,
            ));
            out.push(instance_metrics::observation(
                &w,
                EC2_NAMESPACE,
                "CPUCreditBalance",
                "InstanceId",
                &row.id,
                "Count",
                spent.balance,
            ));
        }
        track.window_start = reading;
        out
    }

    /// Whether points are also kept at 1-second resolution: sampling faster than a minute.
    fn high_resolution(&self) -> bool {
        self.interval < Duration::from_secs(60)
    }

    /// The length of instance `row`'s usage window, in seconds.
    fn window_seconds(&self, row: &InstanceRow) -> f64 {
        let n = if row.detailed_monitoring {
            1
        } else {
            BASIC_WINDOW
        };
        (self.interval * n).as_secs_f64().max(1.0)
    }

    /// The window the status metrics of `at` belong to (one interval).
    fn window<'a>(&self, row: &'a InstanceRow, at: i64) -> Window<'a> {
        Window {
            instance_id: &row.id,
            vcpus: row.vcpus,
            start: at,
            high_resolution: self.high_resolution(),
        }
    }

    /// A burstable instance's credits when the sampler first sees its run: the balance last
    /// recorded in the past day, else the type's launch credits.
    fn starting_ledger(&self, row: &InstanceRow, now: i64) -> Option<Ledger> {
        let rates = host::compute::catalog::cpu_credits(&row.instance_type)?;
        let key = MetricKey::new(
            EC2_NAMESPACE,
            "CPUCreditBalance",
            vec![("InstanceId".into(), row.id.clone())],
        );
        let last = self
            .plane
            .metrics
            .points(&key, Resolution::Minute, now - 86_400, now + 1, None)
            .ok()
            .and_then(|p| p.last().cloned())
            .map(|p| p.aggregate.sum / p.aggregate.count.max(1.0));
        Some(Ledger::new(rates, last.unwrap_or(rates.launch)))
    }
}

/// The errors the block devices of a reading have counted.
fn block_errors(usage: &Usage) -> u64 {
    usage
        .devices
        .iter()
        .filter(|d| d.block_id().is_some())
        .map(|d| d.errors)
        .sum()
}

/// Where the sampler's first window of a vmm run starts: at the vmm's start with every
/// counter at zero when it started less than two windows ago (its counters count from
/// there), else at this reading (a vmm an earlier agent started: its past is not this
/// window's).
fn first_window_start(reading: &Reading, window_seconds: f64) -> Reading {
    let up = reading.usage.uptime_ms as f64 / 1e3;
    if reading.usage.uptime_ms == 0 || up >= 2.0 * window_seconds {
        return reading.clone();
    }
    Reading {
        at: reading.at - up,
        usage: Usage {
            vcpu_ns: reading.usage.vcpu_ns.map(|_| 0),
            devices: reading
                .usage
                .devices
                .iter()
                .map(|d| host::compute::usage::DeviceCounters {
                    device: d.device.clone(),
                    ..Default::default()
                })
                .collect(),
            uptime_ms: 0,
        },
    }
}

/// Waits until the next multiple of `interval` since the epoch (so windows line up with the
/// clock's minutes), then returns the time in seconds since the epoch.
pub async fn next_tick(interval: Duration) -> f64 {
    let now = epoch_seconds();
    let step = interval.as_secs_f64().max(1.0);
    let next = ((now / step).floor() + 1.0) * step;
    tokio::time::sleep(Duration::from_secs_f64((next - now).max(0.0))).await;
    epoch_seconds()
}

fn epoch_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use host::compute::usage::DeviceCounters;

    fn reading(at: f64, uptime_ms: u64) -> Reading {
        Reading {
            at,
            usage: Usage {
                vcpu_ns: Some(5_000_000_000),
                devices: vec![DeviceCounters {
                    device: "block vol0abc".into(),
                    bytes_out: 64 << 20,
                    ops_out: 64,
                    ..Default::default()
                }],
                uptime_ms,
            },
        }
    }

    #[test]
    fn a_new_vmm_counts_from_its_start_and_an_old_one_from_now() {
        // Started 3 s ago, windows of 5 s: the first window starts at its start, at zero.
        let first = first_window_start(&reading(1000.0, 3000), 5.0);
        assert_eq!(first.at, 997.0);
        assert_eq!(first.usage.vcpu_ns, Some(0));
        assert_eq!(first.usage.devices[0].bytes_out, 0);
        assert_eq!(first.usage.devices[0].device, "block vol0abc");
        // Running for an hour (an agent restarted under it): its past is not this window's.
        let old = reading(1000.0, 3_600_000);
        assert_eq!(first_window_start(&old, 5.0), old);
    }
}
