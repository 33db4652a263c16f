//! The checks of security groups and their rules, on a database alone.

use super::*;

fn tcp(port: i32, block: &str) -> Permission {
    Permission {
        prefix: "IpPermissions.1.".into(),
        protocol: "tcp".into(),
        from_port: Some(port),
        to_port: Some(port),
        peers: vec![Peer::Cidr {
            prefix: "IpPermissions.1.IpRanges.1.".into(),
            block: block.into(),
            description: None,
        }],
    }
}

fn group(conn: &Connection, vpc: &str, name: &str) -> GroupRow {
    create_group(
        conn,
        &CreateGroup {
            name: name.into(),
            description: "d".into(),
            vpc_id: Some(vpc.into()),
            tags: Vec::new(),
        },
    )
    .unwrap()
}

fn ingress(g: &GroupRow, permissions: Vec<Permission>) -> RuleChange {
    RuleChange {
        group: GroupRef::Id(g.id.clone()),
        egress: false,
        permissions,
    }
}

#[test]
fn a_new_group_allows_all_egress_and_names_are_unique_per_vpc() {
    let (_d, db) = crate::ec2::test_db();
    let conn = db.lock();
    vpcs::insert_vpc(&conn, "vpc-00000001", "10.0.0.0/16", false).unwrap();
    let g = group(&conn, "vpc-00000001", "web");
    let rules = security_groups::rules_of(&conn, &g.id).unwrap();
    assert_eq!(rules.len(), 1);
    assert!(rules[0].egress && rules[0].cidr.as_deref() == Some("0.0.0.0/0"));
    let again = create_group(
        &conn,
        &CreateGroup {
            name: "web".into(),
            description: "d".into(),
            vpc_id: Some("vpc-00000001".into()),
            tags: Vec::new(),
        },
    )
    .unwrap_err();
    assert_eq!(again.code(), Some("InvalidGroup.Duplicate"));
}

#[test]
fn duplicates_and_the_rule_limit_are_refused_and_change_nothing() {
    let (_d, db) = crate::ec2::test_db();
    let conn = db.lock();
    vpcs::insert_vpc(&conn, "vpc-00000001", "10.0.0.0/16", false).unwrap();
    let g = group(&conn, "vpc-00000001", "web");
    authorize(&conn, &ingress(&g, vec![tcp(22, "10.0.0.0/8")]), &[]).unwrap();
    let e = authorize(&conn, &ingress(&g, vec![tcp(22, "10.0.0.0/8")]), &[]).unwrap_err();
    assert_eq!(e.code(), Some("InvalidPermission.Duplicate"));
    let many: Vec<Permission> = (1..=MAX_RULES as i32)
        .map(|p| tcp(1000 + p, "0.0.0.0/0"))
        .collect();
    let e = authorize(&conn, &ingress(&g, many), &[]).unwrap_err();
    assert_eq!(e.code(), Some("RulesPerSecurityGroupLimitExceeded"));
    let ingress_rules = security_groups::rules_of(&conn, &g.id)
        .unwrap()
        .into_iter()
        .filter(|r| !r.egress)
        .count();
    assert_eq!(ingress_rules, 1);
}

#[test]
fn permissions_are_checked_with_the_field_that_is_wrong() {
    let (_d, db) = crate::ec2::test_db();
    let conn = db.lock();
    vpcs::insert_vpc(&conn, "vpc-00000001", "10.0.0.0/16", false).unwrap();
    let g = group(&conn, "vpc-00000001", "web");
    let mut backwards = tcp(80, "0.0.0.0/0");
    backwards.to_port = Some(79);
    let e = authorize(&conn, &ingress(&g, vec![backwards]), &[]).unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameterValue"));
    assert!(e.to_string().contains("IpPermissions.1.FromPort"), "{e}");
    let e = authorize(&conn, &ingress(&g, vec![tcp(80, "10.0.0.1/33")]), &[]).unwrap_err();
    assert!(
        e.to_string().contains("IpPermissions.1.IpRanges.1.CidrIp"),
        "{e}"
    );
    let mut gre = tcp(80, "0.0.0.0/0");
    gre.protocol = "gre".into();
    let e = authorize(&conn, &ingress(&g, vec![gre]), &[]).unwrap_err();
    assert!(
        e.to_string().contains("'gre' is not a supported protocol"),
        "{e}"
    );
}

#[test]
fn a_peer_group_must_be_in_the_same_vpc() {
    let (_d, db) = crate::ec2::test_db();
    let conn = db.lock();
    vpcs::insert_vpc(&conn, "vpc-00000001", "10.0.0.0/16", false).unwrap();
    vpcs::insert_vpc(&conn, "vpc-00000002", "10.1.0.0/16", false).unwrap();
    let g = group(&conn, "vpc-00000001", "web");
    let other = group(&conn, "vpc-00000002", "db");
    let mut p = tcp(5432, "0.0.0.0/0");
    p.peers = vec![Peer::Group {
        prefix: "IpPermissions.1.Groups.1.".into(),
        id: Some(other.id.clone()),
        name: None,
        description: None,
    }];
    let e = authorize(&conn, &ingress(&g, vec![p]), &[]).unwrap_err();
    assert_eq!(e.code(), Some("InvalidGroup.NotFound"));
    assert!(e.to_string().contains("different networks"), "{e}");
}

#[test]
fn revoking_what_is_not_there_is_refused() {
    let (_d, db) = crate::ec2::test_db();
    let conn = db.lock();
    vpcs::insert_vpc(&conn, "vpc-00000001", "10.0.0.0/16", false).unwrap();
    let g = group(&conn, "vpc-00000001", "web");
    let e = revoke(&conn, &ingress(&g, vec![tcp(22, "0.0.0.0/0")]), &[]).unwrap_err();
    assert_eq!(e.code(), Some("InvalidPermission.NotFound"));
    let e = revoke(&conn, &ingress(&g, Vec::new()), &["sgr-00000009".into()]).unwrap_err();
    assert_eq!(e.code(), Some("InvalidSecurityGroupRuleId.NotFound"));
    let added = authorize(&conn, &ingress(&g, vec![tcp(22, "0.0.0.0/0")]), &[]).unwrap();
    let gone = revoke(&conn, &ingress(&g, vec![tcp(22, "0.0.0.0/0")]), &[]).unwrap();
    assert_eq!(gone[0].id, added[0].id);
}

#[test]
fn a_default_group_and_a_group_in_use_are_not_deleted() {
    let (_d, db) = crate::ec2::test_db();
    let conn = db.lock();
    vpcs::insert_vpc(&conn, "vpc-00000001", "10.0.0.0/16", false).unwrap();
    let default = group(&conn, "vpc-00000001", "default");
    let e = delete_group(&conn, &GroupRef::Id(default.id.clone())).unwrap_err();
    assert_eq!(e.code(), Some("CannotDelete"));
    let web = group(&conn, "vpc-00000001", "web");
    let app = group(&conn, "vpc-00000001", "app");
    let mut p = tcp(80, "0.0.0.0/0");
    p.peers = vec![Peer::Group {
        prefix: "IpPermissions.1.Groups.1.".into(),
        id: Some(web.id.clone()),
        name: None,
        description: None,
    }];
    authorize(&conn, &ingress(&app, vec![p]), &[]).unwrap();
    let e = delete_group(&conn, &GroupRef::Id(web.id.clone())).unwrap_err();
    assert_eq!(e.code(), Some("DependencyViolation"));
    assert_eq!(
        delete_group(&conn, &GroupRef::Id("sg-zz".into()))
            .unwrap_err()
            .code(),
        Some("InvalidGroupId.Malformed")
    );
    delete_group(&conn, &GroupRef::Id(app.id.clone())).unwrap();
    delete_group(&conn, &GroupRef::Id(web.id.clone())).unwrap();
}
