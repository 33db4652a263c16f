//! Actions and conditions between the model's shapes and `control::elbv2::model`.

use control::elbv2::model::{Action as Act, Conditions};
use shapes::elbv2::{
    Action, ActionTypeEnum, FixedResponseActionConfig, ForwardActionConfig,
    HostHeaderConditionConfig, PathPatternConditionConfig, RedirectActionConfig,
    RedirectActionStatusCodeEnum, RuleCondition, TargetGroupStickinessConfig, TargetGroupTuple,
};

use super::invalid;
use crate::errors::ApiError;

/// A request's actions as the control plane's (ordered by `Order`).
pub(super) fn from_shapes(actions: Vec<Action>) -> Result<Vec<Act>, ApiError> {
    let mut actions = actions;
    actions.sort_by_key(|a| a.order.unwrap_or(0));
    actions.into_iter().map(one).collect()
}

fn one(a: Action) -> Result<Act, ApiError> {
    Ok(match a.type_ {
        ActionTypeEnum::Forward => {
            let mut tgs = Vec::new();
            if let Some(arn) = a.target_group_arn {
                tgs.push((arn, 1));
            }
            let mut stickiness = None;
            if let Some(cfg) = a.forward_config {
                for t in cfg.target_groups.unwrap_or_default() {
                    let arn = t
                        .target_group_arn
                        .ok_or_else(|| invalid("A target group tuple needs a TargetGroupArn"))?;
                    if let Some(i) = tgs.iter().position(|(a, _)| *a == arn) {
                        tgs[i].1 = t.weight.unwrap_or(1);
                    } else {
                        tgs.push((arn, t.weight.unwrap_or(1)));
                    }
                }
                stickiness = cfg.target_group_stickiness_config.map(|s| {
                    (
                        s.enabled.unwrap_or(false),
                        s.duration_seconds.unwrap_or(3600),
                    )
                });
            }
            Act::Forward {
                target_groups: tgs,
                stickiness,
            }
        }
        ActionTypeEnum::FixedResponse => {
            let cfg = a
                .fixed_response_config
                .ok_or_else(|| invalid("A fixed-response action needs a FixedResponseConfig"))?;
            Act::FixedResponse {
                status_code: cfg.status_code,
                content_type: cfg.content_type,
                message_body: cfg.message_body,
            }
        }
        ActionTypeEnum::Redirect => {
            let cfg = a
                .redirect_config
                .ok_or_else(|| invalid("A redirect action needs a RedirectConfig"))?;
            Act::Redirect {
                protocol: cfg.protocol,
                port: cfg.port,
                host: cfg.host,
                path: cfg.path,
                query: cfg.query,
                status_code: cfg.status_code.as_str().to_string(),
            }
        }
        other => {
            return Err(ApiError::new(
                "InvalidLoadBalancerAction",
                format!("Action type '{}' is not supported here", other.as_str()),
            ));
        }
    })
}

/// Stored actions as the model's shapes.
pub(super) fn to_shapes(actions: &[Act]) -> Vec<Action> {
    actions
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut out = Action {
                type_: ActionTypeEnum::Forward,
                target_group_arn: None,
                authenticate_oidc_config: None,
                authenticate_cognito_config: None,
                order: Some(i as i32 + 1),
                redirect_config: None,
                fixed_response_config: None,
                forward_config: None,
                jwt_validation_config: None,
            };
            match a {
                Act::Forward {
                    target_groups,
                    stickiness,
                } => {
                    if let [(arn, _)] = target_groups.as_slice() {
                        out.target_group_arn = Some(arn.clone());
                    }
                    out.forward_config = Some(ForwardActionConfig {
                        target_groups: Some(
                            target_groups
                                .iter()
                                .map(|(arn, w)| TargetGroupTuple {
                                    target_group_arn: Some(arn.clone()),
                                    weight: Some(*w),
                                })
                                .collect(),
                        ),
                        target_group_stickiness_config: Some(TargetGroupStickinessConfig {
                            enabled: Some(stickiness.is_some_and(|s| s.0)),
                            duration_seconds: stickiness.map(|s| s.1),
                        }),
                    });
                }
                Act::FixedResponse {
                    status_code,
                    content_type,
                    message_body,
                } => {
                    out.type_ = ActionTypeEnum::FixedResponse;
                    out.fixed_response_config = Some(FixedResponseActionConfig {
                        status_code: status_code.clone(),
                        content_type: content_type.clone(),
                        message_body: message_body.clone(),
                    });
                }
                Act::Redirect {
                    protocol,
                    port,
                    host,
                    path,
                    query,
                    status_code,
                } => {
                    out.type_ = ActionTypeEnum::Redirect;
                    out.redirect_config = Some(RedirectActionConfig {
                        protocol: Some(protocol.clone().unwrap_or_else(|| "#{protocol}".into())),
                        port: Some(port.clone().unwrap_or_else(|| "#{port}".into())),
                        host: Some(host.clone().unwrap_or_else(|| "#{host}".into())),
                        path: Some(path.clone().unwrap_or_else(|| "/#{path}".into())),
                        query: Some(query.clone().unwrap_or_else(|| "#{query}".into())),
                        status_code: RedirectActionStatusCodeEnum::from_wire(status_code)
                            .unwrap_or(RedirectActionStatusCodeEnum::Http302),
                    });
                }
            }
            out
        })
        .collect()
}

/// A request's conditions as `(field, values)`; regular-expression values are refused
/// (wildcard values only here).
pub(super) fn conditions_from(
    input: Vec<RuleCondition>,
) -> Result<Vec<(String, Vec<String>)>, ApiError> {
    input
        .into_iter()
        .map(|c| {
            let regex = c.regex_values.is_some()
                || c.path_pattern_config
                    .as_ref()
                    .is_some_and(|p| p.regex_values.is_some())
                || c.host_header_config
                    .as_ref()
                    .is_some_and(|h| h.regex_values.is_some());
            if regex {
                return Err(invalid("RegexValues conditions are not supported here"));
            }
            let field = c.field.unwrap_or_default();
            let mut values = c.values.unwrap_or_default();
            if let Some(p) = c.path_pattern_config {
                values.extend(p.values.unwrap_or_default());
            }
            if let Some(h) = c.host_header_config {
                values.extend(h.values.unwrap_or_default());
            }
            Ok((field, values))
        })
        .collect()
}

/// Stored conditions as the model's shapes.
pub(super) fn conditions_to(c: &Conditions) -> Vec<RuleCondition> {
    let mut out = Vec::new();
    if !c.paths.is_empty() {
        out.push(RuleCondition {
            field: Some("path-pattern".into()),
            values: Some(c.paths.clone()),
            path_pattern_config: Some(PathPatternConditionConfig {
                values: Some(c.paths.clone()),
                regex_values: None,
            }),
            ..RuleCondition::default()
        });
    }
    if !c.hosts.is_empty() {
        out.push(RuleCondition {
            field: Some("host-header".into()),
            values: Some(c.hosts.clone()),
            host_header_config: Some(HostHeaderConditionConfig {
                values: Some(c.hosts.clone()),
                regex_values: None,
            }),
            ..RuleCondition::default()
        });
    }
    out
}
