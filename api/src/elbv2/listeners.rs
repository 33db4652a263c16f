//! Listeners, rules and tags: CreateListener, DescribeListeners, ModifyListener,
//! DeleteListener, CreateRule, DescribeRules, ModifyRule, DeleteRule, SetRulePriorities,
//! AddTags, RemoveTags, DescribeTags.

use control::elbv2::ElbError;
use control::elbv2::listeners::ListenerChange;
use control::elbv2::model::{self, Action as Act, Conditions};
use serde_json::Value;
use shapes::elbv2::{
    Certificate, CreateListenerOutput, CreateRuleOutput, DescribeListenersOutput,
    DescribeRulesOutput, DescribeTagsOutput, Listener, ModifyListenerOutput, ModifyRuleOutput,
    ProtocolEnum, Rule, SetRulePrioritiesOutput, Tag, TagDescription, ops,
};
use state::elbv2::{ListenerRow, RuleRow};

use super::actions::{conditions_from, conditions_to, from_shapes, to_shapes};
use super::{invalid, page, pairs, refused};
use crate::errors::ApiError;
use crate::operation::{input, output};
use crate::{Call, Reply};

fn db_err(e: rusqlite::Error) -> ApiError {
    refused(&ElbError::from(e))
}

/// The ARNs of a request's certificates.
fn certificate_arns(certs: Vec<Certificate>) -> Vec<String> {
    certs
        .into_iter()
        .filter_map(|c| c.certificate_arn)
        .collect()
}

fn listener_shape(l: &ListenerRow) -> Listener {
    let actions: Vec<Act> = model::from_json(&l.default_actions);
    let certs: Vec<String> = model::from_json(&l.certificates);
    let https = l.protocol == "HTTPS";
    Listener {
        listener_arn: Some(l.arn.clone()),
        load_balancer_arn: Some(l.lb_arn.clone()),
        port: Some(l.port),
        protocol: ProtocolEnum::from_wire(&l.protocol),
        certificates: https.then(|| {
            certs
                .into_iter()
                .map(|arn| Certificate {
                    certificate_arn: Some(arn),
                    is_default: None,
                })
                .collect()
        }),
        ssl_policy: https.then(|| "ELBSecurityPolicy-2016-08".to_string()),
        default_actions: Some(to_shapes(&actions)),
        alpn_policy: None,
        mutual_authentication: None,
    }
}

fn rule_shape(r: &RuleRow) -> Rule {
    let actions: Vec<Act> = model::from_json(&r.actions);
    let c: Conditions = model::from_json(&r.conditions);
    Rule {
        rule_arn: Some(r.arn.clone()),
        priority: Some(r.priority.to_string()),
        conditions: Some(conditions_to(&c)),
        actions: Some(to_shapes(&actions)),
        is_default: Some(false),
        transforms: None,
    }
}

/// The default rule of a listener, as DescribeRules lists it.
fn default_rule(l: &ListenerRow) -> Rule {
    let actions: Vec<Act> = model::from_json(&l.default_actions);
    Rule {
        rule_arn: Some(model::rule_arn(&l.arn, "default")),
        priority: Some("default".into()),
        conditions: Some(Vec::new()),
        actions: Some(to_shapes(&actions)),
        is_default: Some(true),
        transforms: None,
    }
}

/// CreateListener.
pub(super) fn create(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::CreateListener>(value)?;
    let change = ListenerChange {
        protocol: r.protocol.map(|p| p.as_str().to_string()),
        port: r.port,
        default_actions: Some(from_shapes(r.default_actions)?),
        certificates: r.certificates.map(certificate_arns),
    };
    let l =
        c.st.plane
            .create_listener(&r.load_balancer_arn, &change, &pairs(r.tags))
            .map_err(|e| refused(&e))?;
    output::<ops::CreateListener>(CreateListenerOutput {
        listeners: Some(vec![listener_shape(&l)]),
    })
}

/// DescribeListeners.
pub(super) fn describe(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DescribeListeners>(value)?;
    let conn = c.st.plane.db.lock();
    let mut chosen = Vec::new();
    if let Some(lb) = &r.load_balancer_arn {
        if state::elbv2::lb_by_arn(&conn, lb)
            .map_err(db_err)?
            .is_none()
        {
            return Err(refused(&ElbError::LoadBalancerNotFound));
        }
        chosen = state::elbv2::listeners_of(&conn, lb).map_err(db_err)?;
    }
    if let Some(arns) = &r.listener_arns {
        if r.load_balancer_arn.is_some() {
            chosen.retain(|l| arns.contains(&l.arn));
        } else {
            for arn in arns {
                let l = state::elbv2::listener_by_arn(&conn, arn)
                    .map_err(db_err)?
                    .ok_or_else(|| refused(&ElbError::ListenerNotFound))?;
                chosen.push(l);
            }
        }
        if chosen.len() != arns.len() {
            return Err(refused(&ElbError::ListenerNotFound));
        }
    } else if r.load_balancer_arn.is_none() {
        return Err(invalid(
            "A load balancer ARN or listener ARNs must be specified",
        ));
    }
    let (items, next) = page(chosen, r.marker.as_deref(), r.page_size)?;
    output::<ops::DescribeListeners>(DescribeListenersOutput {
        listeners: Some(items.iter().map(listener_shape).collect()),
        next_marker: next,
    })
}

/// ModifyListener.
pub(super) fn modify(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::ModifyListener>(value)?;
    let change = ListenerChange {
        protocol: r.protocol.map(|p| p.as_str().to_string()),
        port: r.port,
        default_actions: r.default_actions.map(from_shapes).transpose()?,
        certificates: r.certificates.map(certificate_arns),
    };
    let l =
        c.st.plane
            .modify_listener(&r.listener_arn, &change)
            .map_err(|e| refused(&e))?;
    output::<ops::ModifyListener>(ModifyListenerOutput {
        listeners: Some(vec![listener_shape(&l)]),
    })
}

/// DeleteListener.
pub(super) fn delete(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DeleteListener>(value)?;
    c.st.plane
        .delete_listener(&r.listener_arn)
        .map_err(|e| refused(&e))?;
    output::<ops::DeleteListener>(Default::default())
}

/// CreateRule.
pub(super) fn create_rule(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::CreateRule>(value)?;
    let rule =
        c.st.plane
            .create_rule(
                &r.listener_arn,
                r.priority,
                &conditions_from(r.conditions)?,
                &from_shapes(r.actions)?,
                &pairs(r.tags),
            )
            .map_err(|e| refused(&e))?;
    output::<ops::CreateRule>(CreateRuleOutput {
        rules: Some(vec![rule_shape(&rule)]),
    })
}

/// DescribeRules: a listener's rules by priority, then its default rule.
pub(super) fn describe_rules(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DescribeRules>(value)?;
    let conn = c.st.plane.db.lock();
    let mut out = Vec::new();
    if let Some(arn) = &r.listener_arn {
        let l = state::elbv2::listener_by_arn(&conn, arn)
            .map_err(db_err)?
            .ok_or_else(|| refused(&ElbError::ListenerNotFound))?;
        out.extend(
            state::elbv2::rules_of(&conn, arn)
                .map_err(db_err)?
                .iter()
                .map(rule_shape),
        );
        out.push(default_rule(&l));
    }
    if let Some(arns) = &r.rule_arns {
        if r.listener_arn.is_some() {
            out.retain(|rule| rule.rule_arn.as_ref().is_some_and(|a| arns.contains(a)));
        } else {
            for arn in arns {
                let rule = state::elbv2::rule_by_arn(&conn, arn)
                    .map_err(db_err)?
                    .ok_or_else(|| refused(&ElbError::RuleNotFound))?;
                out.push(rule_shape(&rule));
            }
        }
        if out.len() != arns.len() {
            return Err(refused(&ElbError::RuleNotFound));
        }
    } else if r.listener_arn.is_none() {
        return Err(invalid("A listener ARN or rule ARNs must be specified"));
    }
    let (items, next) = page(out, r.marker.as_deref(), r.page_size)?;
    output::<ops::DescribeRules>(DescribeRulesOutput {
        rules: Some(items),
        next_marker: next,
    })
}

/// ModifyRule.
pub(super) fn modify_rule(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::ModifyRule>(value)?;
    let cond = r.conditions.map(conditions_from).transpose()?;
    let actions = r.actions.map(from_shapes).transpose()?;
    let rule =
        c.st.plane
            .modify_rule(&r.rule_arn, cond.as_deref(), actions.as_deref())
            .map_err(|e| refused(&e))?;
    output::<ops::ModifyRule>(ModifyRuleOutput {
        rules: Some(vec![rule_shape(&rule)]),
    })
}

/// DeleteRule.
pub(super) fn delete_rule(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DeleteRule>(value)?;
    if r.rule_arn.ends_with("/default") {
        return Err(ApiError::new(
            "OperationNotPermitted",
            "A listener's default rule cannot be deleted",
        ));
    }
    c.st.plane
        .delete_rule(&r.rule_arn)
        .map_err(|e| refused(&e))?;
    output::<ops::DeleteRule>(Default::default())
}

/// SetRulePriorities.
pub(super) fn set_rule_priorities(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::SetRulePriorities>(value)?;
    let mut changes = Vec::new();
    for p in r.rule_priorities {
        match (p.rule_arn, p.priority) {
            (Some(arn), Some(priority)) => changes.push((arn, priority)),
            _ => {
                return Err(invalid(
                    "Each rule priority pair needs a RuleArn and a Priority",
                ));
            }
        }
    }
    let rules =
        c.st.plane
            .set_rule_priorities(&changes)
            .map_err(|e| refused(&e))?;
    output::<ops::SetRulePriorities>(SetRulePrioritiesOutput {
        rules: Some(rules.iter().map(rule_shape).collect()),
    })
}

/// AddTags.
pub(super) fn add_tags(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::AddTags>(value)?;
    c.st.plane
        .elb_add_tags(&r.resource_arns, &pairs(Some(r.tags)))
        .map_err(|e| refused(&e))?;
    output::<ops::AddTags>(Default::default())
}

/// RemoveTags.
pub(super) fn remove_tags(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::RemoveTags>(value)?;
    c.st.plane
        .elb_remove_tags(&r.resource_arns, &r.tag_keys)
        .map_err(|e| refused(&e))?;
    output::<ops::RemoveTags>(Default::default())
}

/// DescribeTags.
pub(super) fn describe_tags(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DescribeTags>(value)?;
    let described = control::elbv2::tags::describe(&c.st.plane.db.lock(), &r.resource_arns)
        .map_err(|e| refused(&e))?;
    output::<ops::DescribeTags>(DescribeTagsOutput {
        tag_descriptions: Some(
            described
                .into_iter()
                .map(|(arn, tags)| TagDescription {
                    resource_arn: Some(arn),
                    tags: Some(
                        tags.into_iter()
                            .map(|(k, v)| Tag {
                                key: k,
                                value: Some(v),
                            })
                            .collect(),
                    ),
                })
                .collect(),
        ),
    })
}
