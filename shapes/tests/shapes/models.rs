//! Checks of every generated service against its trimmed model: the model is whole, and the
//! Rust types of every operation read and write every member of every shape they reach,
//! as values built from the model itself.

use serde_json::{Map, Value, json};
use shapes::{Operation, OperationVisitor, SERVICES};
use std::collections::BTreeSet;

fn model(service: &shapes::Service) -> Value {
    serde_json::from_str(service.model_json)
        .unwrap_or_else(|e| panic!("{}: model.json does not parse: {e}", service.name))
}

fn shape<'m>(model: &'m Value, name: &str) -> &'m Value {
    model["shapes"]
        .get(name)
        .unwrap_or_else(|| panic!("shape {name} is not in the model"))
}

/// The names of the shapes a shape refers to.
fn refs(shape: &Value) -> Vec<&str> {
    fn name(v: &Value) -> &str {
        v["shape"].as_str().expect("a reference names its shape")
    }
    match shape["type"].as_str() {
        Some("structure") => shape["members"]
            .as_object()
            .unwrap()
            .values()
            .map(name)
            .collect(),
        Some("list") => vec![name(&shape["member"])],
        Some("map") => vec![name(&shape["key"]), name(&shape["value"])],
        _ => vec![],
    }
}

#[test]
fn every_service_is_generated_from_the_pinned_botocore() {
    let names: Vec<_> = SERVICES.iter().map(|s| s.name).collect();
    for name in ["ec2", "sts", "cloudwatch"] {
        assert!(names.contains(&name), "{name} is not generated");
    }
    assert_eq!(include_str!("../../BOTOCORE_VERSION").trim(), "1.44.18");
    assert!(shapes::service("sts").is_some());
    assert!(shapes::service("s3").is_none());
}

#[test]
fn models_hold_the_operations_and_the_closure_of_their_shapes() {
    for service in SERVICES {
        let model = model(service);
        assert!(
            model["metadata"]["protocol"].is_string(),
            "{}: no protocol",
            service.name
        );
        let ops = model["operations"].as_object().unwrap();
        let listed: BTreeSet<_> = service.operations.iter().map(|o| o.name).collect();
        let in_model: BTreeSet<_> = ops.keys().map(String::as_str).collect();
        assert_eq!(
            listed, in_model,
            "{}: OPERATIONS and model.json differ",
            service.name
        );

        let mut reached = BTreeSet::new();
        let mut todo = Vec::new();
        for info in service.operations {
            let op = &ops[info.name];
            assert_eq!(op["input"]["shape"].as_str(), info.input, "{}", info.name);
            assert_eq!(op["output"]["shape"].as_str(), info.output, "{}", info.name);
            let errors: Vec<_> = op["errors"].as_array().into_iter().flatten().collect();
            let errors: Vec<_> = errors
                .iter()
                .map(|e| e["shape"].as_str().unwrap())
                .collect();
            assert_eq!(errors, info.errors, "{}", info.name);
            todo.extend(info.input.into_iter().chain(info.output).chain(errors));
        }
        while let Some(name) = todo.pop() {
            if reached.insert(name) {
                todo.extend(refs(shape(&model, name)));
            }
        }
        let kept: BTreeSet<_> = model["shapes"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            reached, kept,
            "{}: shapes beyond the operations' closure",
            service.name
        );
        assert!(
            !service.model_json.contains("\"documentation\""),
            "{}",
            service.name
        );
    }
}

#[test]
fn ec2_keeps_every_member_of_a_shape() {
    let model = model(shapes::service("ec2").unwrap());
    let run = shape(&model, "RunInstancesRequest");
    for member in [
        "ImageId",
        "MaxCount",
        "LaunchTemplate",
        "Operator",
        "DryRun",
    ] {
        assert!(
            run["members"].get(member).is_some(),
            "RunInstancesRequest lacks {member}"
        );
    }
    assert_eq!(run["members"]["DryRun"]["locationName"], "dryRun");
    let types = shape(&model, "InstanceType")["enum"].as_array().unwrap();
    assert!(types.len() > 1000 && types.contains(&json!("t2.micro")));
}

/// How the values of one pass are built.
#[derive(Clone, Copy, PartialEq)]
enum Fill {
    /// Every member, the `n`th value of each enum (modulo its length).
    Every(usize),
    /// Only the required members.
    Required,
    /// Every member, and every enum's value is one that the model does not list.
    BadEnums,
}

/// Builds a value of `name` in the Value contract, from the model alone.
fn synth(model: &Value, name: &str, fill: Fill, path: &mut Vec<String>) -> Option<Value> {
    let s = shape(model, name);
    let n = match fill {
        Fill::Every(n) => n,
        _ => 0,
    };
    Some(match s["type"].as_str().unwrap() {
        "structure" => {
            if path.iter().any(|p| p == name) {
                return None; // a recursive shape: this level is left out
            }
            path.push(name.to_owned());
            let required: Vec<_> = s["required"].as_array().into_iter().flatten().collect();
            let mut object = Map::new();
            for (member, r) in s["members"].as_object().unwrap() {
                let needed = required.iter().any(|m| m.as_str() == Some(member));
                if fill == Fill::Required && !needed {
                    continue;
                }
                match synth(model, r["shape"].as_str().unwrap(), fill, path) {
                    Some(v) => _ = object.insert(member.clone(), v),
                    // A required member that recursion left out: leave this level out too.
                    None if needed => {
                        path.pop();
                        return None;
                    }
                    None => {}
                }
            }
            path.pop();
            Value::Object(object)
        }
        "list" => Value::Array(
            synth(model, s["member"]["shape"].as_str().unwrap(), fill, path)
                .into_iter()
                .collect(),
        ),
        "map" => {
            let key = synth(model, s["key"]["shape"].as_str().unwrap(), fill, path)?;
            let value = synth(model, s["value"]["shape"].as_str().unwrap(), fill, path)?;
            json!({ key.as_str().unwrap(): value })
        }
        "string" => match (s["enum"].as_array(), fill) {
            (Some(_), Fill::BadEnums) => json!("no-such-value"),
            (Some(values), _) => values[n % values.len()].clone(),
            (None, _) => json!(format!("{name}-{n}")),
        },
        "integer" => json!(-7 - n as i64),
        "long" => json!(5_000_000_000_i64 + n as i64),
        "float" | "double" => json!(1.5),
        "boolean" => json!(n % 2 == 0),
        "timestamp" => {
            json!(["2024-05-01T12:34:56Z", "2024-05-01T12:34:56.789Z"][n % 2])
        }
        "blob" => json!(["AAEC/w==", ""][n % 2]),
        other => panic!("{name}: a shape of type {other}"),
    })
}

/// The longest enum a shape reaches: how many passes give every enum value a turn.
fn longest_enum(model: &Value, name: &str, seen: &mut BTreeSet<String>) -> usize {
    if !seen.insert(name.to_owned()) {
        return 0;
    }
    let s = shape(model, name);
    let own = s["enum"].as_array().map_or(0, Vec::len);
    refs(s)
        .iter()
        .map(|r| longest_enum(model, r, seen))
        .fold(own, usize::max)
}

/// Round-trips synthesized inputs and outputs through each operation's types.
struct RoundTrip<'m> {
    model: &'m Value,
    checked: usize,
}

/// Reads a value into a type.
type From<T> = fn(Value) -> Result<T, serde_json::Error>;
/// Writes a type into a value.
type To<T> = fn(&T) -> Result<Value, serde_json::Error>;

impl RoundTrip<'_> {
    /// Round-trips values of `shape` through `from` and `to`: the operation's own conversions,
    /// so that this test does not compile serde's code for every type again.
    fn check<T>(&mut self, op: &str, shape: &str, from: From<T>, to: To<T>) {
        let passes = longest_enum(self.model, shape, &mut BTreeSet::new()).max(2);
        for fill in (0..passes).map(Fill::Every).chain([Fill::Required]) {
            let value = synth(self.model, shape, fill, &mut Vec::new()).unwrap();
            let typed = from(value.clone())
                .unwrap_or_else(|e| panic!("{op}: {shape} does not read {value}: {e}"));
            let back = to(&typed).unwrap();
            assert_eq!(
                back, value,
                "{op}: {shape} does not write back what it read"
            );
            self.checked += 1;
        }
        let bad = synth(self.model, shape, Fill::BadEnums, &mut Vec::new()).unwrap();
        if bad.to_string().contains("no-such-value") {
            assert!(
                from(bad).is_err(),
                "{op}: {shape} accepts an enum value the model does not list"
            );
        }
        // Each required member of the shape itself is required by its type.
        let required = self.model["shapes"][shape]["required"].as_array();
        let full = synth(self.model, shape, Fill::Every(0), &mut Vec::new()).unwrap();
        for member in required.into_iter().flatten() {
            let mut partial = full.clone();
            partial
                .as_object_mut()
                .unwrap()
                .remove(member.as_str().unwrap());
            assert!(
                from(partial).is_err(),
                "{op}: {shape} reads a value without its required {member}"
            );
        }
    }
}

impl OperationVisitor for RoundTrip<'_> {
    fn visit<O: Operation>(&mut self) {
        let op = &self.model["operations"][O::NAME];
        assert!(
            op.is_object(),
            "{} is not in the {} model",
            O::NAME,
            O::SERVICE
        );
        // An operation without an input or output shape has `Empty`, the object `{}`.
        let empty = |v: Result<Value, serde_json::Error>| assert_eq!(v.unwrap(), json!({}));
        match op["input"]["shape"].as_str() {
            Some(input) => self.check(O::NAME, input, O::input_from_value, O::input_to_value),
            None => empty(O::input_to_value(&O::input_from_value(json!({})).unwrap())),
        }
        match op["output"]["shape"].as_str() {
            Some(output) => self.check(O::NAME, output, O::output_from_value, O::output_to_value),
            None => empty(O::output_to_value(
                &O::output_from_value(json!({})).unwrap(),
            )),
        }
    }
}

#[test]
fn every_operations_types_round_trip_every_member_and_enum_value() {
    for service in SERVICES {
        let model = model(service);
        let mut rt = RoundTrip {
            model: &model,
            checked: 0,
        };
        assert!(shapes::for_each_operation(service.name, &mut rt));
        assert!(
            rt.checked > service.operations.len(),
            "{}: too few values checked",
            service.name
        );
    }
    assert!(!shapes::for_each_operation(
        "s3",
        &mut RoundTrip {
            model: &json!({}),
            checked: 0
        }
    ));
}
