//! Reading EC2 responses: small helpers over `roxmltree`, and a generic XML-to-JSON view.

use roxmltree::Node;
use serde_json::{Map, Value};

/// The text of the first child element named `name`.
pub fn text<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.children()
        .find(|c| c.has_tag_name(name))
        .map(|c| c.text().unwrap_or(""))
}

/// The first child element named `name`.
pub fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name(name))
}

/// The `item`s under the child element `set`.
pub fn items<'a, 'i>(node: Node<'a, 'i>, set: &str) -> Vec<Node<'a, 'i>> {
    child(node, set)
        .map(|s| s.children().filter(|c| c.has_tag_name("item")).collect())
        .unwrap_or_default()
}

/// The JSON name for an XML element: `instancesSet` -> `Instances`, `keyName` -> `KeyName`.
fn json_name(tag: &str) -> String {
    let renamed = match tag {
        "instanceState" | "imageState" => "State",
        "reason" => "StateTransitionReason",
        "dnsName" => "PublicDnsName",
        "keySet" => "KeyPairs",
        "imageOwnerId" => "OwnerId",
        "isPublic" => "Public",
        "instanceStatusSet" => "InstanceStatuses",
        "instanceTypeSet" => "InstanceTypes",
        "keyMaterial" => "KeyMaterial",
        "ipAddress" => "PublicIpAddress",
        "securityGroupInfo" => "SecurityGroups",
        _ => "",
    };
    if !renamed.is_empty() {
        return renamed.to_string();
    }
    let base = match tag.strip_suffix("Set") {
        Some(b) if !b.ends_with('s') => format!("{b}s"),
        Some(b) => b.to_string(),
        None => tag.to_string(),
    };
    let mut c = base.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// Converts an element to JSON: lists of `item`s to arrays, leaves to strings or numbers.
pub fn to_json(node: Node<'_, '_>) -> Value {
    let elems: Vec<Node<'_, '_>> = node.children().filter(|c| c.is_element()).collect();
    let tag = node.tag_name().name();
    if elems.is_empty()
        && (tag.ends_with("Set")
            || matches!(tag, "blockDeviceMapping" | "productCodes" | "details"))
    {
        return Value::Array(Vec::new());
    }
    if elems.is_empty() {
        let t = node.text().unwrap_or("");
        return match t {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => t
                .parse::<i64>()
                .ok()
                .filter(|_| !t.starts_with('0') || t == "0")
                .map_or_else(|| Value::String(t.to_string()), Value::from),
        };
    }
    if elems.iter().all(|c| c.has_tag_name("item")) {
        return Value::Array(elems.into_iter().map(to_json).collect());
    }
    let mut map = Map::new();
    for c in elems {
        let name = c.tag_name().name();
        if name == "requestId" {
            continue;
        }
        map.insert(json_name(name), to_json(c));
    }
    Value::Object(map)
}
