//! The typed encoder against the Value path: the same bytes for every protocol a model
//! speaks, for random outputs of the fixture models and of botocore's (members handed over in
//! model order, as the generated shapes do), and the same errors for outputs that do not fit.

mod common;

use common::outputs::{ModelOrdered, Rng, value};
use proptest::prelude::*;
use serde_json::{Value, json};
use wire::encode::typed::{self, TypedError};
use wire::{EncodeError, HttpResponse, Protocol, ServiceModel, encode_output, encode_output_typed};

/// Both encoders' answers to `v` as `op`'s output in `protocol`.
fn both(
    model: &ServiceModel,
    protocol: Protocol,
    op: &str,
    v: &Value,
) -> (
    Result<HttpResponse, TypedError>,
    Result<HttpResponse, EncodeError>,
) {
    let shape = model
        .operation(op)
        .and_then(|o| o.output.as_ref())
        .map(|o| &model.shapes[&o.shape]);
    let typed = ModelOrdered {
        model,
        shape,
        value: v,
    };
    (
        typed::encode_output(model, protocol, op, &typed, "rid-1"),
        encode_output(model, protocol, op, v, "rid-1"),
    )
}

/// Checks that the typed encoder writes `v` as the Value path does, in every protocol of
/// `model`; the first difference, else `None`.
fn differs(model: &ServiceModel, op: &str, v: &Value) -> Option<String> {
    for &p in model.protocols() {
        match both(model, p, op, v) {
            (Ok(t), Ok(v)) if t == v => {}
            (Ok(t), Ok(v)) => {
                return Some(format!(
                    "{op} in {}: typed\n{}\nvalue\n{}",
                    p.name(),
                    String::from_utf8_lossy(&t.body),
                    String::from_utf8_lossy(&v.body)
                ));
            }
            (t, v) => return Some(format!("{op} in {}: {t:?} vs {v:?}", p.name())),
        }
    }
    None
}

/// Every operation of `model` with an output, with a random output from `seed`.
fn random_outputs(model: &ServiceModel, seed: u64) -> Option<String> {
    let mut rng = Rng::new(seed);
    for (name, op) in &model.operations {
        let Some(out) = &op.output else { continue };
        let v = value(model, &model.shapes[&out.shape], &mut rng, 5);
        if let Some(d) = differs(model, name, &v) {
            return Some(format!("seed {seed}: {d}\n{v:#}"));
        }
    }
    None
}

/// A model for what the fixtures lack: keys that sort differently from model order, two
/// members with one key, a timestamp in each format, CBOR heads past 23 items.
fn edges() -> ServiceModel {
    let members: serde_json::Map<String, Value> = (0..30)
        .map(|i| (format!("M{i:02}"), json!({"shape": "Name"})))
        .collect();
    let model = json!({
        "metadata": {"apiVersion": "2020-01-01", "endpointPrefix": "edges", "protocol": "json",
                     "protocols": ["smithy-rpc-v2-cbor", "json", "query"], "jsonVersion": "1.1",
                     "targetPrefix": "Edges", "serviceId": "Edges"},
        "operations": {
            "Get": {"name": "Get", "http": {"method": "POST", "requestUri": "/"},
                    "output": {"shape": "GetOutput", "resultWrapper": "GetResult"}},
            "Wide": {"name": "Wide", "http": {"method": "POST", "requestUri": "/"},
                     "output": {"shape": "WideOutput"}},
            "None": {"name": "None", "http": {"method": "POST", "requestUri": "/"}}
        },
        "shapes": {
            "GetOutput": {"type": "structure", "members": {
                "Zeta": {"shape": "Name", "locationName": "alpha"},
                "Alpha": {"shape": "Name"},
                "Same1": {"shape": "Name", "locationName": "same"},
                "Same2": {"shape": "Name", "locationName": "same"},
                "Epoch": {"shape": "Time", "timestampFormat": "unixTimestamp"},
                "Iso": {"shape": "Time", "timestampFormat": "iso8601"},
                "Http": {"shape": "Time", "timestampFormat": "rfc822"},
                "Plain": {"shape": "Time"},
                "Ratio": {"shape": "Float"},
                "Names": {"shape": "Names"},
                "Flat": {"shape": "Names", "flattened": true, "locationName": "One"},
                "Tagged": {"shape": "Tagged"},
                "Pairs": {"shape": "Pairs"},
                "FlatPairs": {"shape": "Pairs", "flattened": true}
            }},
            "WideOutput": {"type": "structure", "members": members},
            "Names": {"type": "list", "member": {"shape": "Name"}},
            "Tagged": {"type": "list", "member": {"shape": "Name", "locationName": "tag"}},
            "Pairs": {"type": "map", "key": {"shape": "Name", "locationName": "k"},
                      "value": {"shape": "Names", "locationName": "v"}},
            "Name": {"type": "string"},
            "Float": {"type": "float"},
            "Time": {"type": "timestamp"}
        }
    });
    ServiceModel::from_json(&model.to_string()).unwrap()
}

#[test]
fn the_fixtures_outputs_are_the_same_bytes() {
    let ec2 = common::toy_ec2();
    let out = json!({
        "Things": [{"ThingId": "t-1", "Count": 2, "Started": "2026-12-07T01:02:03Z", "Ratio": 0.5,
                    "Tags": [{"Key": "a<b", "Value": "\"q\" & 'r'"}]}, {}],
        "Ids": [],
        "Return": true,
        "Blob": "AAE=",
    });
    assert_eq!(differs(&ec2, "RunThings", &out), None);
    assert_eq!(differs(&ec2, "Ping", &json!({})), None);
    let query = common::toy_query();
    let out = json!({"Items": [{"Name": "a", "Value": 1.5, "Level": "High"}], "Flat": ["x", "y"],
                     "Attributes": {"k": "v", "a": "b", "z": "<&>"}, "When": "2026-12-07T01:02:03.5Z",
                     "Data": "AAE="});
    assert_eq!(differs(&query, "PutThings", &out), None);
    assert_eq!(differs(&query, "PutThings", &json!({"Flat": []})), None);
}

#[test]
fn edge_outputs_are_the_same_bytes() {
    let m = edges();
    let out = json!({
        "Zeta": "z", "Alpha": "a", "Same1": "first", "Same2": "second",
        "Epoch": "2026-12-07T01:02:03.25Z", "Iso": "2026-12-07T01:02:03Z",
        "Http": "2026-12-07T01:02:03Z", "Plain": "1970-01-01T00:00:00Z", "Ratio": 0.1,
        "Names": ["a", "b"], "Flat": ["x", "y"], "Tagged": [],
        "Pairs": {"b": ["1"], "a": [], "c": ["2", "3"]}, "FlatPairs": {"y": ["q"], "x": []}
    });
    assert_eq!(differs(&m, "Get", &out), None);
    assert_eq!(differs(&m, "Get", &json!({"Same2": "only"})), None);
    assert_eq!(differs(&m, "None", &json!({})), None);
    // CBOR heads: 30 members announced, 20 written (one byte either way), then 25 of 30
    // (two bytes).
    let mut wide: serde_json::Map<String, Value> =
        (0..30).map(|i| (format!("M{i:02}"), Value::Null)).collect();
    for i in 0..20 {
        wide.insert(format!("M{i:02}"), json!(format!("v{i}")));
    }
    assert_eq!(differs(&m, "Wide", &Value::Object(wide.clone())), None);
    for i in 20..25 {
        wide.insert(format!("M{i:02}"), json!("w"));
    }
    assert_eq!(differs(&m, "Wide", &Value::Object(wide)), None);
    let many: Vec<Value> = (0..300).map(|i| json!(format!("n{i}"))).collect();
    let pairs: serde_json::Map<String, Value> =
        (0..300).map(|i| (format!("k{i}"), json!([]))).collect();
    assert_eq!(
        differs(&m, "Get", &json!({"Names": many, "Pairs": pairs})),
        None
    );
}

#[test]
fn outputs_that_do_not_fit_fail_alike() {
    let m = common::toy_ec2();
    let cases = [
        json!({"Return": "yes"}),
        json!({"Bogus": 1}),
        json!({"Things": [{"Started": "yesterday"}]}),
        json!({"Things": [null]}),
        json!({"Things": [{"Count": 1.5}]}),
        json!({"Things": [{"Count": "1"}]}),
        json!({"Ids": ["a", 1]}),
        json!({"Ids": "a"}),
        json!({"Things": {"a": 1}}),
        json!({"Blob": "!!"}),
        json!({"Return": null, "Things": [{"Tags": [{"Key": 1}]}]}),
    ];
    for case in &cases {
        let (t, v) = both(&m, Protocol::Ec2, "RunThings", case);
        let v = v.expect_err("the Value path refuses it");
        assert_eq!(t, Err(TypedError::Encode(v)), "{case}");
    }
    let q = common::toy_query();
    for case in [
        json!({"Attributes": {"k": 1}}),
        json!({"Attributes": {"k": null}}),
        json!({"Flat": [null]}),
        json!({"Items": [{"Name": "a", "Value": "x"}]}),
        json!({"Other": {}}),
    ] {
        for &p in q.protocols() {
            let (t, v) = both(&q, p, "PutThings", &case);
            let v = v.expect_err("the Value path refuses it");
            assert_eq!(t, Err(TypedError::Encode(v)), "{case} in {}", p.name());
        }
    }
    assert_eq!(
        typed::encode_output(&m, Protocol::Ec2, "Nope", &json!({}), "r"),
        Err(TypedError::Encode(EncodeError::NoOperation("Nope".into())))
    );
}

#[test]
fn what_is_not_streamed_falls_back_to_the_same_bytes() {
    let m = common::toy_query();
    // A Value is a map for the structure: the Value path writes it.
    let out = json!({"Items": [{"Name": "a"}], "Attributes": {"b": "1", "a": "2"}});
    for &p in m.protocols() {
        assert_eq!(
            typed::encode_output(&m, p, "PutThings", &out, "r").unwrap_err(),
            TypedError::Fallback("a map for a structure")
        );
        assert_eq!(
            encode_output_typed(&m, p, "PutThings", &out, "r").unwrap(),
            encode_output(&m, p, "PutThings", &out, "r").unwrap()
        );
    }
    // Members out of model order.
    #[derive(serde::Serialize)]
    struct Backwards {
        #[serde(rename = "When")]
        when: &'static str,
        #[serde(rename = "Flat")]
        flat: Vec<&'static str>,
    }
    let b = Backwards {
        when: "2026-12-07T01:02:03Z",
        flat: vec!["x"],
    };
    let v = serde_json::to_value(&b).unwrap();
    for &p in m.protocols() {
        assert_eq!(
            typed::encode_output(&m, p, "PutThings", &b, "r").unwrap_err(),
            TypedError::Fallback("members out of model order")
        );
        assert_eq!(
            encode_output_typed(&m, p, "PutThings", &b, "r").unwrap(),
            encode_output(&m, p, "PutThings", &v, "r").unwrap()
        );
    }
}

#[test]
fn too_deep_fails_alike() {
    let m = ServiceModel::from_json(
        &json!({
            "metadata": {"apiVersion": "1", "endpointPrefix": "n", "protocols": ["ec2"],
                         "serviceId": "N"},
            "operations": {"Get": {"name": "Get", "output": {"shape": "Node"}}},
            "shapes": {
                "Node": {"type": "structure", "members": {
                    "Child": {"shape": "Node"}, "Kids": {"shape": "Nodes"}, "Label": {"shape": "S"}}},
                "Nodes": {"type": "list", "member": {"shape": "Node"}},
                "S": {"type": "string"}
            }
        })
        .to_string(),
    )
    .unwrap();
    for (member, wrap) in [("Child", false), ("Kids", true)] {
        let mut deep = json!({"Label": "bottom"});
        for _ in 0..70 {
            deep = if wrap {
                json!({ member: [deep] })
            } else {
                json!({ member: deep })
            };
        }
        let (t, v) = both(&m, Protocol::Ec2, "Get", &deep);
        let v = v.expect_err("too deep");
        assert!(matches!(v, EncodeError::TooDeep(_)), "{v}");
        assert_eq!(t, Err(TypedError::Encode(v)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64)
    ))]

    #[test]
    fn random_fixture_outputs_are_the_same_bytes(seed in any::<u64>()) {
        for m in [common::toy_ec2(), common::toy_query(), edges()] {
            let d = random_outputs(&m, seed);
            prop_assert!(d.is_none(), "{}", d.unwrap());
        }
    }
}

/// Every operation of botocore's models of EC2, STS, SNS, Auto Scaling, ELBv2, IAM and
/// CloudWatch (their locationNames, flattened lists and maps, timestamp formats), in every
/// protocol each speaks.
#[test]
fn random_botocore_outputs_are_the_same_bytes() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let reg = common::registry(&python);
    let seeds: u64 = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(4);
    for m in reg.services() {
        for seed in 0..seeds {
            let d = random_outputs(m, seed);
            assert!(d.is_none(), "{}", d.unwrap());
        }
    }
}
