//! A load balancer's HAProxy description ([`host::elb::LbSpec`]) from the state: its
//! listeners with their rules by priority, and every target group they forward to with the
//! targets in service (draining ones left out, so they get no new requests), connections to
//! targets coming from the load balancer's interface.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use host::elb::{ActionSpec, BackendSpec, CheckSpec, LbSpec, ListenerSpec, RuleSpec, ServerSpec};
use rusqlite::Connection;
use state::elbv2::{self as db, LoadBalancerRow};

use super::error::ElbError;
use super::load_balancers::lb_attributes;
use super::model::{self, Action, Conditions};
use super::target_groups::{attributes_of, health_of};
use super::targets::address_of;

/// The description of load balancer `lb`, or `None` when it has no address; `pem` gives a
/// certificate ARN's PEM file.
pub fn spec(
    conn: &Connection,
    lb: &LoadBalancerRow,
    pem: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<LbSpec>, ElbError> {
    let Some(address) = lb.public_ip.as_deref().and_then(|a| a.parse().ok()) else {
        return Ok(None);
    };
    let attributes = lb_attributes(lb);
    let idle = attributes
        .get("idle_timeout.timeout_seconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let source = interface_address(conn, &lb.arn)?;
    let mut listeners = Vec::new();
    for l in db::listeners_of(conn, &lb.arn)? {
        let mut rules = Vec::new();
        for r in db::rules_of(conn, &l.arn)? {
            let conditions: Conditions = model::from_json(&r.conditions);
            let actions: Vec<Action> = model::from_json(&r.actions);
            if let Some(action) = actions.first() {
                rules.push(RuleSpec {
                    paths: conditions.paths,
                    hosts: conditions.hosts,
                    action: action_spec(action),
                });
            }
        }
        let defaults: Vec<Action> = model::from_json(&l.default_actions);
        let Some(default) = defaults.first() else {
            continue;
        };
        let certs: Vec<String> = model::from_json(&l.certificates);
        listeners.push(ListenerSpec {
            port: u16::try_from(l.port).unwrap_or(80),
            tls_pem: (l.protocol == "HTTPS")
                .then(|| certs.first().and_then(|c| pem(c)))
                .flatten(),
            rules,
            default: action_spec(default),
        });
    }
    let mut backends = Vec::new();
    let mut drain_s = 0u32;
    for tg_arn in db::tgs_of_lb(conn, &lb.arn)? {
        let Some(tg) = db::targets::tg_by_arn(conn, &tg_arn)? else {
            continue;
        };
        let attrs = attributes_of(&tg);
        let delay: u32 = attrs
            .get("deregistration_delay.timeout_seconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(300);
        drain_s = drain_s.max(delay);
        let sticky = attrs.get("stickiness.enabled").is_some_and(|v| v == "true");
        let h = health_of(&tg);
        let mut servers = Vec::new();
        for t in db::targets::targets_of(conn, &tg_arn)? {
            if t.drain_until_ms.is_some() {
                continue;
            }
            let Some(address) = address_of(conn, &tg.target_type, &t.target_id) else {
                continue;
            };
            servers.push(ServerSpec {
                name: host::elb::spec::server_name(&t.target_id, t.port),
                address,
                port: u16::try_from(t.port).unwrap_or(80),
            });
        }
        backends.push(BackendSpec {
            name: model::backend_name(&tg_arn),
            source,
            check: CheckSpec {
                enabled: h.enabled,
                http: (h.protocol != "TCP").then(|| {
                    (
                        h.path.clone().unwrap_or_else(|| "/".into()),
                        model::matcher_codes(h.matcher.as_deref().unwrap_or("200"))
                            .unwrap_or_else(|_| vec![200]),
                    )
                }),
                port: h.port.parse().ok(),
                interval_s: h.interval.max(1) as u32,
                timeout_s: h.timeout.max(1) as u32,
                rise: h.healthy.max(1) as u32,
                fall: h.unhealthy.max(1) as u32,
            },
            sticky_s: sticky.then(|| {
                attrs
                    .get("stickiness.lb_cookie.duration_seconds")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(86_400)
            }),
            servers,
        });
    }
    Ok(Some(LbSpec {
        id: model::arn_id(&lb.arn).to_string(),
        address,
        http: lb.kind == "application",
        idle_timeout_s: idle,
        http2: attributes
            .get("routing.http2.enabled")
            .is_none_or(|v| v == "true"),
        drain_s: drain_s + 5,
        listeners,
        backends,
    }))
}

/// The private address of the load balancer's first interface.
fn interface_address(conn: &Connection, lb_arn: &str) -> Result<Option<Ipv4Addr>, ElbError> {
    for (_, eni) in db::interfaces_of(conn, lb_arn)? {
        if let Some(e) = state::enis::get(conn, &eni)? {
            return Ok(e.private_ip.parse().ok());
        }
    }
    Ok(None)
}

/// An action as HAProxy's description has it.
fn action_spec(a: &Action) -> ActionSpec {
    match a {
        Action::Forward { target_groups, .. } => {
            let mut seen = BTreeSet::new();
            ActionSpec::Forward(
                target_groups
                    .iter()
                    .filter(|(arn, _)| seen.insert(arn.clone()))
                    .map(|(arn, w)| (model::backend_name(arn), (*w).max(0) as u32))
                    .collect(),
            )
        }
        Action::FixedResponse {
            status_code,
            content_type,
            message_body,
        } => ActionSpec::Fixed {
            status: status_code.parse().unwrap_or(200),
            content_type: content_type.clone().unwrap_or_else(|| "text/plain".into()),
            body: message_body.clone().unwrap_or_default(),
        },
        Action::Redirect {
            protocol,
            port,
            host,
            path,
            query,
            status_code,
        } => ActionSpec::Redirect {
            status: if status_code == "HTTP_301" { 301 } else { 302 },
            protocol: protocol.clone().unwrap_or_else(|| "#{protocol}".into()),
            host: host.clone().unwrap_or_else(|| "#{host}".into()),
            port: port.clone().unwrap_or_else(|| "#{port}".into()),
            path: path.clone().unwrap_or_else(|| "/#{path}".into()),
            query: query.clone().unwrap_or_else(|| "#{query}".into()),
        },
    }
}
