//! Times encoding a large DescribeInstances output: through a Value (`O::output_to_value`,
//! then the Value encoder), with `wire`'s typed encoder, and with the generated EC2 writer
//! the agent answers EC2 with.
//! `cargo run --release -p shapes --example encode_bench [INSTANCES] [value|typed|written]`

use std::time::Instant;

use serde_json::json;
use shapes::{Operation, ec2};
use wire::{Protocol, ServiceModel};

/// An instance as the agent answers for a row of its benchmark's (no interfaces, no volumes).
fn instance(i: usize) -> serde_json::Value {
    json!({
        "Architecture": "x86_64",
        "BlockDeviceMappings": [],
        "RootDeviceName": "/dev/vda", "RootDeviceType": "instance-store",
        "SecurityGroups": [],
        "Tags": [{"Key": "n", "Value": (i % 100).to_string()}],
        "VirtualizationType": "hvm", "CpuOptions": {"CoreCount": 1, "ThreadsPerCore": 1},
        "HibernationOptions": {"Configured": false},
        "MetadataOptions": {"State": "applied", "HttpTokens": "optional", "HttpPutResponseHopLimit": 1,
                            "HttpEndpoint": "enabled", "HttpProtocolIpv6": "disabled",
                            "InstanceMetadataTags": "disabled"},
        "NetworkInterfaces": [],
        "InstanceId": format!("i-{i:017x}"), "ImageId": "ami-00000000000000000",
        "State": {"Code": 80, "Name": "stopped"}, "PrivateDnsName": "",
        "PublicDnsName": "", "StateTransitionReason": "", "AmiLaunchIndex": 0,
        "ProductCodes": [], "InstanceType": "t2.micro", "LaunchTime": "2026-12-07T01:02:03Z",
        "Placement": {"AvailabilityZone": "local-1a", "GroupName": "", "Tenancy": "default"},
        "Monitoring": {"State": "disabled"}
    })
}

fn time(what: &str, runs: usize, mut f: impl FnMut() -> usize) {
    let mut best = f64::MAX;
    let mut len = 0;
    for _ in 0..runs {
        let t = Instant::now();
        len = f();
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
    }
    if runs == 0 {
        return;
    }
    println!("{what:<28} best of {runs}: {best:8.2} ms ({len} bytes)");
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let model = ServiceModel::from_json(shapes::ec2::MODEL_JSON).unwrap();
    let value = json!({"Reservations": (0..n).map(|i| json!({
        "ReservationId": format!("r-{i:017x}"), "OwnerId": "000000000000", "Groups": [],
        "Instances": [instance(i)]})).collect::<Vec<_>>()});
    let out = ec2::ops::DescribeInstances::output_from_value(value).unwrap();
    type Op = ec2::ops::DescribeInstances;
    // A second argument runs only that variant (`value`, `typed`, `written`), for a profiler.
    let only = std::env::args().nth(2);
    let runs = |which: &str| match &only {
        Some(o) if o != which => 0,
        // Alone, for a profile of it rather than of the setup.
        Some(_) => 50,
        _ => 10,
    };
    time("Value (to_value + encode)", runs("value"), || {
        let v = Op::output_to_value(&out).unwrap();
        wire::encode_output(&model, Protocol::Ec2, "DescribeInstances", &v, "r")
            .unwrap()
            .body
            .len()
    });
    time("typed", runs("typed"), || {
        wire::encode_output_typed(&model, Protocol::Ec2, "DescribeInstances", &out, "r")
            .unwrap()
            .body
            .len()
    });
    time("generated EC2 writer", runs("written"), || {
        wire::encode_ec2_written(&model, "DescribeInstances", "r", |w| {
            Op::write_ec2_xml(&out, w)
        })
        .unwrap()
        .body
        .len()
    });
}
