//! Loading botocore models: member order, trait merging, clear errors.

mod common;

use wire::model::{ModelError, ShapeType};
use wire::{Protocol, ServiceModel};

#[test]
fn members_keep_model_order_and_traits_merge() {
    let m = common::toy_ec2();
    let s = m.shape("Thing").unwrap();
    let names: Vec<&str> = s.members.iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["ThingId", "Count", "Started", "Ratio", "Tags"]);
    let request = m.shape("RunThingsRequest").unwrap();
    let ids = m.resolve(request.members.get("InstanceIds").unwrap());
    assert_eq!(ids.location_name(), Some("InstanceId"));
    assert_eq!(ids.kind(), ShapeType::List);
    assert_eq!(m.protocols(), [Protocol::Ec2]);
    assert_eq!(m.signing_name(), "ec2");
    let q = common::toy_query();
    assert_eq!(
        q.protocols(),
        [Protocol::RpcV2Cbor, Protocol::Json, Protocol::Query]
    );
    assert!(q.query_compatible());
    assert_eq!(
        q.error_shape("InvalidParameterValue").map(|(n, _)| n),
        Some("BadValue")
    );
    assert!(q.error_shape("BadValue").is_none());
}

fn load(shapes: &str, ops: &str) -> Result<ServiceModel, ModelError> {
    ServiceModel::from_json(&format!(
        r#"{{"metadata": {{"apiVersion": "1", "endpointPrefix": "x", "protocol": "query", "serviceId": "X"}},
             "operations": {{{ops}}}, "shapes": {{{shapes}}}}}"#
    ))
}

#[test]
fn malformed_models_are_refused_clearly() {
    let chain = |e: ModelError| wire::error_chain(&e);
    let e = load(r#""S": {"type": "strin"}"#, "").unwrap_err();
    assert!(
        matches!(e, ModelError::Shape { ref name, .. } if name == "S"),
        "{}",
        chain(e)
    );
    let e = load(
        r#""S": {"type": "structure", "members": {"A": {"shape": "Nope"}}}"#,
        "",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "S.A refers to shape Nope, which the model does not define"
    );
    let e = load(r#""L": {"type": "list"}"#, "").unwrap_err();
    assert!(matches!(e, ModelError::Incomplete(_)));
    let e = load(
        r#""S": {"type": "string"}"#,
        r#""Op": {"name": "Op", "input": {"shape": "S"}}"#,
    )
    .unwrap_err();
    assert!(matches!(e, ModelError::NotStructure { .. }));
    let e = load(
        r#""S": {"type": "structure", "required": ["B"], "members": {}}"#,
        "",
    )
    .unwrap_err();
    assert!(matches!(e, ModelError::UnknownRequired { .. }));
    assert!(matches!(
        ServiceModel::from_json("[]").unwrap_err(),
        ModelError::Json(_)
    ));
    let e = ServiceModel::from_json(
        r#"{"metadata": {"apiVersion": "1", "endpointPrefix": "x", "protocol": "rest-xml", "serviceId": "X"},
            "operations": {}, "shapes": {}}"#,
    )
    .unwrap_err();
    assert!(matches!(e, ModelError::NoProtocol(_)));
}

#[test]
fn contract_values_validate_against_shapes() {
    use serde_json::json;
    use wire::validate::{self, Kind};
    let m = common::toy_query();
    let op = m.operation("PutThings").unwrap();
    let input = m.resolve(op.input.as_ref().unwrap());
    let ok = json!({"Namespace": "n", "Items": [{"Name": "a", "Value": 1.0}], "Attributes": {"k": "v"},
                    "When": "2026-12-07T01:02:03Z", "Data": "AAE="});
    assert_eq!(validate::value(&m, input, &ok, "", 32), Ok(()));
    let cases = [
        (json!({}), "Namespace", Kind::Missing),
        (json!({"Namespace": "n", "Nope": 1}), "Nope", Kind::Unknown),
        (
            json!({"Namespace": "n", "Items": [{"Name": "a", "Level": "Mid"}]}),
            "Items[0].Level",
            Kind::NotInEnum {
                value: "Mid".into(),
                allowed: vec!["Low".into(), "High".into()],
            },
        ),
        (
            json!({"Namespace": "n", "When": "later"}),
            "When",
            Kind::WrongType {
                expected: "a timestamp",
            },
        ),
        (
            json!({"Namespace": ""}),
            "Namespace",
            Kind::BadLength {
                len: 0,
                min: Some(1.0),
                max: Some(64.0),
            },
        ),
    ];
    for (v, path, kind) in cases {
        assert_eq!(
            validate::value(&m, input, &v, "", 32),
            Err(wire::ValidationError::new(path, kind)),
            "{v}"
        );
    }
}
