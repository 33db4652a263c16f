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

/// The `member`s under the child element `list` (awsQuery's lists).
pub fn members<'a, 'i>(node: Node<'a, 'i>, list: &str) -> Vec<Node<'a, 'i>> {
    child(node, list)
        .map(|s| s.children().filter(|c| c.has_tag_name("member")).collect())
        .unwrap_or_default()
}

/// awsQuery lists that may come back empty (`<Datapoints/>`), shown as `[]`.
const QUERY_LISTS: &[&str] = &[
    "Datapoints",
    "MetricAlarms",
    "CompositeAlarms",
    "Topics",
    "Dimensions",
    "Metrics",
    "AlarmActions",
    "OKActions",
    "InsufficientDataActions",
];

/// awsQuery members that are doubles, shown as JSON numbers with a fraction (`3.0`).
const QUERY_DOUBLES: &[&str] = &[
    "SampleCount",
    "Average",
    "Sum",
    "Minimum",
    "Maximum",
    "Threshold",
];

/// awsQuery members that are integers, shown as JSON integers.
const QUERY_INTEGERS: &[&str] = &[
    "Period",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "MinSize",
    "MaxSize",
    "DesiredCapacity",
    "DefaultCooldown",
    "HealthCheckGracePeriod",
    "Progress",
];

/// `t` as a JSON number, if it is a finite one.
fn number(t: &str) -> Option<Value> {
    t.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
}

/// Converts an awsQuery element to JSON: `member` lists to arrays, `entry` maps to objects,
/// members keep their names; known numeric members become numbers (doubles with a fraction,
/// integers without) and `true`/`false` booleans.
pub fn query_to_json(node: Node<'_, '_>) -> Value {
    let elems: Vec<Node<'_, '_>> = node.children().filter(|c| c.is_element()).collect();
    let tag = node.tag_name().name();
    if elems.is_empty() {
        if QUERY_LISTS.contains(&tag) {
            return Value::Array(Vec::new());
        }
        let t = node.text().unwrap_or("");
        return match t {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ if QUERY_DOUBLES.contains(&tag) => {
                number(t).unwrap_or_else(|| Value::String(t.to_string()))
            }
            _ if QUERY_INTEGERS.contains(&tag) => t
                .parse::<i64>()
                .map_or_else(|_| Value::String(t.to_string()), Value::from),
            _ => Value::String(t.to_string()),
        };
    }
    if elems.iter().all(|c| c.has_tag_name("member")) {
        return Value::Array(elems.into_iter().map(query_to_json).collect());
    }
    if elems.iter().all(|c| c.has_tag_name("entry")) {
        let mut map = Map::new();
        for e in elems {
            let key = child(e, "key").and_then(|k| k.text()).unwrap_or("");
            let value = child(e, "value").map_or(Value::Null, query_to_json);
            // A datapoint's percentiles are numbers, like its statistics.
            let value = match &value {
                Value::String(s) if tag == "ExtendedStatistics" => number(s).unwrap_or(value),
                _ => value,
            };
            map.insert(key.to_string(), value);
        }
        return Value::Object(map);
    }
    let mut map = Map::new();
    for c in elems {
        let name = c.tag_name().name();
        if name != "ResponseMetadata" {
            map.insert(name.to_string(), query_to_json(c));
        }
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_documents_become_the_json_of_their_shapes() {
        let xml = r#"<GetMetricStatisticsResponse xmlns="https://monitoring.amazonaws.com/doc/2010-08-01/">
  <GetMetricStatisticsResult>
    <Label>CPUUtilization</Label>
    <Datapoints>
      <member><Timestamp>2026-12-07T16:00:00.000Z</Timestamp><Average>12.5</Average><Sum>25</Sum><Unit>Percent</Unit>
        <ExtendedStatistics><entry><key>p90</key><value>20</value></entry></ExtendedStatistics></member>
    </Datapoints>
    <Empty/>
  </GetMetricStatisticsResult>
  <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>
</GetMetricStatisticsResponse>"#;
        let doc = roxmltree::Document::parse(xml).unwrap();
        let v = query_to_json(doc.root_element());
        let r = &v["GetMetricStatisticsResult"];
        assert_eq!(r["Label"], "CPUUtilization");
        assert_eq!(r["Datapoints"][0]["Average"], 12.5);
        assert_eq!(r["Datapoints"][0]["Unit"], "Percent");
        assert_eq!(r["Datapoints"][0]["Sum"].to_string(), "25.0");
        assert_eq!(r["Datapoints"][0]["ExtendedStatistics"]["p90"], 20.0);
        assert_eq!(r["Empty"], "");
        assert!(v.get("ResponseMetadata").is_none());
        let empty = roxmltree::Document::parse(
            "<R><Datapoints/><Topics></Topics><Period>60</Period><Threshold>1</Threshold></R>",
        )
        .unwrap();
        let v = query_to_json(empty.root_element());
        assert_eq!(v["Period"].to_string(), "60");
        assert_eq!(v["Threshold"].to_string(), "1.0");
        assert_eq!(v["Datapoints"], Value::Array(Vec::new()));
        assert_eq!(v["Topics"], Value::Array(Vec::new()));
        let points = members(empty.root_element(), "Datapoints");
        assert!(points.is_empty());
    }
}
