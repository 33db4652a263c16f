//! Targets: RegisterTargets, DeregisterTargets (draining for the group's
//! `deregistration_delay.timeout_seconds`, then gone) and DescribeTargetHealth. These three
//! are also what Auto Scaling calls ([`TargetRef`], [`Plane::register_targets`],
//! [`Plane::deregister_targets`], [`Plane::target_health`]).

use std::collections::HashMap;
use std::net::Ipv4Addr;

use rusqlite::Connection;
use state::elbv2::{self as db, TargetGroupRow, TargetRow};

use super::error::ElbError;
use super::health::{self, Facts, TargetHealthRow};
use super::target_groups::{self, attributes_of, health_of, sync_users};
use super::{model, now_ms};
use crate::Plane;
use crate::effects::Effect;

/// The most targets a group holds.
pub const MAX_TARGETS: usize = 1000;

/// Why RegisterTargets is refused.
pub type RegisterTargetsError = ElbError;
/// Why DeregisterTargets is refused.
pub type DeregisterTargetsError = ElbError;
/// Why DescribeTargetHealth is refused.
pub type TargetHealthError = ElbError;

/// A target as a request names it: an instance id or an address, and a port (the group's
/// when `None`).
#[derive(Debug, Clone)]
pub struct TargetRef {
    /// `i-...` or an IPv4 address.
    pub id: String,
    /// Its port.
    pub port: Option<i32>,
}

/// The port of `t` in `tg`.
fn port_of(tg: &TargetGroupRow, t: &TargetRef) -> Result<i32, ElbError> {
    let port = t.port.unwrap_or(tg.port);
    if (1..=65535).contains(&port) {
        Ok(port)
    } else {
        Err(ElbError::Validation(
            "Target port must be between 1 and 65535".into(),
        ))
    }
}

/// The address traffic to target `id` of a group of `target_type` goes to, if it has one
/// now (an instance's primary private address).
pub fn address_of(conn: &Connection, target_type: &str, id: &str) -> Option<Ipv4Addr> {
    if target_type == "ip" {
        return id.parse().ok();
    }
    let enis = state::enis::of_instance(conn, id).ok()?;
    enis.iter()
        .find(|e| e.device_index == Some(0))
        .or(enis.first())
        .and_then(|e| e.private_ip.parse().ok())
}

/// Checks that `t` may be registered in `tg`.
fn check_target(conn: &Connection, tg: &TargetGroupRow, t: &TargetRef) -> Result<(), ElbError> {
    if tg.target_type == "ip" {
        let ip: Ipv4Addr = t.id.parse().map_err(|_| {
            ElbError::InvalidTarget(format!(
                "The IP address '{}' is not a valid IPv4 address",
                t.id
            ))
        })?;
        let vpc = state::vpcs::get_vpc(conn, &tg.vpc_id)?;
        let inside = vpc
            .and_then(|v| v.cidr.parse::<host::network::cidr::Cidr>().ok())
            .is_some_and(|c| c.contains(ip));
        if !inside {
            return Err(ElbError::InvalidTarget(format!(
                "The IP address '{ip}' is not within the CIDR of VPC '{}'",
                tg.vpc_id
            )));
        }
        return Ok(());
    }
    let Some(instance) = state::instances::get(conn, &t.id)? else {
        return Err(ElbError::InvalidTarget(format!(
            "The following targets are not valid instances: '{}'",
            t.id
        )));
    };
    let state = instance.state.name();
    if !matches!(state, "pending" | "running") {
        return Err(ElbError::InvalidTarget(format!(
            "The following targets are not in a running state and cannot be registered: '{}'",
            t.id
        )));
    }
    let in_vpc = state::enis::of_instance(conn, &t.id)?
        .iter()
        .any(|e| e.vpc_id == tg.vpc_id);
    if !in_vpc {
        return Err(ElbError::InvalidTarget(format!(
            "The following targets are not in the target group's VPC '{}': '{}'",
            tg.vpc_id, t.id
        )));
    }
    Ok(())
}

/// RegisterTargets.
pub fn register(
    conn: &Connection,
    arn: &str,
    targets: &[TargetRef],
) -> Result<Vec<Effect>, ElbError> {
    let tg = target_groups::get(conn, arn)?;
    if targets.is_empty() {
        return Err(ElbError::Validation(
            "At least one target must be specified".into(),
        ));
    }
    let mut rows = Vec::new();
    for t in targets {
        let port = port_of(&tg, t)?;
        check_target(conn, &tg, t)?;
        rows.push(TargetRow {
            tg_arn: arn.into(),
            target_id: t.id.clone(),
            port,
            registered_ms: now_ms(),
            drain_until_ms: None,
        });
    }
    for r in &rows {
        db::targets::register(conn, r)?;
    }
    if db::targets::targets_of(conn, arn)?.len() > MAX_TARGETS {
        return Err(ElbError::TooMany(
            "TooManyTargets",
            format!("A target group holds at most {MAX_TARGETS} targets"),
        ));
    }
    sync_users(conn, arn)
}

/// DeregisterTargets: each registered target starts draining (or goes at once with a delay
/// of 0); a target that is not registered is refused, as ELB does.
pub fn deregister(
    conn: &Connection,
    arn: &str,
    targets: &[TargetRef],
) -> Result<Vec<Effect>, ElbError> {
    let tg = target_groups::get(conn, arn)?;
    let delay: i64 = attributes_of(&tg)
        .get("deregistration_delay.timeout_seconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let registered = db::targets::targets_of(conn, arn)?;
    for t in targets {
        let port = port_of(&tg, t)?;
        let known = registered
            .iter()
            .any(|r| r.target_id == t.id && r.port == port);
        if !known {
            return Err(ElbError::InvalidTarget(format!(
                "The following targets are not registered in target group '{}': '{}'",
                tg.name, t.id
            )));
        }
        db::targets::start_draining(conn, arn, &t.id, port, now_ms() + delay * 1000)?;
    }
    if delay == 0 {
        db::targets::end_draining(conn, now_ms())?;
    }
    sync_users(conn, arn)
}

impl Plane {
    /// RegisterTargets: records the targets and has every load balancer using the group
    /// take them (in the background, right after).
    pub fn register_targets(
        &self,
        target_group_arn: &str,
        targets: &[TargetRef],
    ) -> Result<(), RegisterTargetsError> {
        self.elb_write(|tx| {
            let effects = register(tx, target_group_arn, targets)?;
            let tg = target_groups::get(tx, target_group_arn)?;
            for t in targets {
                let server = host::elb::spec::server_name(&t.id, t.port.unwrap_or(tg.port));
                self.elb_health.forget(target_group_arn, &server);
            }
            Ok(((), effects))
        })
    }

    /// DeregisterTargets: the targets stop getting new requests at once and drain.
    pub fn deregister_targets(
        &self,
        target_group_arn: &str,
        targets: &[TargetRef],
    ) -> Result<(), DeregisterTargetsError> {
        self.elb_write(|tx| Ok(((), deregister(tx, target_group_arn, targets)?)))
    }

    /// DescribeTargetHealth for every registered target of the group.
    pub fn target_health(
        &self,
        target_group_arn: &str,
    ) -> Result<Vec<TargetHealthRow>, TargetHealthError> {
        let (tg, targets, lb, instances) = {
            let conn = self.db.lock();
            let tg = target_groups::get(&conn, target_group_arn)?;
            let targets = db::targets::targets_of(&conn, target_group_arn)?;
            let lb = db::lbs_of_tg(&conn, target_group_arn)?.into_iter().next();
            let mut instances = HashMap::new();
            if tg.target_type == "instance" {
                for t in &targets {
                    if let Some(i) = state::instances::get(&conn, &t.target_id)? {
                        instances.insert(t.target_id.clone(), i.state.name().to_string());
                    }
                }
            }
            (tg, targets, lb, instances)
        };
        let stats = match &lb {
            Some(lb) => super::blocking(|| self.elb.stats(model::arn_id(lb))).unwrap_or_default(),
            None => Vec::new(),
        };
        let backend = super::model::backend_name(&tg.arn);
        let checks_enabled = health_of(&tg).enabled;
        let mut out = Vec::new();
        for t in targets {
            let server = host::elb::spec::server_name(&t.target_id, t.port);
            let stat = stats
                .iter()
                .find(|s| s.proxy == backend && s.name == server);
            let facts = Facts {
                draining: t.drain_until_ms.is_some(),
                instance_state: if tg.target_type == "instance" {
                    Some(
                        instances
                            .get(&t.target_id)
                            .map_or("terminated", String::as_str),
                    )
                } else {
                    None
                },
                in_use: lb.is_some(),
                checks_enabled,
            };
            let key = (lb.clone().unwrap_or_default(), tg.arn.clone(), server);
            let (state, reason, description) =
                health::assess(facts, stat, self.elb_health.get(&key));
            if matches!(
                state,
                health::TargetState::Healthy | health::TargetState::Unhealthy
            ) {
                self.elb_health.put(key, state);
            }
            out.push(TargetHealthRow {
                id: t.target_id,
                port: t.port,
                state,
                reason,
                description,
            });
        }
        Ok(out)
    }
}
