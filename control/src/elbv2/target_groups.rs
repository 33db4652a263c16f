//! Target groups: CreateTargetGroup (idempotent for the same settings), ModifyTargetGroup
//! (health check), DeleteTargetGroup (refused while a listener or rule forwards to it), their
//! attributes, and what Describe reads.

use rusqlite::Connection;
use state::elbv2::{self as db, TargetGroupRow};

use super::error::ElbError;
use super::model::{self, Attributes, HealthCheck};
use super::now_ms;
use crate::Plane;
use crate::effects::Effect;

/// The most target groups the agent keeps.
pub const MAX_TARGET_GROUPS: usize = 3000;

/// What CreateTargetGroup asks for (`None`: ELB's default).
#[derive(Debug, Clone, Default)]
pub struct NewTargetGroup {
    /// Its name.
    pub name: String,
    /// `HTTP`, `HTTPS` or `TCP`.
    pub protocol: Option<String>,
    /// The targets' port.
    pub port: Option<i32>,
    /// Its VPC.
    pub vpc_id: Option<String>,
    /// `instance` or `ip`.
    pub target_type: Option<String>,
    /// Health check settings given.
    pub health: HealthChange,
    /// Its tags.
    pub tags: Vec<(String, String)>,
}

/// Health check settings a request gives (CreateTargetGroup, ModifyTargetGroup).
#[derive(Debug, Clone, Default)]
pub struct HealthChange {
    /// `HealthCheckEnabled`.
    pub enabled: Option<bool>,
    /// `HealthCheckProtocol`.
    pub protocol: Option<String>,
    /// `HealthCheckPort`.
    pub port: Option<String>,
    /// `HealthCheckPath`.
    pub path: Option<String>,
    /// `HealthCheckIntervalSeconds`.
    pub interval: Option<i32>,
    /// `HealthCheckTimeoutSeconds`.
    pub timeout: Option<i32>,
    /// `HealthyThresholdCount`.
    pub healthy: Option<i32>,
    /// `UnhealthyThresholdCount`.
    pub unhealthy: Option<i32>,
    /// `Matcher.HttpCode`.
    pub matcher: Option<String>,
}

impl HealthChange {
    /// `base` with these settings applied, checked.
    pub fn applied_to(&self, mut h: HealthCheck) -> Result<HealthCheck, ElbError> {
        if let Some(v) = self.enabled {
            h.enabled = v;
        }
        if let Some(p) = &self.protocol {
            h.protocol = p.clone();
            if p == "TCP" {
                h.path = None;
                h.matcher = None;
            } else if h.path.is_none() {
                h.path = Some("/".into());
                h.matcher = Some("200".into());
            }
        }
        if let Some(v) = &self.port {
            h.port = v.clone();
        }
        if let Some(v) = &self.path {
            h.path = Some(v.clone());
        }
        if let Some(v) = self.interval {
            h.interval = v;
        }
        if let Some(v) = self.timeout {
            h.timeout = v;
        }
        if let Some(v) = self.healthy {
            h.healthy = v;
        }
        if let Some(v) = self.unhealthy {
            h.unhealthy = v;
        }
        if let Some(v) = &self.matcher {
            h.matcher = Some(v.clone());
        }
        if h.protocol == "TCP" && (self.path.is_some() || self.matcher.is_some()) {
            return Err(ElbError::Validation(
                "Health check path and matcher are not supported for TCP health checks".into(),
            ));
        }
        h.check()?;
        Ok(h)
    }
}

/// A target group's stored health check.
pub fn health_of(tg: &TargetGroupRow) -> HealthCheck {
    serde_json::from_str(&tg.health_check)
        .unwrap_or_else(|_| HealthCheck::default_for(&tg.protocol))
}

/// A target group's attributes (defaults filled in).
pub fn attributes_of(tg: &TargetGroupRow) -> Attributes {
    let mut a = model::tg_attribute_defaults();
    a.extend(model::from_json::<Attributes>(&tg.attributes));
    a
}

/// The target group `arn`.
pub fn get(conn: &Connection, arn: &str) -> Result<TargetGroupRow, ElbError> {
    db::targets::tg_by_arn(conn, arn)?.ok_or(ElbError::TargetGroupNotFound)
}

/// CreateTargetGroup: gives the group (the existing one for the same name and settings).
pub fn create(
    conn: &Connection,
    account: &str,
    req: &NewTargetGroup,
) -> Result<TargetGroupRow, ElbError> {
    if !model::well_formed_name(&req.name) {
        return Err(ElbError::Validation(format!(
            "Target group name '{}' must be 1 to 32 alphanumeric characters or hyphens, not starting or ending with a hyphen",
            req.name
        )));
    }
    let target_type = req.target_type.clone().unwrap_or_else(|| "instance".into());
    if !matches!(target_type.as_str(), "instance" | "ip") {
        return Err(ElbError::Validation(format!(
            "Target type '{target_type}' is not supported here: 'instance' or 'ip'"
        )));
    }
    let protocol = req
        .protocol
        .clone()
        .ok_or_else(|| ElbError::Validation("A protocol must be specified".into()))?;
    if !matches!(protocol.as_str(), "HTTP" | "HTTPS" | "TCP") {
        return Err(ElbError::UnsupportedProtocol(format!(
            "Protocol '{protocol}' is not supported here: HTTP, HTTPS or TCP"
        )));
    }
    let port = req
        .port
        .ok_or_else(|| ElbError::Validation("A port must be specified".into()))?;
    if !(1..=65535).contains(&port) {
        return Err(ElbError::Validation(
            "Port must be between 1 and 65535".into(),
        ));
    }
    let vpc_id = req
        .vpc_id
        .clone()
        .ok_or_else(|| ElbError::Validation("A VPC ID must be specified".into()))?;
    if state::vpcs::get_vpc(conn, &vpc_id)?.is_none() {
        return Err(ElbError::Validation(format!(
            "The VPC ID '{vpc_id}' is not found"
        )));
    }
    let health = req.health.applied_to(HealthCheck::default_for(&protocol))?;
    super::tags::check_new(&req.tags)?;
    let health_text = model::to_json(&health);
    if let Some(existing) = db::targets::tg_by_name(conn, &req.name)? {
        let same = existing.protocol == protocol
            && existing.port == port
            && existing.vpc_id == vpc_id
            && existing.target_type == target_type
            && existing.health_check == health_text;
        return if same {
            Ok(existing)
        } else {
            Err(ElbError::DuplicateTargetGroupName(req.name.clone()))
        };
    }
    if db::targets::tgs(conn)?.len() >= MAX_TARGET_GROUPS {
        return Err(ElbError::TooMany(
            "TooManyTargetGroups",
            format!("The agent keeps at most {MAX_TARGET_GROUPS} target groups"),
        ));
    }
    let row = TargetGroupRow {
        seq: 0,
        arn: model::tg_arn(account, &req.name, &model::new_id()),
        name: req.name.clone(),
        protocol,
        port,
        vpc_id,
        target_type,
        health_check: health_text,
        attributes: "{}".into(),
        created_ms: now_ms(),
    };
    db::targets::insert_tg(conn, &row)?;
    db::put_tags(conn, &row.arn, &req.tags)?;
    Ok(row)
}

/// Effects that bring every load balancer using target group `arn` in line.
pub fn sync_users(conn: &Connection, arn: &str) -> Result<Vec<Effect>, ElbError> {
    Ok(db::lbs_of_tg(conn, arn)?
        .into_iter()
        .map(|lb| Effect::SyncLoadBalancer { arn: lb })
        .collect())
}

/// ModifyTargetGroup: new health check settings.
pub fn modify(
    conn: &Connection,
    arn: &str,
    change: &HealthChange,
) -> Result<(TargetGroupRow, Vec<Effect>), ElbError> {
    let tg = get(conn, arn)?;
    let health = change.applied_to(health_of(&tg))?;
    db::targets::update_tg(conn, arn, &model::to_json(&health), &tg.attributes)?;
    let effects = sync_users(conn, arn)?;
    Ok((get(conn, arn)?, effects))
}

/// DeleteTargetGroup.
pub fn delete(conn: &Connection, arn: &str) -> Result<(), ElbError> {
    if db::targets::tg_by_arn(conn, arn)?.is_none() {
        // ELB answers success for a group that is already gone.
        return Ok(());
    }
    if let Some(lb) = db::lbs_of_tg(conn, arn)?.first() {
        return Err(ElbError::ResourceInUse(format!(
            "Target group '{arn}' is currently in use by a listener or a rule of '{lb}'"
        )));
    }
    db::targets::delete_tg(conn, arn)?;
    Ok(())
}

/// ModifyTargetGroupAttributes: gives every attribute after the change.
pub fn modify_attributes(
    conn: &Connection,
    arn: &str,
    changes: &[(String, String)],
) -> Result<(Attributes, Vec<Effect>), ElbError> {
    let tg = get(conn, arn)?;
    if changes.is_empty() {
        return Err(ElbError::Validation(
            "At least one attribute must be specified".into(),
        ));
    }
    let mut stored: Attributes = model::from_json(&tg.attributes);
    for (k, v) in changes {
        model::check_tg_attribute(k, v)?;
        stored.insert(k.clone(), v.clone());
    }
    db::targets::update_tg(conn, arn, &tg.health_check, &model::to_json(&stored))?;
    let effects = sync_users(conn, arn)?;
    Ok((attributes_of(&get(conn, arn)?), effects))
}

impl Plane {
    /// CreateTargetGroup.
    pub fn create_target_group(&self, req: &NewTargetGroup) -> Result<TargetGroupRow, ElbError> {
        self.elb_write(|tx| Ok((create(tx, &self.account_id, req)?, Vec::new())))
    }

    /// ModifyTargetGroup.
    pub fn modify_target_group(
        &self,
        arn: &str,
        change: &HealthChange,
    ) -> Result<TargetGroupRow, ElbError> {
        self.elb_write(|tx| modify(tx, arn, change))
    }

    /// DeleteTargetGroup.
    pub fn delete_target_group(&self, arn: &str) -> Result<(), ElbError> {
        self.elb_write(|tx| Ok((delete(tx, arn)?, Vec::new())))
    }

    /// ModifyTargetGroupAttributes.
    pub fn modify_target_group_attributes(
        &self,
        arn: &str,
        changes: &[(String, String)],
    ) -> Result<Attributes, ElbError> {
        self.elb_write(|tx| modify_attributes(tx, arn, changes))
    }
}
