//! Security-group actions: CreateSecurityGroup, DeleteSecurityGroup, DescribeSecurityGroups,
//! DescribeSecurityGroupRules, AuthorizeSecurityGroupIngress/Egress and
//! RevokeSecurityGroupIngress/Egress. Every change to rules is applied to the firewall (and so
//! to running instances) before the answer is sent.

use rusqlite::Connection;

use super::errors::ApiError;
use super::filters::filters_match;
use super::instances::well_formed_id;
use super::sg_permissions::{describe_rule, requested_rules};
use super::vpcs::{bool_text, sync};
use super::xml::Xml;
use super::{Call, REGION};
use crate::state::security_groups::{self, GroupRow, RuleRow};
use crate::state::{new_id, tags, vpcs};

/// Most rules per group and direction, as on EC2.
pub const MAX_RULES: usize = 60;

/// The group a request names by `GroupId`, or by `GroupName` in the default VPC.
fn target_group(conn: &Connection, c: &Call<'_>, by_name: bool) -> Result<GroupRow, ApiError> {
    if let Some(id) = c.p.get("GroupId") {
        return group_by_id(conn, id);
    }
    let Some(name) = c.p.get("GroupName").filter(|_| by_name) else {
        return Err(ApiError::missing("GroupId"));
    };
    let vpc = vpcs::default_vpc(conn)?.ok_or_else(|| {
        ApiError::new(
            "VPCIdNotSpecified",
            "No default VPC: name the group by GroupId",
        )
    })?;
    security_groups::group_by_name(conn, &vpc.id, name)?.ok_or_else(|| {
        ApiError::new(
            "InvalidGroup.NotFound",
            format!(
                "The security group '{name}' does not exist in default VPC '{}'",
                vpc.id
            ),
        )
    })
}

/// The group `id`: `InvalidGroupId.Malformed` or `InvalidGroup.NotFound`.
pub fn group_by_id(conn: &Connection, id: &str) -> Result<GroupRow, ApiError> {
    if !well_formed_id(id, "sg") {
        return Err(ApiError::new(
            "InvalidGroupId.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"sg-...\")"),
        ));
    }
    security_groups::get_group(conn, id)?.ok_or_else(|| {
        ApiError::new(
            "InvalidGroup.NotFound",
            format!("The security group '{id}' does not exist"),
        )
    })
}

fn group_arn(owner: &str, id: &str) -> String {
    format!("arn:aws:ec2:{REGION}:{owner}:security-group/{id}")
}

/// CreateSecurityGroup: `GroupName`, `GroupDescription`, `VpcId` (default: the default
/// VPC), `TagSpecification.N`. The group starts with EC2's default egress rule (all traffic
/// to 0.0.0.0/0) and no ingress.
pub fn create(c: &Call<'_>) -> Result<String, ApiError> {
    let name = c.p.required("GroupName")?;
    let description = c.p.required("GroupDescription")?;
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
    let tag_list = c.p.tag_specifications("security-group")?;
    let mut conn = c.st.db.lock();
    let tx = conn.transaction()?;
    let vpc = match c.p.get("VpcId") {
        Some(id) => super::vpcs::vpc(&tx, id)?,
        None => vpcs::default_vpc(&tx)?.ok_or_else(|| {
            ApiError::new(
                "VPCIdNotSpecified",
                "No default VPC for this user; give a VpcId",
            )
        })?,
    };
    if security_groups::group_by_name(&tx, &vpc.id, name)?.is_some() {
        return Err(ApiError::new(
            "InvalidGroup.Duplicate",
            format!(
                "The security group '{name}' already exists for VPC '{}'",
                vpc.id
            ),
        ));
    }
    let group = GroupRow {
        id: new_id("sg"),
        vpc_id: vpc.id,
        name: name.to_owned(),
        description: description.to_owned(),
    };
    security_groups::insert_group(&tx, &group)?;
    security_groups::insert_rule(
        &tx,
        &RuleRow {
            id: new_id("sgr"),
            group_id: group.id.clone(),
            egress: true,
            protocol: "-1".into(),
            from_port: None,
            to_port: None,
            cidr: Some("0.0.0.0/0".into()),
            peer_group_id: None,
            description: String::new(),
        },
    )?;
    tags::put(&tx, &group.id, &tag_list)?;
    tx.commit()?;
    let mut x = Xml::response("CreateSecurityGroup", c.request_id);
    x.leaf("return", "true")
        .leaf("groupId", &group.id)
        .leaf("securityGroupArn", group_arn(&c.st.account_id, &group.id));
    if !tag_list.is_empty() {
        x.tag_set(&tag_list);
    }
    Ok(x.finish())
}

/// DeleteSecurityGroup by `GroupId` or `GroupName` (default VPC): refused for a VPC's default
/// group, while network interfaces use it, and while other groups' rules name it.
pub async fn delete(c: &Call<'_>) -> Result<String, ApiError> {
    let group = {
        let mut conn = c.st.db.lock();
        let tx = conn.transaction()?;
        let g = target_group(&tx, c, true)?;
        if g.name == "default" {
            return Err(ApiError::new(
                "CannotDelete",
                format!(
                    "the specified group: \"{}\" name: \"default\" is the default security group \
                     of {} and cannot be deleted",
                    g.id, g.vpc_id
                ),
            ));
        }
        let users = security_groups::eni_count(&tx, &g.id)?;
        if users > 0 {
            return Err(ApiError::new(
                "DependencyViolation",
                format!(
                    "resource {} has a dependent object: {users} network interface(s) use it",
                    g.id
                ),
            ));
        }
        if let Some(other) = security_groups::referenced_by(&tx, &g.id)? {
            return Err(ApiError::new(
                "DependencyViolation",
                format!(
                    "resource {} has a dependent object: rules of {other} name it",
                    g.id
                ),
            ));
        }
        security_groups::delete_group(&tx, &g.id)?;
        tags::delete_all(&tx, &g.id)?;
        tx.commit()?;
        g
    };
    sync(c).await?;
    let mut x = Xml::response("DeleteSecurityGroup", c.request_id);
    x.leaf("return", "true").leaf("groupId", &group.id);
    Ok(x.finish())
}

/// One `IpPermission` key: protocol and ports.
type PermissionKey = (String, Option<i32>, Option<i32>);

fn port_leaves(x: &mut Xml, from: Option<i32>, to: Option<i32>) {
    x.leaf_opt("fromPort", from.map(|p| p.to_string()))
        .leaf_opt("toPort", to.map(|p| p.to_string()));
}

/// Rules as EC2's `IpPermission` items, grouped by protocol and ports.
fn permissions(x: &mut Xml, tag: &str, owner: &str, rules: &[&RuleRow]) {
    let mut keys: Vec<PermissionKey> = Vec::new();
    for r in rules {
        let k = (r.protocol.clone(), r.from_port, r.to_port);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    x.open(tag);
    for (protocol, from, to) in keys {
        let same: Vec<&&RuleRow> = rules
            .iter()
            .filter(|r| r.protocol == protocol && r.from_port == from && r.to_port == to)
            .collect();
        x.open("item").leaf("ipProtocol", &protocol);
        port_leaves(x, from, to);
        x.open("groups");
        for r in same.iter().filter(|r| r.peer_group_id.is_some()) {
            x.open("item")
                .leaf("userId", owner)
                .leaf_opt("groupId", r.peer_group_id.as_ref())
                .leaf_opt(
                    "description",
                    Some(&r.description).filter(|d| !d.is_empty()),
                )
                .close("item");
        }
        x.close("groups").open("ipRanges");
        for r in same.iter().filter(|r| r.cidr.is_some()) {
            x.open("item")
                .leaf_opt("cidrIp", r.cidr.as_ref())
                .leaf_opt(
                    "description",
                    Some(&r.description).filter(|d| !d.is_empty()),
                )
                .close("item");
        }
        x.close("ipRanges")
            .open("ipv6Ranges")
            .close("ipv6Ranges")
            .open("prefixListIds")
            .close("prefixListIds")
            .close("item");
    }
    x.close(tag);
}

/// One `SecurityGroupRule` item.
fn rule_item(x: &mut Xml, owner: &str, r: &RuleRow, t: &[(String, String)]) {
    let all = |p: Option<i32>| p.unwrap_or(-1).to_string();
    x.open("item")
        .leaf("securityGroupRuleId", &r.id)
        .leaf("groupId", &r.group_id)
        .leaf("groupOwnerId", owner)
        .leaf("isEgress", bool_text(r.egress))
        .leaf("ipProtocol", &r.protocol)
        .leaf("fromPort", all(r.from_port))
        .leaf("toPort", all(r.to_port))
        .leaf_opt("cidrIpv4", r.cidr.as_ref());
    if let Some(peer) = &r.peer_group_id {
        x.open("referencedGroupInfo")
            .leaf("groupId", peer)
            .leaf("userId", owner)
            .close("referencedGroupInfo");
    }
    x.leaf_opt(
        "description",
        Some(&r.description).filter(|d| !d.is_empty()),
    )
    .leaf(
        "securityGroupRuleArn",
        format!("arn:aws:ec2:{REGION}:{owner}:security-group-rule/{}", r.id),
    );
    if !t.is_empty() {
        x.tag_set(t);
    }
    x.close("item");
}

/// DescribeSecurityGroups: `GroupId.N`, `GroupName.N` (default VPC); filters `group-id`,
/// `group-name`, `vpc-id`, `description`, `owner-id`, `tag:KEY`, `tag-key`.
pub fn describe(c: &Call<'_>) -> Result<String, ApiError> {
    let ids = c.p.list("GroupId");
    let names = c.p.list("GroupName");
    let filters = c.p.filters()?;
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
    let mut x = Xml::response("DescribeSecurityGroups", c.request_id);
    x.open("securityGroupInfo");
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
        x.open("item")
            .leaf("ownerId", owner)
            .leaf("groupId", &g.id)
            .leaf("groupName", &g.name)
            .leaf("groupDescription", &g.description)
            .leaf("vpcId", &g.vpc_id)
            .leaf("securityGroupArn", group_arn(owner, &g.id));
        permissions(&mut x, "ipPermissions", owner, &of(false));
        permissions(&mut x, "ipPermissionsEgress", owner, &of(true));
        if !t.is_empty() {
            x.tag_set(t);
        }
        x.close("item");
    }
    x.close("securityGroupInfo");
    Ok(x.finish())
}

/// DescribeSecurityGroupRules: `SecurityGroupRuleId.N`; filters `group-id`,
/// `security-group-rule-id`, `is-egress`, `tag:KEY`, `tag-key`.
pub fn describe_rules(c: &Call<'_>) -> Result<String, ApiError> {
    let ids = c.p.list("SecurityGroupRuleId");
    let filters = c.p.filters()?;
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
    let mut x = Xml::response("DescribeSecurityGroupRules", c.request_id);
    x.open("securityGroupRuleSet");
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
            rule_item(&mut x, owner, r, t);
        }
    }
    x.close("securityGroupRuleSet");
    Ok(x.finish())
}

/// AuthorizeSecurityGroupIngress (`egress` false) and AuthorizeSecurityGroupEgress.
pub async fn authorize(c: &Call<'_>, egress: bool) -> Result<String, ApiError> {
    let tag_list = c.p.tag_specifications("security-group-rule")?;
    let added = {
        let mut conn = c.st.db.lock();
        let tx = conn.transaction()?;
        let group = target_group(&tx, c, !egress)?;
        let new = requested_rules(&tx, c, &group, egress)?;
        let existing: Vec<RuleRow> = security_groups::rules_of(&tx, &group.id)?
            .into_iter()
            .filter(|r| r.egress == egress)
            .collect();
        for (i, r) in new.iter().enumerate() {
            if existing
                .iter()
                .chain(&new[..i])
                .any(|e| e.same_permission(r))
            {
                return Err(ApiError::new(
                    "InvalidPermission.Duplicate",
                    format!("the specified rule \"{}\" already exists", describe_rule(r)),
                ));
            }
        }
        if existing.len() + new.len() > MAX_RULES {
            return Err(ApiError::new(
                "RulesPerSecurityGroupLimitExceeded",
                format!(
                    "The maximum number of rules per security group ({MAX_RULES} per direction) \
                     has been reached."
                ),
            ));
        }
        for r in &new {
            security_groups::insert_rule(&tx, r)?;
            tags::put(&tx, &r.id, &tag_list)?;
        }
        tx.commit()?;
        new
    };
    sync(c).await?;
    let action = if egress {
        "AuthorizeSecurityGroupEgress"
    } else {
        "AuthorizeSecurityGroupIngress"
    };
    let mut x = Xml::response(action, c.request_id);
    x.leaf("return", "true").open("securityGroupRuleSet");
    for r in &added {
        rule_item(&mut x, &c.st.account_id, r, &tag_list);
    }
    x.close("securityGroupRuleSet");
    Ok(x.finish())
}

/// RevokeSecurityGroupIngress (`egress` false) and RevokeSecurityGroupEgress, by permission
/// or by `SecurityGroupRuleId.N`.
pub async fn revoke(c: &Call<'_>, egress: bool) -> Result<String, ApiError> {
    let removed = {
        let mut conn = c.st.db.lock();
        let tx = conn.transaction()?;
        let group = target_group(&tx, c, !egress)?;
        let existing: Vec<RuleRow> = security_groups::rules_of(&tx, &group.id)?
            .into_iter()
            .filter(|r| r.egress == egress)
            .collect();
        let by_id = c.p.list("SecurityGroupRuleId");
        let mut removed: Vec<RuleRow> = Vec::new();
        for id in &by_id {
            let r = existing.iter().find(|r| &r.id == id).ok_or_else(|| {
                ApiError::new(
                    "InvalidSecurityGroupRuleId.NotFound",
                    format!(
                        "The security group rule ID '{id}' does not exist in {}",
                        group.id
                    ),
                )
            })?;
            removed.push(r.clone());
        }
        if by_id.is_empty() {
            for wanted in requested_rules(&tx, c, &group, egress)? {
                let r = existing
                    .iter()
                    .find(|e| e.same_permission(&wanted))
                    .ok_or_else(|| {
                        ApiError::new(
                            "InvalidPermission.NotFound",
                            format!(
                                "The specified rule \"{}\" does not exist in this security group.",
                                describe_rule(&wanted)
                            ),
                        )
                    })?;
                removed.push(r.clone());
            }
        }
        for r in &removed {
            security_groups::delete_rule(&tx, &r.id)?;
            tags::delete_all(&tx, &r.id)?;
        }
        tx.commit()?;
        removed
    };
    sync(c).await?;
    let action = if egress {
        "RevokeSecurityGroupEgress"
    } else {
        "RevokeSecurityGroupIngress"
    };
    let mut x = Xml::response(action, c.request_id);
    x.leaf("return", "true").open("revokedSecurityGroupRuleSet");
    for r in &removed {
        x.open("item")
            .leaf("securityGroupRuleId", &r.id)
            .leaf("groupId", &r.group_id)
            .leaf("isEgress", bool_text(r.egress))
            .leaf("ipProtocol", &r.protocol)
            .leaf("fromPort", r.from_port.unwrap_or(-1).to_string())
            .leaf("toPort", r.to_port.unwrap_or(-1).to_string())
            .leaf_opt("cidrIpv4", r.cidr.as_ref())
            .leaf_opt("referencedGroupId", r.peer_group_id.as_ref())
            .close("item");
    }
    x.close("revokedSecurityGroupRuleSet");
    Ok(x.finish())
}

/// Group ids as `GroupRow`s of one VPC, for ModifyInstanceAttribute and
/// ModifyNetworkInterfaceAttribute: 1 to 5, each existing, all in `vpc_id`.
pub fn groups_for_eni(
    conn: &Connection,
    vpc_id: &str,
    ids: &[String],
) -> Result<Vec<String>, ApiError> {
    let mut unique: Vec<String> = Vec::new();
    for id in ids {
        if !unique.contains(id) {
            unique.push(id.clone());
        }
    }
    if unique.is_empty() {
        return Err(ApiError::missing("GroupId.1"));
    }
    for id in &unique {
        group_by_id(conn, id)?;
    }
    let groups = super::launch_network::groups(conn, vpc_id, &unique, &[])?;
    Ok(groups.into_iter().map(|g| g.id).collect())
}
