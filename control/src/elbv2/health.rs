//! A target's health as ELB reports it, from what the agent knows of it (registered or
//! draining, its instance's state, whether a load balancer uses its group) and from
//! HAProxy's checks (`show stat`'s `status` and `check_status`).

use host::elb::StatRow;

/// ELB's target states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetState {
    /// Registered, first checks under way.
    Initial,
    /// Passing its checks.
    Healthy,
    /// Failing its checks.
    Unhealthy,
    /// Not in use: no load balancer uses its group, or its instance is not running.
    Unused,
    /// Deregistered, finishing its connections.
    Draining,
    /// Health checks are off.
    Unavailable,
}

impl TargetState {
    /// ELB's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Unused => "unused",
            Self::Draining => "draining",
            Self::Unavailable => "unavailable",
        }
    }
}

/// One target's health (DescribeTargetHealth's `TargetHealthDescription`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealthRow {
    /// The instance id or address.
    pub id: String,
    /// Its port.
    pub port: i32,
    /// Its state.
    pub state: TargetState,
    /// ELB's reason code (none when healthy).
    pub reason: Option<&'static str>,
    /// ELB's description of the reason.
    pub description: Option<String>,
}

/// What decides a target's state besides HAProxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts<'a> {
    /// Deregistered and draining.
    pub draining: bool,
    /// For an instance target, its state's name (`running`, `stopped`, ...).
    pub instance_state: Option<&'a str>,
    /// Whether a load balancer forwards to its group.
    pub in_use: bool,
    /// Whether its group checks health.
    pub checks_enabled: bool,
}

/// The state, reason and description of a target from `facts` and HAProxy's row for it
/// (`None`: HAProxy does not know it yet); `settled` is the last non-initial state seen,
/// used while a reloaded HAProxy has not checked the target again.
pub fn assess(
    facts: Facts<'_>,
    stat: Option<&StatRow>,
    settled: Option<TargetState>,
) -> (TargetState, Option<&'static str>, Option<String>) {
    use TargetState::*;
    if facts.draining {
        return (
            Draining,
            Some("Target.DeregistrationInProgress"),
            Some("Target deregistration is in progress".into()),
        );
    }
    if let Some(state) = facts.instance_state
        && state != "running"
    {
        return (
            Unused,
            Some("Target.InvalidState"),
            Some(format!("Target is in the {state} state")),
        );
    }
    if !facts.in_use {
        return (
            Unused,
            Some("Target.NotInUse"),
            Some("Target group is not configured to receive traffic from the load balancer".into()),
        );
    }
    if !facts.checks_enabled {
        return (
            Unavailable,
            Some("Target.HealthCheckDisabled"),
            Some("Health checks are disabled".into()),
        );
    }
    let Some(stat) = stat else {
        return (
            Initial,
            Some("Elb.RegistrationInProgress"),
            Some("Target registration is in progress".into()),
        );
    };
    let up = stat.status == "UP" || stat.status.starts_with("UP ");
    let unchecked = stat.check_status.is_empty() || stat.check_status == "INI";
    if unchecked {
        return match settled {
            Some(Healthy) if up => (Healthy, None, None),
            Some(Unhealthy) if !up => failed(stat),
            _ => (
                Initial,
                Some("Elb.InitialHealthChecking"),
                Some("Initial health checks in progress".into()),
            ),
        };
    }
    if up {
        return (Healthy, None, None);
    }
    // Down but passing its checks: rising to its healthy threshold. A target that was never
    // healthy (a new one) is still in its initial checks.
    let passing = matches!(stat.check_status.as_str(), "L4OK" | "L6OK" | "L7OK");
    if passing && settled != Some(Unhealthy) {
        return (
            Initial,
            Some("Elb.InitialHealthChecking"),
            Some("Initial health checks in progress".into()),
        );
    }
    failed(stat)
}

fn failed(stat: &StatRow) -> (TargetState, Option<&'static str>, Option<String>) {
    let (reason, description) = match stat.check_status.as_str() {
        "L7STS" => (
            "Target.ResponseCodeMismatch",
            format!(
                "Health checks failed with these codes: [{}]",
                stat.check_code.map_or("-".into(), |c| c.to_string())
            ),
        ),
        "L4TOUT" | "L7TOUT" => ("Target.Timeout", "Request timed out".to_string()),
        _ => (
            "Target.FailedHealthChecks",
            "Health checks failed".to_string(),
        ),
    };
    (TargetState::Unhealthy, Some(reason), Some(description))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts<'static> {
        Facts {
            draining: false,
            instance_state: Some("running"),
            in_use: true,
            checks_enabled: true,
        }
    }

    fn stat(status: &str, check: &str, code: Option<u16>) -> StatRow {
        StatRow {
            status: status.into(),
            check_status: check.into(),
            check_code: code,
            ..StatRow::default()
        }
    }

    #[test]
    fn what_the_agent_knows_comes_first() {
        let s = stat("UP", "L7OK", Some(200));
        let draining = Facts {
            draining: true,
            ..facts()
        };
        assert_eq!(
            assess(draining, Some(&s), None).1,
            Some("Target.DeregistrationInProgress")
        );
        let stopped = Facts {
            instance_state: Some("stopped"),
            ..facts()
        };
        let (state, reason, text) = assess(stopped, Some(&s), None);
        assert_eq!(
            (state, reason),
            (TargetState::Unused, Some("Target.InvalidState"))
        );
        assert_eq!(text.unwrap(), "Target is in the stopped state");
        let unused = Facts {
            in_use: false,
            ..facts()
        };
        assert_eq!(assess(unused, Some(&s), None).1, Some("Target.NotInUse"));
        let off = Facts {
            checks_enabled: false,
            ..facts()
        };
        assert_eq!(assess(off, Some(&s), None).0, TargetState::Unavailable);
        assert_eq!(
            assess(facts(), None, None).1,
            Some("Elb.RegistrationInProgress")
        );
    }

    #[test]
    fn haproxys_checks_map_to_states_and_reasons() {
        let f = facts();
        assert_eq!(
            assess(f, Some(&stat("UP", "INI", None)), None).1,
            Some("Elb.InitialHealthChecking")
        );
        assert_eq!(
            assess(f, Some(&stat("UP", "L7OK", Some(200))), None),
            (TargetState::Healthy, None, None)
        );
        assert_eq!(
            assess(f, Some(&stat("UP 1/2", "L4TOUT", None)), None).0,
            TargetState::Healthy
        );
        let (state, reason, text) = assess(f, Some(&stat("DOWN", "L7STS", Some(503))), None);
        assert_eq!(
            (state, reason),
            (TargetState::Unhealthy, Some("Target.ResponseCodeMismatch"))
        );
        assert_eq!(
            text.unwrap(),
            "Health checks failed with these codes: [503]"
        );
        assert_eq!(
            assess(f, Some(&stat("DOWN", "L4TOUT", None)), None).1,
            Some("Target.Timeout")
        );
        assert_eq!(
            assess(f, Some(&stat("DOWN 1/3", "L4CON", None)), None).1,
            Some("Target.FailedHealthChecks")
        );
        // A new target, started down, rising through its healthy threshold.
        let rising = stat("DOWN 1/2", "L7OK", Some(200));
        assert_eq!(assess(f, Some(&rising), None).0, TargetState::Initial);
        let back = assess(f, Some(&rising), Some(TargetState::Unhealthy));
        assert_eq!(back.0, TargetState::Unhealthy);
    }

    #[test]
    fn a_reloaded_haproxy_keeps_the_settled_state_until_it_checks_again() {
        let f = facts();
        let fresh = stat("UP", "INI", None);
        assert_eq!(
            assess(f, Some(&fresh), Some(TargetState::Healthy)).0,
            TargetState::Healthy
        );
        let down = stat("DOWN", "INI", None);
        assert_eq!(
            assess(f, Some(&down), Some(TargetState::Unhealthy)).0,
            TargetState::Unhealthy
        );
        assert_eq!(
            assess(f, Some(&fresh), Some(TargetState::Unhealthy)).0,
            TargetState::Initial
        );
    }
}
