//! Listeners: CreateListener, ModifyListener, DeleteListener, and the checks of actions that
//! listeners and rules share.

use rusqlite::Connection;
use state::elbv2::{self as db, ListenerRow, LoadBalancerRow};

use super::error::ElbError;
use super::load_balancers;
use super::model::{self, Action};
use crate::Plane;
use crate::effects::Effect;

/// The most listeners a load balancer has.
pub const MAX_LISTENERS: usize = 50;

/// Checks `actions` for a listener of `protocol` on `lb`; gives the target groups they
/// forward to.
pub fn check_actions(
    conn: &Connection,
    lb: &LoadBalancerRow,
    protocol: &str,
    actions: &[Action],
) -> Result<Vec<String>, ElbError> {
    let [action] = actions else {
        return Err(ElbError::Validation(if actions.is_empty() {
            "At least one action must be specified".into()
        } else {
            "Exactly one forward, fixed-response or redirect action is supported per listener or rule".into()
        }));
    };
    match action {
        Action::Forward { target_groups, .. } => {
            if target_groups.is_empty() || target_groups.len() > 5 {
                return Err(ElbError::Validation(
                    "A forward action has 1 to 5 target groups".into(),
                ));
            }
            for (arn, weight) in target_groups {
                if !(0..=999).contains(weight) {
                    return Err(ElbError::Validation(
                        "Target group weights are from 0 to 999".into(),
                    ));
                }
                check_target_group(conn, lb, protocol, arn)?;
            }
            let mut tgs = action.target_groups();
            tgs.sort();
            tgs.dedup();
            Ok(tgs)
        }
        Action::FixedResponse {
            status_code,
            message_body,
            ..
        } => {
            if lb.kind != "application" {
                return Err(ElbError::InvalidLoadBalancerAction(
                    "Fixed-response actions are supported only by application load balancers"
                        .into(),
                ));
            }
            let ok = status_code.len() == 3
                && status_code.bytes().all(|b| b.is_ascii_digit())
                && matches!(status_code.as_bytes()[0], b'2' | b'4' | b'5');
            if !ok {
                return Err(ElbError::Validation(format!(
                    "Fixed-response status code '{status_code}' must be 2XX, 4XX or 5XX"
                )));
            }
            if message_body.as_ref().is_some_and(|b| b.len() > 1024) {
                return Err(ElbError::Validation(
                    "A fixed-response message body is at most 1024 characters".into(),
                ));
            }
            Ok(Vec::new())
        }
        Action::Redirect { status_code, .. } => {
            if lb.kind != "application" {
                return Err(ElbError::InvalidLoadBalancerAction(
                    "Redirect actions are supported only by application load balancers".into(),
                ));
            }
            if !matches!(status_code.as_str(), "HTTP_301" | "HTTP_302") {
                return Err(ElbError::Validation(
                    "A redirect's status code is HTTP_301 or HTTP_302".into(),
                ));
            }
            Ok(Vec::new())
        }
    }
}

fn check_target_group(
    conn: &Connection,
    lb: &LoadBalancerRow,
    protocol: &str,
    arn: &str,
) -> Result<(), ElbError> {
    let tg = db::targets::tg_by_arn(conn, arn)?.ok_or(ElbError::TargetGroupNotFound)?;
    if tg.vpc_id != lb.vpc_id {
        return Err(ElbError::InvalidConfiguration(format!(
            "Target group '{arn}' is in VPC '{}', not in the load balancer's VPC '{}'",
            tg.vpc_id, lb.vpc_id
        )));
    }
    let fits = if protocol == "TCP" {
        tg.protocol == "TCP"
    } else {
        tg.protocol != "TCP"
    };
    if !fits {
        return Err(ElbError::IncompatibleProtocols(format!(
            "Listener protocol '{protocol}' is not compatible with target group protocol '{}'",
            tg.protocol
        )));
    }
    if let Some(other) = db::lbs_of_tg(conn, arn)?.into_iter().find(|l| *l != lb.arn) {
        return Err(ElbError::TooMany(
            "TargetGroupAssociationLimit",
            format!("Target group '{arn}' is already associated with load balancer '{other}'"),
        ));
    }
    Ok(())
}

/// Checks a listener's protocol, port and certificates against its load balancer.
fn check_listener(
    lb: &LoadBalancerRow,
    protocol: &str,
    port: i32,
    certificates: &[String],
) -> Result<(), ElbError> {
    if !(1..=65535).contains(&port) {
        return Err(ElbError::Validation(
            "Port must be between 1 and 65535".into(),
        ));
    }
    if protocol == "HTTPS" && certificates.len() != 1 {
        return Err(ElbError::Validation(
            "An HTTPS listener takes one certificate (its default)".into(),
        ));
    }
    if protocol != "HTTPS" && !certificates.is_empty() {
        return Err(ElbError::Validation(
            "Certificates are for HTTPS listeners only".into(),
        ));
    }
    match (lb.kind.as_str(), protocol) {
        ("application", "HTTP" | "HTTPS") | ("network", "TCP") => Ok(()),
        (_, "TLS" | "UDP" | "TCP_UDP") => Err(ElbError::UnsupportedProtocol(format!(
            "Protocol '{protocol}' is not supported by this endpoint's load balancers yet"
        ))),
        (kind, _) => Err(ElbError::IncompatibleProtocols(format!(
            "Protocol '{protocol}' is not supported by a load balancer of type '{kind}'"
        ))),
    }
}

/// What CreateListener and ModifyListener ask for.
#[derive(Debug, Clone, Default)]
pub struct ListenerChange {
    /// The protocol.
    pub protocol: Option<String>,
    /// The port.
    pub port: Option<i32>,
    /// The default actions.
    pub default_actions: Option<Vec<Action>>,
    /// Its certificates' ARNs (HTTPS), each checked to name a PEM file the host holds.
    pub certificates: Option<Vec<String>>,
}

/// CreateListener.
pub fn create(
    conn: &Connection,
    lb_arn: &str,
    req: &ListenerChange,
    tags: &[(String, String)],
) -> Result<(ListenerRow, Vec<Effect>), ElbError> {
    let lb = load_balancers::get(conn, lb_arn)?;
    let protocol = req
        .protocol
        .clone()
        .unwrap_or_else(|| if lb.kind == "network" { "TCP" } else { "HTTP" }.to_string());
    let port = req
        .port
        .ok_or_else(|| ElbError::Validation("A port must be specified".into()))?;
    let certificates = req.certificates.clone().unwrap_or_default();
    check_listener(&lb, &protocol, port, &certificates)?;
    let actions = req.default_actions.clone().unwrap_or_default();
    let tgs = check_actions(conn, &lb, &protocol, &actions)?;
    super::tags::check_new(tags)?;
    let listeners = db::listeners_of(conn, lb_arn)?;
    if listeners.iter().any(|l| l.port == port) {
        return Err(ElbError::DuplicateListener);
    }
    if listeners.len() >= MAX_LISTENERS {
        return Err(ElbError::TooMany(
            "TooManyListeners",
            format!("A load balancer has at most {MAX_LISTENERS} listeners"),
        ));
    }
    let row = ListenerRow {
        seq: 0,
        arn: model::listener_arn(lb_arn, &model::new_id()),
        lb_arn: lb_arn.into(),
        protocol,
        port,
        certificates: model::to_json(&certificates),
        default_actions: model::to_json(&actions),
    };
    db::put_listener(conn, &row)?;
    db::set_forwards(conn, &row.arn, lb_arn, &tgs)?;
    db::put_tags(conn, &row.arn, tags)?;
    let row = db::listener_by_arn(conn, &row.arn)?.unwrap_or(row);
    Ok((row, vec![Effect::SyncLoadBalancer { arn: lb_arn.into() }]))
}

/// The listener `arn`.
pub fn get(conn: &Connection, arn: &str) -> Result<ListenerRow, ElbError> {
    db::listener_by_arn(conn, arn)?.ok_or(ElbError::ListenerNotFound)
}

/// ModifyListener.
pub fn modify(
    conn: &Connection,
    arn: &str,
    req: &ListenerChange,
) -> Result<(ListenerRow, Vec<Effect>), ElbError> {
    let mut l = get(conn, arn)?;
    let lb = load_balancers::get(conn, &l.lb_arn)?;
    let protocol = req.protocol.clone().unwrap_or_else(|| l.protocol.clone());
    let port = req.port.unwrap_or(l.port);
    let certificates = match &req.certificates {
        Some(c) => c.clone(),
        None if protocol == "HTTPS" => model::from_json(&l.certificates),
        None => Vec::new(),
    };
    check_listener(&lb, &protocol, port, &certificates)?;
    if port != l.port
        && db::listeners_of(conn, &l.lb_arn)?
            .iter()
            .any(|o| o.port == port)
    {
        return Err(ElbError::DuplicateListener);
    }
    let actions = match &req.default_actions {
        Some(a) => a.clone(),
        None => model::from_json(&l.default_actions),
    };
    let tgs = check_actions(conn, &lb, &protocol, &actions)?;
    l.protocol = protocol;
    l.port = port;
    l.certificates = model::to_json(&certificates);
    l.default_actions = model::to_json(&actions);
    db::put_listener(conn, &l)?;
    db::set_forwards(conn, arn, &l.lb_arn, &tgs)?;
    Ok((l.clone(), vec![Effect::SyncLoadBalancer { arn: l.lb_arn }]))
}

/// DeleteListener.
pub fn delete(conn: &Connection, arn: &str) -> Result<Vec<Effect>, ElbError> {
    let l = get(conn, arn)?;
    db::delete_listener(conn, arn)?;
    Ok(vec![Effect::SyncLoadBalancer { arn: l.lb_arn }])
}

impl Plane {
    /// Checks that every certificate ARN of `req` names a PEM file the host holds
    /// (`host::elb::Balancers::certificate`).
    fn check_certificates(&self, req: &ListenerChange) -> Result<(), ElbError> {
        for arn in req.certificates.iter().flatten() {
            if self.elb.certificate(arn).is_none() {
                return Err(ElbError::CertificateNotFound(arn.clone()));
            }
        }
        Ok(())
    }

    /// CreateListener.
    pub fn create_listener(
        &self,
        lb_arn: &str,
        req: &ListenerChange,
        tags: &[(String, String)],
    ) -> Result<ListenerRow, ElbError> {
        self.check_certificates(req)?;
        self.elb_write(|tx| create(tx, lb_arn, req, tags))
    }

    /// ModifyListener.
    pub fn modify_listener(
        &self,
        arn: &str,
        req: &ListenerChange,
    ) -> Result<ListenerRow, ElbError> {
        self.check_certificates(req)?;
        self.elb_write(|tx| modify(tx, arn, req))
    }

    /// DeleteListener.
    pub fn delete_listener(&self, arn: &str) -> Result<(), ElbError> {
        self.elb_write(|tx| Ok(((), delete(tx, arn)?)))
    }
}
