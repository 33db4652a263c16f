//! The one door to the load balancers' target groups: registering a group's instances,
//! deregistering them (draining) before they go, and the targets' health for
//! `HealthCheckType=ELB`.

use crate::Plane;

/// A target's health as Auto Scaling reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetHealth {
    /// Not (or no longer) registered, or not known.
    Absent,
    /// Registered and not unhealthy (initial, healthy).
    Fine,
    /// Failing its health checks.
    Unhealthy,
    /// Deregistered, its connections draining.
    Draining,
}

/// Whether target group `arn` exists.
pub fn exists(plane: &Plane, arn: &str) -> bool {
    let _ = (plane, arn);
    false
}

/// Registers `instance` in the target groups `arns`.
pub fn register(plane: &Plane, arns: &[String], instance: &str) -> Result<(), String> {
    let _ = (plane, instance);
    if arns.is_empty() {
        Ok(())
    } else {
        Err("load balancers are not available on this agent".into())
    }
}

/// Deregisters `instance` from the target groups `arns`.
pub fn deregister(plane: &Plane, arns: &[String], instance: &str) -> Result<(), String> {
    let _ = (plane, instance, arns);
    Ok(())
}

/// `instance`'s health in the target groups `arns`: the worst of them.
pub fn health(plane: &Plane, arns: &[String], instance: &str) -> TargetHealth {
    let _ = (plane, arns, instance);
    TargetHealth::Absent
}
