//! Paging of the networking Describe actions (DescribeVpcs, DescribeSubnets,
//! DescribeSecurityGroups, DescribeSecurityGroupRules, DescribeNetworkInterfaces):
//! `MaxResults` with the `NextToken` each page gives reaches every item once, whatever is
//! deleted in between; `MaxResults` outside 5 to 1000 and forged tokens are refused.

mod common;

use common::Agent;
use common::network::{create_group, expect_code, first};
use common::paging::{all_pages, page, unpaged};

/// The `id` child of an item.
fn by(id: &str) -> impl Fn(roxmltree::Node<'_, '_>) -> String + '_ {
    move |n| {
        n.children()
            .find(|c| c.has_tag_name(id))
            .and_then(|c| c.text())
            .unwrap_or_default()
            .to_string()
    }
}

#[test]
fn network_describes_page_through_everything() {
    let agent = Agent::start(&[]);
    let mut vpcs = Vec::new();
    for n in 1..=6 {
        let cidr = format!("10.{n}.0.0/16");
        vpcs.push(first(
            &agent.call("CreateVpc", &[("CidrBlock", &cidr)]),
            "vpcId",
        ));
    }
    let mut subnets = Vec::new();
    for n in 1..=6 {
        let cidr = format!("10.1.{n}.0/24");
        let xml = agent.call("CreateSubnet", &[("VpcId", &vpcs[0]), ("CidrBlock", &cidr)]);
        subnets.push(first(&xml, "subnetId"));
    }
    for n in 1..=6 {
        create_group(&agent, &format!("g{n}"), None);
    }
    for _ in 0..6 {
        agent.call("CreateNetworkInterface", &[("SubnetId", &subnets[0])]);
    }
    for (action, set, id) in [
        ("DescribeVpcs", "vpcSet", "vpcId"),
        ("DescribeSubnets", "subnetSet", "subnetId"),
        ("DescribeSecurityGroups", "securityGroupInfo", "groupId"),
        (
            "DescribeSecurityGroupRules",
            "securityGroupRuleSet",
            "securityGroupRuleId",
        ),
        (
            "DescribeNetworkInterfaces",
            "networkInterfaceSet",
            "networkInterfaceId",
        ),
    ] {
        let all = unpaged(&agent, action, set, &by(id));
        assert!(all.len() > 5, "{action}: only {} items", all.len());
        assert_eq!(all_pages(&agent, action, set, 5, &by(id)), all, "{action}");
        assert_eq!(
            all_pages(&agent, action, set, 1000, &by(id)),
            all,
            "{action}"
        );
        for bad in ["4", "1001"] {
            expect_code(
                &agent,
                action,
                &[("MaxResults", bad)],
                "InvalidParameterValue",
            );
        }
        expect_code(
            &agent,
            action,
            &[("NextToken", "forged")],
            "InvalidParameterValue",
        );
    }

    // An interface of the first page is deleted before the second page is asked for.
    let (set, id) = ("networkInterfaceSet", "networkInterfaceId");
    let (first_page, token) = page(
        &agent.call("DescribeNetworkInterfaces", &[("MaxResults", "5")]),
        set,
        &by(id),
    );
    let gone = first_page.last().unwrap().clone();
    agent.call("DeleteNetworkInterface", &[("NetworkInterfaceId", &gone)]);
    let mut seen = first_page.clone();
    let mut token = Some(token.expect("a second page"));
    while let Some(t) = token.take() {
        let (items, next) = page(
            &agent.call(
                "DescribeNetworkInterfaces",
                &[("MaxResults", "5"), ("NextToken", &t)],
            ),
            set,
            &by(id),
        );
        seen.extend(items);
        token = next;
    }
    let mut expected = unpaged(&agent, "DescribeNetworkInterfaces", set, &by(id));
    expected.push(gone);
    expected.sort();
    assert_eq!(seen, expected, "every interface once, across the deletion");
}
