//! Target groups and targets: CreateTargetGroup, DescribeTargetGroups, ModifyTargetGroup,
//! DeleteTargetGroup, their attributes, RegisterTargets, DeregisterTargets and
//! DescribeTargetHealth.

use control::elbv2::target_groups::{self, HealthChange, NewTargetGroup};
use control::elbv2::{ElbError, TargetRef};
use serde_json::Value;
use shapes::elbv2::{
    CreateTargetGroupOutput, DescribeTargetGroupAttributesOutput, DescribeTargetGroupsOutput,
    DescribeTargetHealthOutput, Matcher, ModifyTargetGroupAttributesOutput,
    ModifyTargetGroupOutput, ProtocolEnum, TargetDescription, TargetGroup, TargetGroupAttribute,
    TargetHealth, TargetHealthDescription, TargetHealthReasonEnum, TargetHealthStateEnum,
    TargetTypeEnum, ops,
};
use state::elbv2::TargetGroupRow;

use super::{page, pairs, refused};
use crate::errors::ApiError;
use crate::operation::{input, output};
use crate::{Call, Reply};

/// A stored group as the model's `TargetGroup`.
fn shape(conn: &rusqlite::Connection, tg: &TargetGroupRow) -> Result<TargetGroup, ApiError> {
    let h = target_groups::health_of(tg);
    let lbs = state::elbv2::lbs_of_tg(conn, &tg.arn).map_err(|e| refused(&ElbError::from(e)))?;
    Ok(TargetGroup {
        target_group_arn: Some(tg.arn.clone()),
        target_group_name: Some(tg.name.clone()),
        protocol: ProtocolEnum::from_wire(&tg.protocol),
        port: Some(tg.port),
        vpc_id: Some(tg.vpc_id.clone()),
        health_check_protocol: ProtocolEnum::from_wire(&h.protocol),
        health_check_port: Some(h.port.clone()),
        health_check_enabled: Some(h.enabled),
        health_check_interval_seconds: Some(h.interval),
        health_check_timeout_seconds: Some(h.timeout),
        healthy_threshold_count: Some(h.healthy),
        unhealthy_threshold_count: Some(h.unhealthy),
        health_check_path: h.path.clone(),
        matcher: h.matcher.clone().map(|m| Matcher {
            http_code: Some(m),
            grpc_code: None,
        }),
        load_balancer_arns: Some(lbs),
        target_type: TargetTypeEnum::from_wire(&tg.target_type),
        protocol_version: (tg.protocol != "TCP").then(|| "HTTP1".into()),
        ip_address_type: Some(shapes::elbv2::TargetGroupIpAddressTypeEnum::Ipv4),
        target_control_port: None,
    })
}

fn health_change(
    enabled: Option<bool>,
    protocol: Option<ProtocolEnum>,
    port: Option<String>,
    path: Option<String>,
    times: [Option<i32>; 4],
    matcher: Option<Matcher>,
) -> HealthChange {
    HealthChange {
        enabled,
        protocol: protocol.map(|p| p.as_str().to_string()),
        port,
        path,
        interval: times[0],
        timeout: times[1],
        healthy: times[2],
        unhealthy: times[3],
        matcher: matcher.and_then(|m| m.http_code),
    }
}

/// CreateTargetGroup.
pub(super) fn create(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::CreateTargetGroup>(value)?;
    let req = NewTargetGroup {
        name: r.name,
        protocol: r.protocol.map(|p| p.as_str().to_string()),
        port: r.port,
        vpc_id: r.vpc_id,
        target_type: r.target_type.map(|t| t.as_str().to_string()),
        health: health_change(
            r.health_check_enabled,
            r.health_check_protocol,
            r.health_check_port,
            r.health_check_path,
            [
                r.health_check_interval_seconds,
                r.health_check_timeout_seconds,
                r.healthy_threshold_count,
                r.unhealthy_threshold_count,
            ],
            r.matcher,
        ),
        tags: pairs(r.tags),
    };
    let tg =
        c.st.plane
            .create_target_group(&req)
            .map_err(|e| refused(&e))?;
    let conn = c.st.plane.db.lock();
    output::<ops::CreateTargetGroup>(CreateTargetGroupOutput {
        target_groups: Some(vec![shape(&conn, &tg)?]),
    })
}

/// DescribeTargetGroups.
pub(super) fn describe(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DescribeTargetGroups>(value)?;
    let conn = c.st.plane.db.lock();
    let db_err = |e: rusqlite::Error| refused(&ElbError::from(e));
    let all = state::elbv2::targets::tgs(&conn).map_err(db_err)?;
    let mut chosen: Vec<TargetGroupRow> = all.clone();
    if let Some(arns) = &r.target_group_arns {
        chosen.retain(|t| arns.contains(&t.arn));
        if chosen.len() != arns.len() {
            return Err(refused(&ElbError::TargetGroupNotFound));
        }
    }
    if let Some(names) = &r.names {
        chosen.retain(|t| names.contains(&t.name));
        if chosen.len() != names.len() {
            return Err(refused(&ElbError::TargetGroupNotFound));
        }
    }
    if let Some(lb) = &r.load_balancer_arn {
        if state::elbv2::lb_by_arn(&conn, lb)
            .map_err(db_err)?
            .is_none()
        {
            return Err(refused(&ElbError::LoadBalancerNotFound));
        }
        let used = state::elbv2::tgs_of_lb(&conn, lb).map_err(db_err)?;
        chosen.retain(|t| used.contains(&t.arn));
    }
    let (items, next) = page(chosen, r.marker.as_deref(), r.page_size)?;
    let groups = items
        .iter()
        .map(|t| shape(&conn, t))
        .collect::<Result<Vec<_>, _>>()?;
    output::<ops::DescribeTargetGroups>(DescribeTargetGroupsOutput {
        target_groups: Some(groups),
        next_marker: next,
    })
}

/// ModifyTargetGroup.
pub(super) fn modify(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::ModifyTargetGroup>(value)?;
    let change = health_change(
        r.health_check_enabled,
        r.health_check_protocol,
        r.health_check_port,
        r.health_check_path,
        [
            r.health_check_interval_seconds,
            r.health_check_timeout_seconds,
            r.healthy_threshold_count,
            r.unhealthy_threshold_count,
        ],
        r.matcher,
    );
    let tg =
        c.st.plane
            .modify_target_group(&r.target_group_arn, &change)
            .map_err(|e| refused(&e))?;
    let conn = c.st.plane.db.lock();
    output::<ops::ModifyTargetGroup>(ModifyTargetGroupOutput {
        target_groups: Some(vec![shape(&conn, &tg)?]),
    })
}

/// DeleteTargetGroup.
pub(super) fn delete(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DeleteTargetGroup>(value)?;
    c.st.plane
        .delete_target_group(&r.target_group_arn)
        .map_err(|e| refused(&e))?;
    output::<ops::DeleteTargetGroup>(Default::default())
}

fn attribute_shapes(a: control::elbv2::model::Attributes) -> Vec<TargetGroupAttribute> {
    a.into_iter()
        .map(|(k, v)| TargetGroupAttribute {
            key: Some(k),
            value: Some(v),
        })
        .collect()
}

/// DescribeTargetGroupAttributes.
pub(super) fn describe_attributes(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DescribeTargetGroupAttributes>(value)?;
    let tg =
        target_groups::get(&c.st.plane.db.lock(), &r.target_group_arn).map_err(|e| refused(&e))?;
    output::<ops::DescribeTargetGroupAttributes>(DescribeTargetGroupAttributesOutput {
        attributes: Some(attribute_shapes(target_groups::attributes_of(&tg))),
    })
}

/// ModifyTargetGroupAttributes.
pub(super) fn modify_attributes(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::ModifyTargetGroupAttributes>(value)?;
    let changes: Vec<(String, String)> = r
        .attributes
        .into_iter()
        .map(|a| (a.key.unwrap_or_default(), a.value.unwrap_or_default()))
        .collect();
    let all =
        c.st.plane
            .modify_target_group_attributes(&r.target_group_arn, &changes)
            .map_err(|e| refused(&e))?;
    output::<ops::ModifyTargetGroupAttributes>(ModifyTargetGroupAttributesOutput {
        attributes: Some(attribute_shapes(all)),
    })
}

fn refs(targets: Vec<TargetDescription>) -> Vec<TargetRef> {
    targets
        .into_iter()
        .map(|t| TargetRef {
            id: t.id,
            port: t.port,
        })
        .collect()
}

/// RegisterTargets.
pub(super) fn register(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::RegisterTargets>(value)?;
    c.st.plane
        .register_targets(&r.target_group_arn, &refs(r.targets))
        .map_err(|e| refused(&e))?;
    output::<ops::RegisterTargets>(Default::default())
}

/// DeregisterTargets.
pub(super) fn deregister(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DeregisterTargets>(value)?;
    c.st.plane
        .deregister_targets(&r.target_group_arn, &refs(r.targets))
        .map_err(|e| refused(&e))?;
    output::<ops::DeregisterTargets>(Default::default())
}

/// DescribeTargetHealth: every registered target, or the ones asked for (one that is not
/// registered is `unused` with `Target.NotRegistered`, as ELB answers).
pub(super) fn health(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DescribeTargetHealth>(value)?;
    let plane = &c.st.plane;
    let rows = plane
        .target_health(&r.target_group_arn)
        .map_err(|e| refused(&e))?;
    let default_port = target_groups::get(&plane.db.lock(), &r.target_group_arn)
        .map_err(|e| refused(&e))?
        .port;
    let describe =
        |id: String, port: i32, state: &str, reason: Option<&str>, text: Option<String>| {
            TargetHealthDescription {
                target: Some(TargetDescription {
                    id,
                    port: Some(port),
                    availability_zone: None,
                    quic_server_id: None,
                }),
                health_check_port: Some(port.to_string()),
                target_health: Some(TargetHealth {
                    state: TargetHealthStateEnum::from_wire(state),
                    reason: reason.and_then(TargetHealthReasonEnum::from_wire),
                    description: text,
                }),
                anomaly_detection: None,
                administrative_override: None,
            }
        };
    let out: Vec<TargetHealthDescription> = match r.targets {
        None => rows
            .into_iter()
            .map(|h| describe(h.id, h.port, h.state.as_str(), h.reason, h.description))
            .collect(),
        Some(asked) => asked
            .into_iter()
            .map(|t| {
                let port = t.port.unwrap_or(default_port);
                match rows.iter().find(|h| h.id == t.id && h.port == port) {
                    Some(h) => describe(
                        h.id.clone(),
                        h.port,
                        h.state.as_str(),
                        h.reason,
                        h.description.clone(),
                    ),
                    None => describe(
                        t.id,
                        port,
                        "unused",
                        Some("Target.NotRegistered"),
                        Some("Target is not registered to the target group".into()),
                    ),
                }
            })
            .collect(),
    };
    output::<ops::DescribeTargetHealth>(DescribeTargetHealthOutput {
        target_health_descriptions: Some(out),
    })
}
