//! Which instances a scale in terminates and which subnet a launch goes to (pure).
//!
//! As on AWS, a scale in first keeps the group balanced: it takes from the subnet (zone)
//! with the most instances; then the group's termination policies narrow the choice in
//! order (`OldestInstance`, `NewestInstance`, `OldestLaunchTemplate` /
//! `OldestLaunchConfiguration`, `ClosestToNextInstanceHour`; `Default` is
//! `OldestLaunchTemplate` then `ClosestToNextInstanceHour`); what is left is chosen by
//! instance id. Instances protected from scale in are never chosen. A launch goes to the
//! group's subnet with the fewest instances, the first listed on a tie.

/// An instance that may be terminated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its id.
    pub id: String,
    /// Its subnet.
    pub subnet: String,
    /// When it was launched, in milliseconds since the epoch.
    pub launched_ms: i64,
    /// Whether it runs the group's current launch template and version.
    pub current_template: bool,
    /// Protected from scale in.
    pub protected: bool,
}

/// Chooses `n` instances to terminate among `candidates` at `now_ms`, in order.
pub fn choose(candidates: &[Candidate], policies: &[String], n: usize, now_ms: i64) -> Vec<String> {
    let mut left: Vec<Candidate> = candidates
        .iter()
        .filter(|c| !c.protected)
        .cloned()
        .collect();
    let mut chosen = Vec::new();
    while chosen.len() < n && !left.is_empty() {
        let Some(id) = choose_one(&left, candidates, &chosen, policies, now_ms) else {
            break;
        };
        left.retain(|c| c.id != id);
        chosen.push(id);
    }
    chosen
}

/// One victim: from the busiest subnet (counting every instance not yet chosen), then by
/// the policies.
fn choose_one(
    left: &[Candidate],
    all: &[Candidate],
    chosen: &[String],
    policies: &[String],
    now_ms: i64,
) -> Option<String> {
    let remaining: Vec<&Candidate> = all.iter().filter(|c| !chosen.contains(&c.id)).collect();
    let count = |subnet: &str| remaining.iter().filter(|c| c.subnet == subnet).count();
    let busiest = left.iter().map(|c| count(&c.subnet)).max()?;
    let mut set: Vec<&Candidate> = left
        .iter()
        .filter(|c| count(&c.subnet) == busiest)
        .collect();
    for p in policies {
        let steps: Vec<&str> = if p == "Default" {
            vec!["OldestLaunchTemplate", "ClosestToNextInstanceHour"]
        } else {
            vec![p.as_str()]
        };
        for step in steps {
            set = narrow(set, step, now_ms);
        }
        if set.len() == 1 {
            break;
        }
    }
    set.iter().map(|c| c.id.clone()).min()
}

/// Keeps the candidates policy `step` prefers.
fn narrow<'a>(set: Vec<&'a Candidate>, step: &str, now_ms: i64) -> Vec<&'a Candidate> {
    let keep_by = |key: &dyn Fn(&Candidate) -> i64| -> Vec<&'a Candidate> {
        let Some(best) = set.iter().map(|c| key(c)).max() else {
            return set.clone();
        };
        set.iter().copied().filter(|c| key(c) == best).collect()
    };
    match step {
        "OldestInstance" => keep_by(&|c| -c.launched_ms),
        "NewestInstance" => keep_by(&|c| c.launched_ms),
        "OldestLaunchTemplate" | "OldestLaunchConfiguration" => {
            keep_by(&|c| i64::from(!c.current_template))
        }
        "ClosestToNextInstanceHour" => keep_by(&|c| (now_ms - c.launched_ms).rem_euclid(3_600_000)),
        _ => set,
    }
}

/// The subnet the next launch goes to: the one of `subnets` with the fewest of
/// `occupied` (one entry per instance), the first listed on a tie.
pub fn launch_subnet<'a>(subnets: &'a [String], occupied: &[&str]) -> Option<&'a str> {
    subnets
        .iter()
        .enumerate()
        .min_by_key(|(i, s)| (occupied.iter().filter(|o| **o == s.as_str()).count(), *i))
        .map(|(_, s)| s.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn c(id: &str, subnet: &str, launched_ms: i64) -> Candidate {
        Candidate {
            id: id.into(),
            subnet: subnet.into(),
            launched_ms,
            current_template: true,
            protected: false,
        }
    }

    fn p(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn oldest_and_newest_instance() {
        let all = [c("i-a", "s1", 10), c("i-b", "s1", 30), c("i-c", "s1", 20)];
        assert_eq!(
            choose(&all, &p(&["OldestInstance"]), 2, HOUR),
            ["i-a", "i-c"]
        );
        assert_eq!(choose(&all, &p(&["NewestInstance"]), 1, HOUR), ["i-b"]);
    }

    #[test]
    fn the_busiest_subnet_goes_first_whatever_the_policy() {
        let all = [c("i-a", "s1", 10), c("i-b", "s2", 30), c("i-c", "s2", 20)];
        // NewestInstance alone would pick i-b; oldest in s2 is i-c.
        assert_eq!(choose(&all, &p(&["OldestInstance"]), 1, HOUR), ["i-c"]);
        // Two out: one from s2, then the subnets are even and the oldest of all goes.
        assert_eq!(
            choose(&all, &p(&["OldestInstance"]), 2, HOUR),
            ["i-c", "i-a"]
        );
    }

    #[test]
    fn protected_instances_are_kept() {
        let mut all = vec![c("i-a", "s1", 10), c("i-b", "s1", 20)];
        all[0].protected = true;
        assert_eq!(choose(&all, &p(&["OldestInstance"]), 2, HOUR), ["i-b"]);
    }

    #[test]
    fn default_prefers_an_old_template_then_the_next_instance_hour() {
        let mut all = vec![
            c("i-a", "s1", 0),
            c("i-b", "s1", 50 * 60_000),
            c("i-c", "s1", 20 * 60_000),
        ];
        // At 1:00, i-b is 10 minutes into its hour, i-c 40 and i-a 60 (0): i-c is closest.
        assert_eq!(choose(&all, &p(&["Default"]), 1, HOUR), ["i-c"]);
        all[1].current_template = false;
        assert_eq!(choose(&all, &p(&["Default"]), 1, HOUR), ["i-b"]);
        assert_eq!(
            choose(&all, &p(&["OldestLaunchTemplate"]), 1, HOUR),
            ["i-b"]
        );
    }

    #[test]
    fn launches_fill_the_emptiest_subnet() {
        let subnets = p(&["s1", "s2", "s3"]);
        assert_eq!(launch_subnet(&subnets, &[]), Some("s1"));
        assert_eq!(launch_subnet(&subnets, &["s1"]), Some("s2"));
        assert_eq!(launch_subnet(&subnets, &["s1", "s2", "s1"]), Some("s3"));
        assert_eq!(
            launch_subnet(&subnets, &["s1", "s2", "s3", "s2"]),
            Some("s1")
        );
        assert_eq!(launch_subnet(&[], &[]), None);
    }
}
