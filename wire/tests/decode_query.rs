//! The query protocols' decoding and validation, on the trimmed fixture models.

mod common;

use serde_json::json;
use wire::{DecodeError, Limits, Protocol, ValidationKind, decode_input, errors};

fn ec2(body: &str) -> Result<serde_json::Value, DecodeError> {
    let m = common::toy_ec2();
    let req = common::request("POST", "/", &[], body.as_bytes());
    decode_input(&m, Protocol::Ec2, "RunThings", &req, &Limits::default())
}

fn ec2_code(body: &str) -> (String, String) {
    let m = common::toy_ec2();
    let e = ec2(body).unwrap_err();
    let s = errors::decode(&m, Protocol::Ec2, &e);
    (s.code, s.message)
}

#[test]
fn ec2_forms_decode_by_the_model() {
    let v = ec2(
        "Action=RunThings&Version=2016-11-15&ImageId=ami-1&Count=3&Kind=large&DryRun=true\
         &InstanceId.2=i-2&InstanceId.1=i-1&Filter.1.Name=tag%3AName&Filter.1.Value.1=a+b\
         &Filter.1.Value.2=c&When=2026-12-07T01:02:03.5Z&Data=AAE%3D&Ratio=0.25&OddName=o\
         &Name=abc&Node.Child.Label=deep",
    )
    .unwrap();
    assert_eq!(
        v,
        json!({
            "ImageId": "ami-1", "Count": 3, "Kind": "large", "DryRun": true,
            "InstanceIds": ["i-1", "i-2"],
            "Filters": [{"Name": "tag:Name", "Values": ["a b", "c"]}],
            "When": "2026-12-07T01:02:03.500Z", "Data": "AAE=", "Ratio": 0.25, "Odd": "o",
            "Name": "abc", "Node": {"Child": {"Label": "deep"}},
        })
    );
}

#[test]
fn ec2_refusals_use_ec2_codes() {
    let cases = [
        ("Count=1", "MissingParameter", "ImageId"),
        ("ImageId=a", "MissingParameter", "Count"),
        ("ImageId=a&Count=0", "InvalidParameterValue", "Count"),
        ("ImageId=a&Count=11", "InvalidParameterValue", "Count"),
        ("ImageId=a&Count=x", "InvalidParameterValue", "Count"),
        (
            "ImageId=a&Count=99999999999",
            "InvalidParameterValue",
            "Count",
        ),
        (
            "ImageId=a&Count=1&Kind=medium",
            "InvalidParameterValue",
            "'medium' is not one of: small, large",
        ),
        ("ImageId=a&Count=1&Name=", "InvalidParameterValue", "Name"),
        (
            "ImageId=a&Count=1&Name=abcdef",
            "InvalidParameterValue",
            "length 6",
        ),
        (
            "ImageId=a&Count=1&DryRun=yes",
            "InvalidParameterValue",
            "DryRun",
        ),
        (
            "ImageId=a&Count=1&When=soon",
            "InvalidParameterValue",
            "When",
        ),
        (
            "ImageId=a&Count=1&Data=%%%",
            "InvalidParameterValue",
            "Data",
        ),
        (
            "ImageId=a&Count=1&Data=abc",
            "InvalidParameterValue",
            "Data",
        ),
        (
            "ImageId=a&Count=1&Ratio=NaN",
            "InvalidParameterValue",
            "Ratio",
        ),
        ("ImageId=a&Count=1&Bogus=1", "UnknownParameter", "Bogus"),
        ("ImageId=a&Count=1&Odd=1", "UnknownParameter", "Odd"),
        (
            "ImageId=a&Count=1&InstanceId.0=i",
            "UnknownParameter",
            "InstanceId.0",
        ),
        (
            "ImageId=a&Count=1&InstanceId.01=i",
            "UnknownParameter",
            "InstanceId.01",
        ),
        (
            "ImageId=a&Count=1&InstanceId.x=i",
            "UnknownParameter",
            "InstanceId.x",
        ),
        (
            "ImageId=a&Count=1&InstanceId=i",
            "InvalidParameterValue",
            "InstanceId",
        ),
        (
            "ImageId=a&Count=1&ImageId.1=x",
            "UnknownParameter",
            "ImageId.1",
        ),
        (
            "ImageId=a&Count=1&Filter.1.Value.1.Deep=x",
            "UnknownParameter",
            "Filter.1.Value.1.Deep",
        ),
        (
            "ImageId=a&Count=1&InstanceId.1=a&InstanceId.2=b&InstanceId.3=c&InstanceId.4=d&InstanceId.5=e&InstanceId.6=f",
            "InvalidParameterValue",
            "length 6",
        ),
        (
            "ImageId=a&ImageId=b&Count=1",
            "MalformedQueryString",
            "more than once",
        ),
        (
            "Version=2020-01-01&ImageId=a&Count=1",
            "NoSuchVersion",
            "2020-01-01",
        ),
    ];
    for (body, code, needle) in cases {
        let (c, msg) = ec2_code(body);
        assert_eq!(c, code, "{body}: {msg}");
        assert!(msg.contains(needle), "{body}: {msg}");
    }
}

#[test]
fn ec2_huge_indices_do_not_allocate_and_gaps_keep_order() {
    let v = ec2("ImageId=a&Count=1&InstanceId.1000000000=z&InstanceId.7=y").unwrap();
    assert_eq!(v["InstanceIds"], json!(["y", "z"]));
    let e = ec2("ImageId=a&Count=1&InstanceId.99999999999999999999=z").unwrap_err();
    assert!(matches!(e, DecodeError::Invalid(ref v) if v.kind == ValidationKind::Unknown));
}

#[test]
fn recursion_is_bounded_by_the_depth_limit() {
    let deep = format!("ImageId=a&Count=1&Node.{}Label=x", "Child.".repeat(40));
    let (code, msg) = ec2_code(&deep);
    assert_eq!(code, "InvalidParameterValue");
    assert!(msg.contains("deeper than 32"), "{msg}");
    let ok = format!("ImageId=a&Count=1&Node.{}Label=x", "Child.".repeat(20));
    assert!(ec2(&ok).is_ok());
}

fn toy_query(body: &str) -> Result<serde_json::Value, DecodeError> {
    let m = common::toy_query();
    let req = common::request("POST", "/", &[], body.as_bytes());
    decode_input(&m, Protocol::Query, "PutThings", &req, &Limits::default())
}

#[test]
fn aws_query_lists_maps_and_flattening() {
    let v = toy_query(
        "Action=PutThings&Namespace=ns&Items.member.1.Name=a&Items.member.1.Value=1.5\
         &Items.member.2.Name=b&Items.member.2.Level=High&Entry.1=x&Entry.2=y\
         &Attributes.entry.1.key=k1&Attributes.entry.1.value=v1\
         &FlatMap.1.K=fk&FlatMap.1.V=fv&When=1796605323&Big=9007199254740993",
    )
    .unwrap();
    assert_eq!(
        v,
        json!({
            "Namespace": "ns",
            "Items": [{"Name": "a", "Value": 1.5}, {"Name": "b", "Level": "High"}],
            "Flat": ["x", "y"],
            "Attributes": {"k1": "v1"},
            "FlatMap": {"fk": "fv"},
            "When": "2026-12-07T01:02:03Z",
            "Big": 9007199254740993i64,
        })
    );
    assert_eq!(toy_query("Namespace=n&Items=").unwrap()["Items"], json!([]));
}

#[test]
fn aws_query_refusals_use_cloudwatch_codes() {
    // The toy model's serviceId is CloudWatch's, so CloudWatch's codes apply.
    let m = common::toy_query();
    for (body, code, needle) in [
        ("Items.member.1.Name=a", "MissingParameter", "Namespace"),
        (
            "Namespace=n&Items.1.Name=a",
            "InvalidParameterValue",
            "Items.1",
        ),
        (
            "Namespace=n&Items.member.1.Value=1",
            "MissingParameter",
            "Items.member.1.Name",
        ),
        (
            "Namespace=n&Items.member.1.Name=a&Items.member.1.Level=Mid",
            "ValidationError",
            "enum value set: [Low, High]",
        ),
        (
            "Namespace=n&Items.member.1.Name=a&Items.member.1.Value=-1",
            "ValidationError",
            "Value '-1'",
        ),
        (
            "Namespace=n&Attributes.entry.1.key=a",
            "MissingParameter",
            "Attributes.entry.1.value",
        ),
        (
            "Namespace=n&Attributes.entry.1.key=a&Attributes.entry.1.value=b&Attributes.entry.2.key=a&Attributes.entry.2.value=c",
            "InvalidParameterValue",
            "Attributes.entry.2.key",
        ),
        (
            "Namespace=n&Items.member.1.Name=a&Items.member.2.Name=a&Items.member.3.Name=a&Items.member.4.Name=a",
            "ValidationError",
            "Items",
        ),
    ] {
        let e = toy_query(body).unwrap_err();
        let s = errors::decode(&m, Protocol::Query, &e);
        assert_eq!(s.code, code, "{body}: {}", s.message);
        assert!(s.message.contains(needle), "{body}: {}", s.message);
    }
}
