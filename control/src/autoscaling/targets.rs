//! The one door to the load balancers' target groups (`control::elbv2`): registering a
//! group's instances, deregistering them (draining) before they go, and the targets' health
//! for `HealthCheckType=ELB`. ELB's calls take the state database's lock, so they run as
//! blocking work (`block_in_place` on the agent's runtime).

use crate::Plane;
use crate::elbv2::{TargetRef, TargetState};

/// A target's health as Auto Scaling reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetHealth {
    /// Not (or no longer) registered, or not known.
    Absent,
    /// Registered and not unhealthy (initial, healthy, unused).
    Fine,
    /// Failing its health checks.
    Unhealthy,
    /// Deregistered, its connections draining.
    Draining,
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

fn target(instance: &str) -> [TargetRef; 1] {
    [TargetRef {
        id: instance.to_string(),
        port: None,
    }]
}

/// Whether target group `arn` exists.
pub fn exists(plane: &Plane, arn: &str) -> bool {
    blocking(|| crate::elbv2::target_groups::get(&plane.db.lock(), arn).is_ok())
}

/// Registers `instance` in the target groups `arns`.
pub fn register(plane: &Plane, arns: &[String], instance: &str) -> Result<(), String> {
    blocking(|| {
        for a in arns {
            plane
                .register_targets(a, &target(instance))
                .map_err(|e| format!("{a}: {e}"))?;
        }
        Ok(())
    })
}

/// Deregisters `instance` from the target groups `arns` (those already gone are fine).
pub fn deregister(plane: &Plane, arns: &[String], instance: &str) -> Result<(), String> {
    blocking(|| {
        for a in arns.iter().filter(|a| exists(plane, a)) {
            plane
                .deregister_targets(a, &target(instance))
                .map_err(|e| format!("{a}: {e}"))?;
        }
        Ok(())
    })
}

/// `instance`'s health in the target groups `arns`: draining in any, else unhealthy in
/// any, else registered in one, else absent.
pub fn health(plane: &Plane, arns: &[String], instance: &str) -> TargetHealth {
    if arns.is_empty() {
        return TargetHealth::Absent;
    }
    let states: Vec<TargetState> = blocking(|| {
        arns.iter()
            .filter_map(|a| plane.target_health(a).ok())
            .flatten()
            .filter(|r| r.id == instance)
            .map(|r| r.state)
            .collect()
    });
    if states.contains(&TargetState::Draining) {
        TargetHealth::Draining
    } else if states.contains(&TargetState::Unhealthy) {
        TargetHealth::Unhealthy
    } else if states.is_empty() {
        TargetHealth::Absent
    } else {
        TargetHealth::Fine
    }
}

/// The targets registered in `arn` (draining ones too).
pub fn registered(plane: &Plane, arn: &str) -> Vec<String> {
    blocking(|| {
        plane
            .target_health(arn)
            .map(|rows| rows.into_iter().map(|r| r.id).collect())
            .unwrap_or_default()
    })
}

/// Registers the in-service members of group `g` that a target group of it lacks (a group
/// whose target groups were attached after its instances started).
pub fn sync_members(plane: &Plane, g: &super::model::Group) -> rusqlite::Result<()> {
    if g.config.target_groups.is_empty() || g.config.suspended("AddToLoadBalancer") {
        return Ok(());
    }
    let members = state::autoscaling::members_of(&plane.db.lock(), &g.name)?;
    for tg in &g.config.target_groups {
        let there = registered(plane, tg);
        for m in members
            .iter()
            .filter(|m| m.lifecycle == super::model::IN_SERVICE && !there.contains(&m.instance_id))
        {
            if let Err(e) = register(plane, std::slice::from_ref(tg), &m.instance_id) {
                tracing::warn!(instance = %m.instance_id, error = %e, "cannot register with a target group");
            }
        }
    }
    Ok(())
}

/// Deregisters every member of group `name` from the target groups `arns` (detached from
/// the group).
pub fn deregister_members(plane: &Plane, name: &str, arns: &[String]) -> rusqlite::Result<()> {
    let members = state::autoscaling::members_of(&plane.db.lock(), name)?;
    for m in members {
        if let Err(e) = deregister(plane, arns, &m.instance_id) {
            tracing::warn!(instance = %m.instance_id, error = %e, "cannot deregister from a target group");
        }
    }
    Ok(())
}
