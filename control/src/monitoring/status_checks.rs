//! EC2's three status checks of each running instance, judged from what the sampler found
//! (pure: the facts and the time come in, the verdicts go out) and remembered between
//! samples on the [`StatusBoard`] that DescribeInstanceStatus reads.
//! - System: the vmm process is alive and answers its control socket, and the host has room
//!   for the instance's files.
//! - Instance: the guest answers ARP on its primary ENI. A guest that has never answered
//!   since it started is `initializing` for [`INITIALIZING_GRACE`] and then
//!   `insufficient-data` (a guest without a network); one that answered and then stops is
//!   `failed`.
//! - Attached EBS: every volume's file is readable and the vmm's block devices report no new
//!   errors (`NotApplicable` without volumes).

use std::collections::HashMap;
use std::sync::Mutex;

use host::network::reachability::Reach;

/// How long an instance that has not answered yet is `initializing`.
pub const INITIALIZING_GRACE: i64 = 300;

/// One check's verdict (EC2's `reachability` detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// `passed`.
    Passed,
    /// `failed`.
    Failed,
    /// `initializing`.
    Initializing,
    /// `insufficient-data`.
    InsufficientData,
    /// Nothing to check (the attached-EBS check of an instance without volumes).
    NotApplicable,
}

impl Check {
    /// The value of the `StatusCheckFailed*` metrics: 1 for failed, 0 otherwise.
    pub fn failed_metric(self) -> f64 {
        f64::from(u8::from(self == Check::Failed))
    }
}

/// What the sampler found about an instance at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// The vmm is alive and answered its `status`.
    pub vmm_answers: bool,
    /// The host has what the instance needs.
    pub host_ok: bool,
    /// The ARP check of the primary ENI (`None`: the instance has none).
    pub reach: Option<Reach>,
    /// Its volumes' files are readable and no block device reported new errors (`None`: no
    /// volumes).
    pub volumes_ok: Option<bool>,
}

/// An instance's three checks, each with the time it has been failing since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// When it was judged, in seconds since the epoch.
    pub at: i64,
    /// The system check.
    pub system: Check,
    /// Failing since (seconds since the epoch).
    pub system_since: Option<i64>,
    /// The instance check.
    pub instance: Check,
    /// Failing since.
    pub instance_since: Option<i64>,
    /// The attached-EBS check.
    pub ebs: Check,
    /// Failing since.
    pub ebs_since: Option<i64>,
}

/// What the board remembers of one instance's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// The vmm's start (pid start time): a new run starts afresh.
    run: u64,
    /// When this run was first seen.
    first_seen: i64,
    /// The guest has answered ARP during this run.
    answered: bool,
    health: Health,
}

/// The latest checks of every running instance.
#[derive(Debug, Default)]
pub struct StatusBoard {
    entries: Mutex<HashMap<String, Entry>>,
}

/// The instance check from the reachability fact and what is remembered of the run.
fn instance_check(f: &Facts, answered_before: bool, running_for: i64) -> Check {
    if !f.vmm_answers {
        return Check::Failed;
    }
    match f.reach {
        Some(Reach::Answered) => Check::Passed,
        Some(Reach::Silent) if answered_before => Check::Failed,
        Some(Reach::Silent) if running_for < INITIALIZING_GRACE => Check::Initializing,
        Some(Reach::Silent | Reach::Unchecked) | None => Check::InsufficientData,
    }
}

/// Since when a check has been failing: kept while it fails, set now when it starts to.
fn since(check: Check, before: Option<i64>, now: i64) -> Option<i64> {
    (check == Check::Failed).then(|| before.unwrap_or(now))
}

impl StatusBoard {
    /// Judges instance `id` (vmm run `run`) from `facts` at `now`, remembers and returns it.
    pub fn record(&self, id: &str, run: u64, facts: &Facts, now: i64) -> Health {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let prior = entries.get(id).filter(|e| e.run == run).copied();
        let first_seen = prior.map_or(now, |p| p.first_seen);
        let answered_before = prior.is_some_and(|p| p.answered);
        let system = if facts.vmm_answers && facts.host_ok {
            Check::Passed
        } else {
            Check::Failed
        };
        let instance = instance_check(facts, answered_before, now - first_seen);
        let ebs = match facts.volumes_ok {
            Some(true) => Check::Passed,
            Some(false) => Check::Failed,
            None => Check::NotApplicable,
        };
        let was = prior.map(|p| p.health);
        let health = Health {
            at: now,
            system,
            system_since: since(system, was.and_then(|h| h.system_since), now),
            instance,
            instance_since: since(instance, was.and_then(|h| h.instance_since), now),
            ebs,
            ebs_since: since(ebs, was.and_then(|h| h.ebs_since), now),
        };
        entries.insert(
            id.to_string(),
            Entry {
                run,
                first_seen,
                answered: answered_before || instance == Check::Passed,
                health,
            },
        );
        health
    }

    /// The latest checks of instance `id` (`None`: not judged since it last started).
    pub fn get(&self, id: &str) -> Option<Health> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(id).map(|e| e.health)
    }

    /// Forgets the instances that are not running runs `live` any more (stopped or gone).
    pub fn retain(&self, live: &HashMap<String, u64>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|id, e| live.get(id) == Some(&e.run));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: Facts = Facts {
        vmm_answers: true,
        host_ok: true,
        reach: Some(Reach::Answered),
        volumes_ok: Some(true),
    };

    fn silent() -> Facts {
        Facts {
            reach: Some(Reach::Silent),
            ..GOOD
        }
    }

    #[test]
    fn a_healthy_instance_passes_all_three() {
        let b = StatusBoard::default();
        let h = b.record("i-1", 7, &GOOD, 100);
        assert_eq!(
            (h.system, h.instance, h.ebs),
            (Check::Passed, Check::Passed, Check::Passed)
        );
        assert_eq!(b.get("i-1"), Some(h));
        assert_eq!(b.get("i-2"), None);
    }

    #[test]
    fn silence_before_the_first_answer_is_initializing_then_insufficient_data() {
        let b = StatusBoard::default();
        assert_eq!(
            b.record("i-1", 7, &silent(), 100).instance,
            Check::Initializing
        );
        let late = 100 + INITIALIZING_GRACE;
        assert_eq!(
            b.record("i-1", 7, &silent(), late).instance,
            Check::InsufficientData
        );
        // No ENI, or its tap could not be asked: no data either.
        let no_net = Facts {
            reach: None,
            ..GOOD
        };
        assert_eq!(
            b.record("i-2", 1, &no_net, 100).instance,
            Check::InsufficientData
        );
    }

    #[test]
    fn silence_after_an_answer_fails_since_the_first_silent_check() {
        let b = StatusBoard::default();
        b.record("i-1", 7, &GOOD, 100);
        let h = b.record("i-1", 7, &silent(), 110);
        assert_eq!((h.instance, h.instance_since), (Check::Failed, Some(110)));
        assert_eq!(b.record("i-1", 7, &silent(), 120).instance_since, Some(110));
        let h = b.record("i-1", 7, &GOOD, 130);
        assert_eq!((h.instance, h.instance_since), (Check::Passed, None));
        // A new run (stop and start, reboot) starts afresh.
        assert_eq!(
            b.record("i-1", 8, &silent(), 140).instance,
            Check::Initializing
        );
    }

    #[test]
    fn a_vmm_that_does_not_answer_or_a_full_host_fails_the_system_check() {
        let b = StatusBoard::default();
        let dead = Facts {
            vmm_answers: false,
            ..GOOD
        };
        let h = b.record("i-1", 7, &dead, 100);
        assert_eq!(
            (h.system, h.instance, h.system_since),
            (Check::Failed, Check::Failed, Some(100))
        );
        let full = Facts {
            host_ok: false,
            ..GOOD
        };
        assert_eq!(b.record("i-2", 7, &full, 100).system, Check::Failed);
        assert_eq!(Check::Failed.failed_metric(), 1.0);
        assert_eq!(Check::Initializing.failed_metric(), 0.0);
    }

    #[test]
    fn ebs_fails_on_bad_volumes_and_does_not_apply_without_any() {
        let b = StatusBoard::default();
        let bad = Facts {
            volumes_ok: Some(false),
            ..GOOD
        };
        assert_eq!(b.record("i-1", 7, &bad, 100).ebs, Check::Failed);
        let none = Facts {
            volumes_ok: None,
            ..GOOD
        };
        assert_eq!(b.record("i-2", 7, &none, 100).ebs, Check::NotApplicable);
    }

    #[test]
    fn instances_no_longer_running_are_forgotten() {
        let b = StatusBoard::default();
        b.record("i-1", 7, &GOOD, 100);
        b.record("i-2", 7, &GOOD, 100);
        b.retain(&HashMap::from([("i-1".to_string(), 7)]));
        assert!(b.get("i-1").is_some() && b.get("i-2").is_none());
    }
}
