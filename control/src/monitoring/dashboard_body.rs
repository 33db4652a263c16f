//! The check of a dashboard's body, CloudWatch's dashboard JSON: an object whose `widgets`
//! array holds objects with a known `type`, a position and size within the grid, and the
//! `properties` their type needs. Each problem is a message with the JSON path it concerns,
//! as CloudWatch's `DashboardValidationMessages`.

use serde_json::{Map, Value};

/// The most widgets a dashboard holds.
pub const MAX_WIDGETS: usize = 500;
/// The most messages one refusal lists.
pub const MAX_MESSAGES: usize = 100;
/// Widget types CloudWatch draws.
const TYPES: &[&str] = &["metric", "text", "log", "alarm", "explorer", "custom"];

/// One problem of a body: where (`/widgets/0/properties`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationMessage {
    /// The JSON path.
    pub data_path: String,
    /// What is wrong.
    pub message: String,
}

struct Messages(Vec<ValidationMessage>);

impl Messages {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        if self.0.len() < MAX_MESSAGES {
            self.0.push(ValidationMessage {
                data_path: path.into(),
                message: message.into(),
            });
        }
    }
}

/// The problems of `body`; empty when it is a dashboard CloudWatch accepts.
pub fn check(body: &str) -> Vec<ValidationMessage> {
    let mut m = Messages(Vec::new());
    let doc: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => {
            m.add("", format!("The body is not valid JSON: {e}"));
            return m.0;
        }
    };
    let Some(top) = doc.as_object() else {
        m.add("", "Should be object");
        return m.0;
    };
    for key in ["start", "end"] {
        if top.get(key).is_some_and(|v| !v.is_string()) {
            m.add(format!("/{key}"), "Should be string");
        }
    }
    if let Some(p) = top.get("periodOverride")
        && !matches!(p.as_str(), Some("auto" | "inherit"))
    {
        m.add(
            "/periodOverride",
            "Should be equal to one of the allowed values: auto, inherit",
        );
    }
    match top.get("widgets") {
        None => m.add("", "Should have required property 'widgets'"),
        Some(Value::Array(widgets)) => {
            if widgets.len() > MAX_WIDGETS {
                m.add(
                    "/widgets",
                    format!("Should NOT have more than {MAX_WIDGETS} items"),
                );
            }
            for (i, w) in widgets.iter().take(MAX_WIDGETS).enumerate() {
                widget(&mut m, &format!("/widgets/{i}"), w);
            }
        }
        Some(_) => m.add("/widgets", "Should be array"),
    }
    m.0
}

fn widget(m: &mut Messages, path: &str, w: &Value) {
    let Some(w) = w.as_object() else {
        m.add(path, "Should be object");
        return;
    };
    for (key, min, max) in [
        ("x", 0, 23),
        ("y", 0, i64::MAX),
        ("width", 1, 24),
        ("height", 1, 1000),
    ] {
        if let Some(v) = w.get(key)
            && !v.as_i64().is_some_and(|n| (min..=max).contains(&n))
        {
            let bound = if max == i64::MAX {
                format!("an integer of at least {min}")
            } else {
                format!("an integer from {min} to {max}")
            };
            m.add(format!("{path}/{key}"), format!("Should be {bound}"));
        }
    }
    let kind = match w.get("type") {
        None => {
            m.add(path, "Should have required property 'type'");
            return;
        }
        Some(Value::String(t)) if TYPES.contains(&t.as_str()) => t.as_str(),
        Some(_) => {
            m.add(
                format!("{path}/type"),
                format!(
                    "Should be equal to one of the allowed values: {}",
                    TYPES.join(", ")
                ),
            );
            return;
        }
    };
    let properties = match w.get("properties") {
        Some(Value::Object(p)) => p,
        Some(_) => {
            m.add(format!("{path}/properties"), "Should be object");
            return;
        }
        None => {
            m.add(path, "Should have required property 'properties'");
            return;
        }
    };
    let at = format!("{path}/properties");
    match kind {
        "text" => required(m, &at, properties, "markdown", Value::is_string, "string"),
        "metric" => metric(m, &at, properties),
        "alarm" => {
            required(m, &at, properties, "alarms", Value::is_array, "array");
            if let Some(Value::Array(a)) = properties.get("alarms")
                && a.iter().any(|x| !x.is_string())
            {
                m.add(format!("{at}/alarms"), "Should be an array of alarm ARNs");
            }
        }
        "log" => required(m, &at, properties, "query", Value::is_string, "string"),
        "custom" => required(m, &at, properties, "endpoint", Value::is_string, "string"),
        _ => {}
    }
}

fn required(
    m: &mut Messages,
    at: &str,
    p: &Map<String, Value>,
    key: &str,
    is: fn(&Value) -> bool,
    kind: &str,
) {
    match p.get(key) {
        None => m.add(at, format!("Should have required property '{key}'")),
        Some(v) if !is(v) => m.add(format!("{at}/{key}"), format!("Should be {kind}")),
        Some(_) => {}
    }
}

/// A metric widget: `metrics` (arrays of namespace, name, dimension pairs and an optional
/// options object, `"..."` repeating the line above) or a Metrics Insights `query`.
fn metric(m: &mut Messages, at: &str, p: &Map<String, Value>) {
    if p.get("query").is_some_and(Value::is_string) && !p.contains_key("metrics") {
        return;
    }
    required(m, at, p, "metrics", Value::is_array, "array");
    let Some(Value::Array(lines)) = p.get("metrics") else {
        return;
    };
    for (i, line) in lines.iter().enumerate() {
        let here = format!("{at}/metrics/{i}");
        let Some(items) = line.as_array() else {
            m.add(here, "Should be array");
            continue;
        };
        let (last, head) = match items.split_last() {
            Some((Value::Object(_), head)) => (true, head),
            _ => (false, items.as_slice()),
        };
        if head.is_empty() && !last {
            m.add(here, "Should NOT have fewer than 1 items");
        } else if head.iter().any(|x| !x.is_string()) {
            m.add(
                here,
                "Should be strings, then an optional object of options",
            );
        }
    }
    if let Some(v) = p.get("view")
        && !matches!(
            v.as_str(),
            Some("timeSeries" | "singleValue" | "gauge" | "bar" | "pie" | "table")
        )
    {
        m.add(
            format!("{at}/view"),
            "Should be equal to one of the allowed values",
        );
    }
    if p.get("period")
        .is_some_and(|v| v.as_i64().is_none_or(|n| n <= 0))
    {
        m.add(format!("{at}/period"), "Should be a positive integer");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(body: &str) -> Vec<(String, String)> {
        check(body)
            .into_iter()
            .map(|m| (m.data_path, m.message))
            .collect()
    }

    #[test]
    fn a_dashboard_with_metric_and_text_widgets_passes() {
        let body = r##"{"widgets": [
            {"type": "metric", "x": 0, "y": 0, "width": 12, "height": 6,
             "properties": {"metrics": [["MyApp", "Hits", "Host", "web-1"], ["...", "web-2", {"stat": "p90"}]],
                            "period": 300, "region": "local-1", "view": "timeSeries"}},
            {"type": "text", "x": 12, "y": 0, "width": 12, "height": 2,
             "properties": {"markdown": "# Hello"}}
        ], "periodOverride": "auto"}"##;
        assert_eq!(paths(body), []);
        assert_eq!(paths(r#"{"widgets": []}"#), []);
    }

    #[test]
    fn each_problem_names_its_path() {
        assert_eq!(paths("not json")[0].0, "");
        assert_eq!(paths("[]"), [("".into(), "Should be object".into())]);
        assert_eq!(
            paths("{}"),
            [("".into(), "Should have required property 'widgets'".into())]
        );
        let body = r#"{"widgets": [
            {"type": "text", "properties": {}},
            {"type": "chart", "properties": {}},
            {"properties": {}},
            {"type": "metric", "width": 30, "properties": {"metrics": "Hits"}},
            {"type": "metric"}
        ]}"#;
        let got = paths(body);
        let want = [
            (
                "/widgets/0/properties",
                "Should have required property 'markdown'",
            ),
            (
                "/widgets/1/type",
                "Should be equal to one of the allowed values: metric, text, log, alarm, explorer, custom",
            ),
            ("/widgets/2", "Should have required property 'type'"),
            ("/widgets/3/width", "Should be an integer from 1 to 24"),
            ("/widgets/3/properties/metrics", "Should be array"),
            ("/widgets/4", "Should have required property 'properties'"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn messages_are_bounded_whatever_the_body() {
        let widgets = vec![r#"{"type": "text", "properties": {}}"#; 2000].join(",");
        let got = check(&format!(r#"{{"widgets": [{widgets}]}}"#));
        assert_eq!(got.len(), MAX_MESSAGES);
        // Deep nesting is a JSON error, not a crash.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(check(&deep).len(), 1);
    }
}
