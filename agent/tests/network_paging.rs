//! Paging of the networking Describe actions (DescribeVpcs, DescribeSubnets,
//! DescribeSecurityGroups, DescribeSecurityGroupRules, DescribeNetworkInterfaces):
//! `MaxResults` with the `NextToken` each page gives reaches every item once, whatever is
//! deleted in between; `MaxResults` outside 5 to 1000 and forged tokens are refused.

mod common;

use common::Agent;
use common::network::{create_group, expect_code, first};

/// The `id` child of each item of `set` in one answer, and its `nextToken`.
fn page(xml: &str, set: &str, id: &str) -> (Vec<String>, Option<String>) {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let child = |n: roxmltree::Node<'_, '_>, name: &str| {
        n.children()
            .find(|c| c.has_tag_name(name))
            .and_then(|c| c.text())
            .map(str::to_string)
    };
    let items = doc
        .descendants()
        .filter(|n| n.has_tag_name("item") && n.parent().is_some_and(|p| p.has_tag_name(set)))
        .map(|n| child(n, id).unwrap_or_default())
        .collect();
    (items, child(doc.root_element(), "nextToken"))
}

/// Every id of `action` in pages of `max`, checking each page's size.
fn all_pages(agent: &Agent, action: &str, set: &str, id: &str, max: usize) -> Vec<String> {
    let max_s = max.to_string();
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..100 {
        let mut p = vec![("MaxResults", max_s.as_str())];
        if let Some(t) = &token {
            p.push(("NextToken", t.as_str()));
        }
        let (items, next) = page(&agent.call(action, &p), set, id);
        assert!(
            items.len() <= max,
            "{action}: {} items in a page of {max}",
            items.len()
        );
        out.extend(items);
        match next {
            Some(t) => token = Some(t),
            None => return out,
        }
    }
    panic!("{action} did not end after 100 pages");
}

/// Every id of `action` unpaged, sorted.
fn unpaged(agent: &Agent, action: &str, set: &str, id: &str) -> Vec<String> {
    let (mut items, token) = page(&agent.call(action, &[]), set, id);
    assert_eq!(token, None, "{action} unpaged gave a token");
    items.sort();
    items
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
        let all = unpaged(&agent, action, set, id);
        assert!(all.len() > 5, "{action}: only {} items", all.len());
        assert_eq!(all_pages(&agent, action, set, id, 5), all, "{action}");
        assert_eq!(all_pages(&agent, action, set, id, 1000), all, "{action}");
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
        id,
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
            id,
        );
        seen.extend(items);
        token = next;
    }
    let mut expected = unpaged(&agent, "DescribeNetworkInterfaces", set, id);
    expected.push(gone);
    expected.sort();
    assert_eq!(seen, expected, "every interface once, across the deletion");
}
