//! Helpers for the networking API tests: XML texts, expected error codes, the agent's
//! namespace, groups and launches.

use super::Agent;

/// Every text of elements named `tag`.
pub fn texts(xml: &str, tag: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name(tag))
        .map(|n| n.text().unwrap_or("").to_string())
        .collect()
}

/// The first text of elements named `tag`.
pub fn first(xml: &str, tag: &str) -> String {
    texts(xml, tag)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
}

pub fn expect_code(agent: &Agent, action: &str, params: &[(&str, &str)], code: &str) {
    let (got, message) = agent.call_err(action, params);
    assert_eq!(got, code, "{action} {params:?}: {message}");
}

pub fn ns_out(agent: &Agent, cmd: &[&str]) -> String {
    String::from_utf8_lossy(&agent.ns.exec(cmd).stdout).into_owned()
}

pub fn default_group(agent: &Agent) -> String {
    first(
        &agent.call("DescribeSecurityGroups", &[("GroupName.1", "default")]),
        "groupId",
    )
}

pub fn create_group(agent: &Agent, name: &str, vpc: Option<&str>) -> String {
    let mut p = vec![("GroupName", name), ("GroupDescription", "test group")];
    if let Some(v) = vpc {
        p.push(("VpcId", v));
    }
    first(&agent.call("CreateSecurityGroup", &p), "groupId")
}

pub fn launch_in_group(agent: &Agent, ami: &str, group: &str) -> String {
    let xml = agent.call(
        "RunInstances",
        &[
            ("ImageId", ami),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("InstanceType", "t2.nano"),
            ("SecurityGroupId.1", group),
        ],
    );
    super::instance_ids(&xml)[0].clone()
}
