//! Response encoding on the trimmed fixture models: exact bytes for EC2 and awsQuery,
//! JSON and CBOR bodies and headers, errors with the query-compatible header.

mod common;

use serde_json::json;
use wire::{EncodeError, Protocol, ServiceError, encode_error, encode_output};

#[test]
fn ec2_output_is_ec2_xml() {
    let m = common::toy_ec2();
    let out = json!({
        "Things": [{"ThingId": "t-1", "Count": 2, "Started": "2026-12-07T01:02:03Z", "Ratio": 0.5,
                    "Tags": [{"Key": "a<b", "Value": "\"q\" & 'r'"}]}],
        "Ids": [],
        "Return": true,
        "Blob": "AAE=",
    });
    let r = encode_output(&m, Protocol::Ec2, "RunThings", &out, "req-1").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/xml;charset=UTF-8"));
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<RunThingsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>req-1</requestId>"#,
            "<thingSet><item><thingId>t-1</thingId><count>2</count><started>2026-12-07T01:02:03.000Z</started>",
            "<ratio>0.5</ratio><tagSet><item><key>a&lt;b</key><value>&quot;q&quot; &amp; &apos;r&apos;</value></item></tagSet>",
            "</item></thingSet><idSet></idSet><return>true</return><blob>AAE=</blob></RunThingsResponse>"
        )
    );
    let r = encode_output(&m, Protocol::Ec2, "Ping", &json!({}), "req-2").unwrap();
    assert!(String::from_utf8(r.body).unwrap().ends_with("<PingResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>req-2</requestId></PingResponse>"));
}

#[test]
fn ec2_error_is_the_agents_document() {
    let m = common::toy_ec2();
    let e = ServiceError::new("InvalidParameterValue", "bad <value>");
    let r = encode_error(Some(&m), Protocol::Ec2, &e, "rid");
    assert_eq!(r.status, 400);
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>InvalidParameterValue</Code><Message>bad &lt;value&gt;</Message></Error></Errors><RequestID>rid</RequestID></Response>"#
    );
}

#[test]
fn outputs_that_do_not_fit_the_model_are_refused() {
    let m = common::toy_ec2();
    let bad = [
        (json!({"Return": "yes"}), "Return"),
        (json!({"Bogus": 1}), "Bogus"),
        (
            json!({"Things": [{"Started": "yesterday"}]}),
            "Things[0].Started",
        ),
        (json!({"Blob": "!!"}), "Blob"),
    ];
    for (out, path) in bad {
        let e = encode_output(&m, Protocol::Ec2, "RunThings", &out, "r").unwrap_err();
        assert!(e.to_string().contains(path), "{e}");
    }
    assert_eq!(
        encode_output(&m, Protocol::Ec2, "Nope", &json!({}), "r").unwrap_err(),
        EncodeError::NoOperation("Nope".into())
    );
}

#[test]
fn aws_query_output_wraps_flattens_and_maps() {
    let m = common::toy_query();
    let out = json!({"Items": [{"Name": "a", "Value": 1.5}], "Flat": ["x", "y"], "Attributes": {"k": "v"},
                     "When": "2026-12-07T01:02:03.5Z"});
    let r = encode_output(&m, Protocol::Query, "PutThings", &out, "rid").unwrap();
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        concat!(
            r#"<PutThingsResponse xmlns="http://toy.amazonaws.com/doc/2010-08-01/"><PutThingsResult>"#,
            "<Items><member><Name>a</Name><Value>1.5</Value></member></Items><Entry>x</Entry><Entry>y</Entry>",
            "<Attributes><entry><key>k</key><value>v</value></entry></Attributes>",
            "<When>2026-12-07T01:02:03.500Z</When></PutThingsResult>",
            "<ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></PutThingsResponse>"
        )
    );
    let mut e = ServiceError::modeled(&m, "BadValue", "no").unwrap();
    e.fields.insert("Field".into(), json!("f"));
    let r = encode_error(Some(&m), Protocol::Query, &e, "rid");
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        concat!(
            r#"<ErrorResponse xmlns="http://toy.amazonaws.com/doc/2010-08-01/"><Error><Type>Sender</Type>"#,
            "<Code>InvalidParameterValue</Code><Message>no</Message><Field>f</Field></Error>",
            "<RequestId>rid</RequestId></ErrorResponse>"
        )
    );
}

#[test]
fn json_and_cbor_outputs() {
    let m = common::toy_query();
    let out = json!({"When": "2026-12-07T01:02:03.5Z", "Data": "AAE=", "Flat": ["x"]});
    let r = encode_output(&m, Protocol::Json, "PutThings", &out, "rid").unwrap();
    assert_eq!(r.header("content-type"), Some("application/x-amz-json-1.0"));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap(),
        json!({"When": 1796605323.5, "Data": "AAE=", "Flat": ["x"]})
    );
    let r = encode_output(&m, Protocol::RpcV2Cbor, "PutThings", &out, "rid").unwrap();
    assert_eq!(r.header("smithy-protocol"), Some("rpc-v2-cbor"));
    assert_eq!(r.header("content-type"), Some("application/cbor"));
    let v: ciborium::Value = ciborium::de::from_reader(r.body.as_slice()).unwrap();
    let map = v.as_map().unwrap();
    let get = |k: &str| {
        map.iter()
            .find(|(x, _)| x.as_text() == Some(k))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("Data"), Some(ciborium::Value::Bytes(vec![0, 1])));
    assert_eq!(
        get("When"),
        Some(ciborium::Value::Tag(
            1,
            Box::new(ciborium::Value::Float(1796605323.5))
        ))
    );
}

#[test]
fn query_compatible_errors_carry_the_query_code() {
    let m = common::toy_query();
    let e = ServiceError::new("InvalidParameterValue", "bad");
    for p in [Protocol::Json, Protocol::RpcV2Cbor] {
        let r = encode_error(Some(&m), p, &e, "rid");
        assert_eq!(r.status, 400);
        assert_eq!(
            r.header("x-amzn-query-error"),
            Some("InvalidParameterValue;Sender")
        );
        assert_eq!(r.header("x-amzn-requestid"), Some("rid"));
    }
    let r = encode_error(Some(&m), Protocol::Json, &e, "rid");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap(),
        json!({"__type": "BadValue", "message": "bad"})
    );
    let r = encode_error(
        Some(&m),
        Protocol::Json,
        &ServiceError::new("Oops", "x").with_status(500),
        "rid",
    );
    assert_eq!(r.header("x-amzn-query-error"), Some("Oops;Receiver"));
    assert_eq!(r.status, 500);
}
