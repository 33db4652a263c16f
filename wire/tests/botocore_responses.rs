//! Responses we encode for sample outputs and errors must parse, with botocore's own
//! parsers, back to the same data (errors: code, message, modeled fields, request id).

mod common;

use base64::Engine;
use serde_json::{Value, json};
use wire::{Protocol, Registry, ServiceError, encode_error, encode_output};

struct Case {
    name: String,
    service: &'static str,
    protocol: &'static str,
    operation: &'static str,
    output: Option<Value>,
    error: Option<ServiceError>,
}

fn ok(
    service: &'static str,
    protocol: &'static str,
    operation: &'static str,
    output: Value,
) -> Case {
    Case {
        name: format!("{service} {protocol} {operation}"),
        service,
        protocol,
        operation,
        output: Some(output),
        error: None,
    }
}

fn err(
    service: &'static str,
    protocol: &'static str,
    operation: &'static str,
    e: ServiceError,
) -> Case {
    Case {
        name: format!("{service} {protocol} {operation} error {}", e.code),
        service,
        protocol,
        operation,
        output: None,
        error: Some(e),
    }
}

fn model_of<'r>(reg: &'r Registry, service: &str) -> &'r wire::ServiceModel {
    let prefix = match service {
        "elbv2" => "elasticloadbalancing",
        "cloudwatch" => "monitoring",
        s => s,
    };
    reg.services()
        .iter()
        .find(|m| m.metadata.endpoint_prefix == prefix)
        .unwrap()
}

fn cases(reg: &Registry) -> Vec<Case> {
    let cw = model_of(reg, "cloudwatch");
    let mut v = vec![
        ok(
            "ec2",
            "ec2",
            "DescribeInstances",
            json!({
                "Reservations": [{
                    "ReservationId": "r-1", "OwnerId": "000000000000", "Groups": [],
                    "Instances": [{
                        "InstanceId": "i-1", "ImageId": "ami-1", "InstanceType": "t2.micro",
                        "State": {"Code": 16, "Name": "running"},
                        "LaunchTime": "2026-12-07T01:02:03Z", "AmiLaunchIndex": 0,
                        "Tags": [{"Key": "Name", "Value": "<a & b>"}],
                        "BlockDeviceMappings": [{"DeviceName": "/dev/sda1", "Ebs": {
                            "VolumeId": "vol-1", "Status": "attached",
                            "AttachTime": "2026-12-07T01:02:03.250Z", "DeleteOnTermination": true}}],
                        "EbsOptimized": false,
                        "CpuOptions": {"CoreCount": 1, "ThreadsPerCore": 1},
                    }],
                }],
                "NextToken": "t",
            }),
        ),
        ok(
            "ec2",
            "ec2",
            "CreateKeyPair",
            json!({
                "KeyName": "k", "KeyFingerprint": "SHA256:x", "KeyMaterial": "-----BEGIN-----\nabc\n",
                "KeyPairId": "key-1", "Tags": [{"Key": "a", "Value": "b"}],
            }),
        ),
        ok(
            "ec2",
            "ec2",
            "DeleteKeyPair",
            json!({"Return": true, "KeyPairId": "key-1"}),
        ),
        err(
            "ec2",
            "ec2",
            "DescribeInstances",
            ServiceError::new(
                "InvalidInstanceID.NotFound",
                "The instance ID 'i-9' does not exist",
            ),
        ),
        ok(
            "sts",
            "query",
            "GetCallerIdentity",
            json!({"UserId": "AIDA", "Account": "000000000000", "Arn": "arn:aws:iam::000000000000:root"}),
        ),
        err(
            "sts",
            "query",
            "GetCallerIdentity",
            ServiceError::new("ValidationError", "1 validation error detected"),
        ),
        ok(
            "sns",
            "query",
            "Publish",
            json!({"MessageId": "m-1", "SequenceNumber": "1"}),
        ),
        ok(
            "sns",
            "query",
            "GetTopicAttributes",
            json!({"Attributes": {"Policy": "{\"a\": 1}", "Owner": "0"}}),
        ),
        ok(
            "sns",
            "query",
            "ListTopics",
            json!({"Topics": [{"TopicArn": "arn:a"}, {"TopicArn": "arn:b"}], "NextToken": "n"}),
        ),
        err(
            "sns",
            "query",
            "Publish",
            ServiceError::new("InvalidParameter", "Invalid parameter: TopicArn"),
        ),
        ok(
            "autoscaling",
            "query",
            "DescribeTags",
            json!({"Tags": [{"ResourceId": "g", "ResourceType": "auto-scaling-group", "Key": "k", "Value": "v", "PropagateAtLaunch": true}]}),
        ),
        ok(
            "elbv2",
            "query",
            "DescribeTags",
            json!({"TagDescriptions": [{"ResourceArn": "arn:a", "Tags": [{"Key": "k", "Value": "v"}]}]}),
        ),
    ];
    for proto in ["smithy-rpc-v2-cbor", "json", "query"] {
        v.push(ok("cloudwatch", proto, "ListMetrics", json!({
            "Metrics": [{"Namespace": "App", "MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "h1"}]}],
            "NextToken": "n", "OwningAccounts": ["000000000000"],
        })));
        v.push(ok("cloudwatch", proto, "GetMetricStatistics", json!({
            "Label": "Latency",
            "Datapoints": [{"Timestamp": "2026-12-07T01:02:03.125Z", "Average": 1.5, "SampleCount": 3.0, "Unit": "Seconds",
                            "ExtendedStatistics": {"p99": 2.5}}],
        })));
        v.push(ok("cloudwatch", proto, "PutMetricData", json!({})));
        let mut e = ServiceError::modeled(
            cw,
            "InvalidParameterValueException",
            "The value -1 for Value is not valid",
        )
        .unwrap();
        e.status = 400;
        v.push(err("cloudwatch", proto, "PutMetricData", e));
        let mut nf =
            ServiceError::modeled(cw, "ResourceNotFoundException", "no such alarm").unwrap();
        nf.fields.insert("ResourceType".into(), json!("Alarm"));
        nf.fields.insert("ResourceId".into(), json!("a1"));
        v.push(err("cloudwatch", proto, "DescribeAlarms", nf));
    }
    v
}

#[test]
fn botocore_parses_what_we_encode() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let reg = common::registry(&python);
    let cases = cases(&reg);
    let mut lines = String::new();
    for c in &cases {
        let model = model_of(&reg, c.service);
        let protocol = Protocol::from_name(c.protocol).unwrap();
        let (resp, expected) = match (&c.output, &c.error) {
            (Some(out), _) => (
                encode_output(model, protocol, c.operation, out, "req-1")
                    .unwrap_or_else(|e| panic!("{}: {e}", c.name)),
                json!({"output": out}),
            ),
            (None, Some(e)) => {
                let mut want = json!({"code": e.code, "message": e.message, "request_id": "req-1"});
                if !e.fields.is_empty() {
                    want["fields"] = Value::Object(e.fields.clone());
                }
                (
                    encode_error(Some(model), protocol, e, "req-1"),
                    json!({"error": want}),
                )
            }
            _ => unreachable!(),
        };
        let mut line = json!({
            "name": c.name, "service": c.service, "protocol": c.protocol, "operation": c.operation,
            "status": resp.status, "headers": resp.headers,
            "body": base64::engine::general_purpose::STANDARD.encode(&resp.body),
        });
        line.as_object_mut()
            .unwrap()
            .extend(expected.as_object().unwrap().clone());
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    if let Ok(p) = std::env::var("WIRE_DUMP") {
        std::fs::write(p, &lines).unwrap();
    }
    let verdicts = common::run(&python, &["parse"], &lines);
    assert_eq!(verdicts.len(), cases.len());
    let failed: Vec<&String> = verdicts
        .iter()
        .filter(|l| serde_json::from_str::<Value>(l).unwrap()["ok"] != json!(true))
        .collect();
    assert!(
        failed.is_empty(),
        "botocore disagrees:\n{}",
        failed
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
