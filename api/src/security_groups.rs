//! Security-group actions: CreateSecurityGroup, DeleteSecurityGroup, DescribeSecurityGroups,
//! DescribeSecurityGroupRules, AuthorizeSecurityGroupIngress/Egress and
//! RevokeSecurityGroupIngress/Egress. Every change to rules is applied to the firewall (and so
//! to running instances) before the answer is sent.

use rusqlite::Connection;
use shapes::ec2::{
    AuthorizeSecurityGroupEgressRequest, AuthorizeSecurityGroupEgressResult,
    AuthorizeSecurityGroupIngressRequest, AuthorizeSecurityGroupIngressResult,
    CreateSecurityGroupRequest, CreateSecurityGroupResult, DeleteSecurityGroupRequest,
    DeleteSecurityGroupResult, DescribeSecurityGroupRulesRequest, DescribeSecurityGroupRulesResult,
    DescribeSecurityGroupsRequest, DescribeSecurityGroupsResult, IpPermission, IpRange,
    ReferencedSecurityGroup, RevokeSecurityGroupEgressRequest, RevokeSecurityGroupEgressResult,
    RevokeSecurityGroupIngressRequest, RevokeSecurityGroupIngressResult, RevokedSecurityGroupRule,
    SecurityGroup, SecurityGroupRule, UserIdGroupPair,
};

use super::errors::ApiError;
use super::filters::filters_match;
use super::sg_permissions::{Requested, requested_permissions};
use super::typed::non_empty;
use super::typed::{self, Page, tag_set};
use super::vpcs::bool_text;
use super::{Call, REGION};
use control::ec2::security_groups::{self as control_sg, CreateGroup, GroupRef, RuleChange};
use state::security_groups::{self, RuleRow};
use state::{tags, vpcs};

/// The group a request names by `GroupId`, or by `GroupName` in the default VPC (when
/// `by_name`).
fn target_group(
    group_id: Option<&str>,
    group_name: Option<&str>,
    by_name: bool,
) -> Result<GroupRef, ApiError> {
    match (group_id, group_name.filter(|_| by_name)) {
        (Some(id), _) => Ok(GroupRef::Id(id.into())),
        (None, Some(name)) => Ok(GroupRef::NameInDefaultVpc(name.into())),
        (None, None) => Err(ApiError::missing("GroupId")),
    }
}

/// The group `id`: `InvalidGroupId.Malformed` or `InvalidGroup.NotFound`.
pub fn group_by_id(
    conn: &Connection,
    id: &str,
) -> Result<state::security_groups::GroupRow, ApiError> {
    control_sg::group_by_id(conn, id).map_err(|e| ApiError::refused(&e))
}

fn group_arn(owner: &str, id: &str) -> String {
    format!("arn:aws:ec2:{REGION}:{owner}:security-group/{id}")
}

/// CreateSecurityGroup: `GroupName`, `GroupDescription`, `VpcId` (default: the default
/// VPC), `TagSpecification.N`. The group starts with EC2's default egress rule (all traffic
/// to 0.0.0.0/0) and no ingress.
pub fn create(
    c: &Call<'_>,
    input: CreateSecurityGroupRequest,
) -> Result<CreateSecurityGroupResult, ApiError> {
    let name = non_empty(&input.group_name, "GroupName")?;
    let description = non_empty(&input.description, "GroupDescription")?;
    for (field, v) in [("GroupName", name), ("GroupDescription", description)] {
        if v.chars().count() > 255 || !v.is_ascii() {
            return Err(ApiError::invalid(field, "use 1 to 255 ASCII characters"));
        }
    }
    if name.to_ascii_lowercase().starts_with("sg-") {
        return Err(ApiError::invalid(
            "GroupName",
            "group names may not start with 'sg-'",
        ));
    }
    let tag_list =
        typed::tag_specifications(input.tag_specifications.as_deref(), "security-group")?;
    let group =
        c.st.plane
            .create_security_group(&CreateGroup {
                name: name.to_owned(),
                description: description.to_owned(),
                vpc_id: input.vpc_id.clone(),
                tags: tag_list.clone(),
            })
            .map_err(|e| ApiError::refused(&e))?;
    Ok(CreateSecurityGroupResult {
        security_group_arn: Some(group_arn(&c.st.account_id, &group.id)),
        group_id: Some(group.id),
        tags: tag_set(&tag_list),
    })
}

/// DeleteSecurityGroup by `GroupId` or `GroupName` (default VPC): refused for a VPC's default
/// group, while network interfaces use it, and while other groups' rules name it.
pub async fn delete(
    c: &Call<'_>,
    input: DeleteSecurityGroupRequest,
) -> Result<DeleteSecurityGroupResult, ApiError> {
    let target = target_group(input.group_id.as_deref(), input.group_name.as_deref(), true)?;
    let group =
        c.st.plane
            .delete_security_group(&target)
            .await
            .map_err(|e| ApiError::refused(&e))?;
    Ok(DeleteSecurityGroupResult {
        return_: Some(true),
        group_id: Some(group.id),
    })
}

/// One `IpPermission` key: protocol and ports.
type PermissionKey = (String, Option<i32>, Option<i32>);

/// A rule's description, left out when empty.
fn description(r: &RuleRow) -> Option<String> {
    Some(r.description.clone()).filter(|d| !d.is_empty())
}

/// Rules as EC2's `IpPermission` items, grouped by protocol and ports.
fn permissions(owner: &str, rules: &[&RuleRow]) -> Vec<IpPermission> {
    let mut keys: Vec<PermissionKey> = Vec::new();
    for r in rules {
        let k = (r.protocol.clone(), r.from_port, r.to_port);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|(protocol, from, to)| {
            let same: Vec<&&RuleRow> = rules
                .iter()
                .filter(|r| r.protocol == protocol && r.from_port == from && r.to_port == to)
                .collect();
            IpPermission {
                ip_protocol: Some(protocol),
                from_port: from,
                to_port: to,
                user_id_group_pairs: Some(
                    same.iter()
                        .filter(|r| r.peer_group_id.is_some())
                        .map(|r| UserIdGroupPair {
                            user_id: Some(owner.to_string()),
                            group_id: r.peer_group_id.clone(),
                            description: description(r),
                            ..UserIdGroupPair::default()
                        })
                        .collect(),
                ),
                ip_ranges: Some(
                    same.iter()
                        .filter(|r| r.cidr.is_some())
                        .map(|r| IpRange {
                            cidr_ip: r.cidr.clone(),
                            description: description(r),
                        })
                        .collect(),
                ),
                ipv6_ranges: Some(Vec::new()),
                prefix_list_ids: Some(Vec::new()),
            }
        })
        .collect()
}

/// One `SecurityGroupRule` item.
fn rule_item(owner: &str, r: &RuleRow, t: &[(String, String)]) -> SecurityGroupRule {
    SecurityGroupRule {
        security_group_rule_id: Some(r.id.clone()),
        group_id: Some(r.group_id.clone()),
        group_owner_id: Some(owner.to_string()),
        is_egress: Some(r.egress),
        ip_protocol: Some(r.protocol.clone()),
        from_port: Some(r.from_port.unwrap_or(-1)),
        to_port: Some(r.to_port.unwrap_or(-1)),
        cidr_ipv4: r.cidr.clone(),
        referenced_group_info: r
            .peer_group_id
            .as_ref()
            .map(|peer| ReferencedSecurityGroup {
                group_id: Some(peer.clone()),
                user_id: Some(owner.to_string()),
                ..ReferencedSecurityGroup::default()
            }),
        description: description(r),
        security_group_rule_arn: Some(format!(
            "arn:aws:ec2:{REGION}:{owner}:security-group-rule/{}",
            r.id
        )),
        tags: tag_set(t),
        ..SecurityGroupRule::default()
    }
}

/// DescribeSecurityGroups: `GroupId.N`, `GroupName.N` (default VPC); filters `group-id`,
/// `group-name`, `vpc-id`, `description`, `owner-id`, `tag:KEY`, `tag-key`; pages of 5 to
/// 1000.
pub fn describe(
    c: &Call<'_>,
    input: DescribeSecurityGroupsRequest,
) -> Result<DescribeSecurityGroupsResult, ApiError> {
    let ids = input.group_ids.unwrap_or_default();
    let names = input.group_names.unwrap_or_default();
    let filters = typed::filters(input.filters.as_deref())?;
    let page = Page::new(input.max_results, input.next_token.as_deref(), 5, 1000)?;
    let (groups, rules, tag_map, default_vpc) = {
        let conn = c.st.db.lock();
        for id in &ids {
            group_by_id(&conn, id)?;
        }
        let groups = security_groups::groups(&conn)?;
        let refs: Vec<&str> = groups.iter().map(|g| g.id.as_str()).collect();
        let tag_map = tags::for_resources(&conn, &refs)?;
        let default_vpc = vpcs::default_vpc(&conn)?.map(|v| v.id).unwrap_or_default();
        (groups, security_groups::rules(&conn)?, tag_map, default_vpc)
    };
    for n in &names {
        if !groups
            .iter()
            .any(|g| &g.name == n && g.vpc_id == default_vpc)
        {
            return Err(ApiError::new(
                "InvalidGroup.NotFound",
                format!("The security group '{n}' does not exist in default VPC '{default_vpc}'"),
            ));
        }
    }
    let owner = &c.st.account_id;
    let mut out = Vec::new();
    for g in &groups {
        let named = names.contains(&g.name) && g.vpc_id == default_vpc;
        if (!ids.is_empty() || !names.is_empty()) && !ids.contains(&g.id) && !named {
            continue;
        }
        let t = tag_map.get(&g.id).map_or(&[][..], Vec::as_slice);
        let keep = filters_match(
            &filters,
            t,
            "group-id, group-name, vpc-id, description, owner-id",
            |name| match name {
                "group-id" => Some(vec![g.id.clone()]),
                "group-name" => Some(vec![g.name.clone()]),
                "vpc-id" => Some(vec![g.vpc_id.clone()]),
                "description" => Some(vec![g.description.clone()]),
                "owner-id" => Some(vec![owner.clone()]),
                _ => None,
            },
        )?;
        if !keep {
            continue;
        }
        let of = |egress: bool| -> Vec<&RuleRow> {
            rules
                .iter()
                .filter(|r| r.group_id == g.id && r.egress == egress)
                .collect()
        };
        out.push(SecurityGroup {
            owner_id: Some(owner.clone()),
            group_id: Some(g.id.clone()),
            group_name: Some(g.name.clone()),
            description: Some(g.description.clone()),
            vpc_id: Some(g.vpc_id.clone()),
            security_group_arn: Some(group_arn(owner, &g.id)),
            ip_permissions: Some(permissions(owner, &of(false))),
            ip_permissions_egress: Some(permissions(owner, &of(true))),
            tags: tag_set(t),
        });
    }
    let (security_groups, next_token) =
        page.apply(out, |g| g.group_id.as_deref().unwrap_or_default());
    Ok(DescribeSecurityGroupsResult {
        security_groups: Some(security_groups),
        next_token,
    })
}

/// DescribeSecurityGroupRules: `SecurityGroupRuleId.N`; filters `group-id`,
/// `security-group-rule-id`, `is-egress`, `tag:KEY`, `tag-key`; pages of 5 to 1000.
pub fn describe_rules(
    c: &Call<'_>,
    input: DescribeSecurityGroupRulesRequest,
) -> Result<DescribeSecurityGroupRulesResult, ApiError> {
    let ids = input.security_group_rule_ids.unwrap_or_default();
    let filters = typed::filters(input.filters.as_deref())?;
    let page = Page::new(input.max_results, input.next_token.as_deref(), 5, 1000)?;
    let (rules, tag_map) = {
        let conn = c.st.db.lock();
        let rules = security_groups::rules(&conn)?;
        let refs: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
        (rules.clone(), tags::for_resources(&conn, &refs)?)
    };
    if let Some(missing) = ids.iter().find(|i| !rules.iter().any(|r| &r.id == *i)) {
        return Err(ApiError::new(
            "InvalidSecurityGroupRuleId.NotFound",
            format!("The security group rule ID '{missing}' does not exist"),
        ));
    }
    let owner = &c.st.account_id;
    let mut out = Vec::new();
    for r in rules
        .iter()
        .filter(|r| ids.is_empty() || ids.contains(&r.id))
    {
        let t = tag_map.get(&r.id).map_or(&[][..], Vec::as_slice);
        let keep = filters_match(
            &filters,
            t,
            "group-id, security-group-rule-id, is-egress",
            |name| match name {
                "group-id" => Some(vec![r.group_id.clone()]),
                "security-group-rule-id" => Some(vec![r.id.clone()]),
                "is-egress" => Some(vec![bool_text(r.egress).into()]),
                _ => None,
            },
        )?;
        if keep {
            out.push(rule_item(owner, r, t));
        }
    }
    let (rules, next_token) = page.apply(out, |r| {
        r.security_group_rule_id.as_deref().unwrap_or_default()
    });
    Ok(DescribeSecurityGroupRulesResult {
        security_group_rules: Some(rules),
        next_token,
    })
}

/// The permissions of an Authorize or Revoke request, as [`Requested`].
macro_rules! requested {
    ($input:expr) => {
        Requested {
            ip_protocol: $input.ip_protocol.as_deref(),
            from_port: $input.from_port,
            to_port: $input.to_port,
            cidr_ip: $input.cidr_ip.as_deref(),
            source_security_group_name: $input.source_security_group_name.as_deref(),
            ip_permissions: $input.ip_permissions.as_deref().unwrap_or_default(),
        }
    };
}

/// AuthorizeSecurityGroupIngress: by `GroupId` or `GroupName` (default VPC).
pub async fn authorize_ingress(
    c: &Call<'_>,
    input: AuthorizeSecurityGroupIngressRequest,
) -> Result<AuthorizeSecurityGroupIngressResult, ApiError> {
    let change = RuleChange {
        group: target_group(input.group_id.as_deref(), input.group_name.as_deref(), true)?,
        egress: false,
        permissions: requested_permissions(&requested!(input))?,
    };
    let rules = authorize(c, &change, input.tag_specifications.as_deref()).await?;
    Ok(AuthorizeSecurityGroupIngressResult {
        return_: Some(true),
        security_group_rules: Some(rules),
    })
}

/// AuthorizeSecurityGroupEgress: by `GroupId`.
pub async fn authorize_egress(
    c: &Call<'_>,
    input: AuthorizeSecurityGroupEgressRequest,
) -> Result<AuthorizeSecurityGroupEgressResult, ApiError> {
    let change = RuleChange {
        group: GroupRef::Id(input.group_id.clone()),
        egress: true,
        permissions: requested_permissions(&requested!(input))?,
    };
    let rules = authorize(c, &change, input.tag_specifications.as_deref()).await?;
    Ok(AuthorizeSecurityGroupEgressResult {
        return_: Some(true),
        security_group_rules: Some(rules),
    })
}

/// Adds the rules `change` asks for, each tagged.
async fn authorize(
    c: &Call<'_>,
    change: &RuleChange,
    specs: Option<&[shapes::ec2::TagSpecification]>,
) -> Result<Vec<SecurityGroupRule>, ApiError> {
    let tag_list = typed::tag_specifications(specs, "security-group-rule")?;
    let added =
        c.st.plane
            .authorize_security_group(change, &tag_list)
            .await
            .map_err(|e| ApiError::refused(&e))?;
    Ok(added
        .iter()
        .map(|r| rule_item(&c.st.account_id, r, &tag_list))
        .collect())
}

/// RevokeSecurityGroupIngress: by `GroupId` or `GroupName` (default VPC), by permission or
/// by `SecurityGroupRuleId.N`.
pub async fn revoke_ingress(
    c: &Call<'_>,
    input: RevokeSecurityGroupIngressRequest,
) -> Result<RevokeSecurityGroupIngressResult, ApiError> {
    let change = RuleChange {
        group: target_group(input.group_id.as_deref(), input.group_name.as_deref(), true)?,
        egress: false,
        permissions: requested_permissions(&requested!(input))?,
    };
    let by_id = input.security_group_rule_ids.as_deref().unwrap_or_default();
    let revoked = revoke(c, &change, by_id).await?;
    Ok(RevokeSecurityGroupIngressResult {
        return_: Some(true),
        unknown_ip_permissions: None,
        revoked_security_group_rules: Some(revoked),
    })
}

/// RevokeSecurityGroupEgress: by `GroupId`, by permission or by `SecurityGroupRuleId.N`.
pub async fn revoke_egress(
    c: &Call<'_>,
    input: RevokeSecurityGroupEgressRequest,
) -> Result<RevokeSecurityGroupEgressResult, ApiError> {
    let change = RuleChange {
        group: GroupRef::Id(input.group_id.clone()),
        egress: true,
        permissions: requested_permissions(&requested!(input))?,
    };
    let by_id = input.security_group_rule_ids.as_deref().unwrap_or_default();
    let revoked = revoke(c, &change, by_id).await?;
    Ok(RevokeSecurityGroupEgressResult {
        return_: Some(true),
        unknown_ip_permissions: None,
        revoked_security_group_rules: Some(revoked),
    })
}

/// Removes the rules `change` names, or those of `by_id` when given.
async fn revoke(
    c: &Call<'_>,
    change: &RuleChange,
    by_id: &[String],
) -> Result<Vec<RevokedSecurityGroupRule>, ApiError> {
    let removed =
        c.st.plane
            .revoke_security_group(change, by_id)
            .await
            .map_err(|e| ApiError::refused(&e))?;
    Ok(removed
        .into_iter()
        .map(|r| RevokedSecurityGroupRule {
            security_group_rule_id: Some(r.id),
            group_id: Some(r.group_id),
            is_egress: Some(r.egress),
            ip_protocol: Some(r.protocol),
            from_port: Some(r.from_port.unwrap_or(-1)),
            to_port: Some(r.to_port.unwrap_or(-1)),
            cidr_ipv4: r.cidr,
            referenced_group_id: r.peer_group_id,
            ..RevokedSecurityGroupRule::default()
        })
        .collect())
}
