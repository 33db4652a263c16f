//! Times encoding a large DescribeInstances output: through a Value (`O::output_to_value`,
//! then the Value encoder) and with the typed encoder.
//! `cargo run --release -p wire --example encode_bench [INSTANCES]`

use std::time::Instant;

use serde_json::json;
use shapes::{Operation, ec2};
use wire::{Protocol, ServiceModel};

fn instance(i: usize) -> serde_json::Value {
    json!({
        "Architecture": "x86_64",
        "BlockDeviceMappings": [{"DeviceName": "/dev/vda", "Ebs": {"AttachTime": "2026-12-07T01:02:03Z",
             "DeleteOnTermination": true, "Status": "attached", "VolumeId": format!("vol-{i:017x}")}}],
        "ClientToken": "", "EbsOptimized": false, "EnaSupport": true, "Hypervisor": "xen",
        "NetworkInterfaces": [{
            "Attachment": {"AttachTime": "2026-12-07T01:02:03Z", "AttachmentId": format!("eni-attach-{i:017x}"),
                           "DeleteOnTermination": true, "DeviceIndex": 0, "Status": "attached"},
            "Description": "", "Groups": [{"GroupId": "sg-0123", "GroupName": "default"}],
            "Ipv6Addresses": [], "MacAddress": "02:00:0a:00:00:05",
            "NetworkInterfaceId": format!("eni-{i:017x}"), "OwnerId": "000000000000",
            "PrivateDnsName": "ip-10-0-0-5.local-1.compute.internal", "PrivateIpAddress": "10.0.0.5",
            "PrivateIpAddresses": [{"Primary": true, "PrivateDnsName": "ip-10-0-0-5.local-1.compute.internal",
                                    "PrivateIpAddress": "10.0.0.5"}],
            "SourceDestCheck": true, "Status": "in-use", "SubnetId": "subnet-1", "VpcId": "vpc-1",
            "InterfaceType": "interface"}],
        "RootDeviceName": "/dev/vda", "RootDeviceType": "ebs",
        "SecurityGroups": [{"GroupId": "sg-0123", "GroupName": "default"}], "SourceDestCheck": true,
        "Tags": [{"Key": "Name", "Value": format!("web-{i}")}],
        "VirtualizationType": "hvm", "CpuOptions": {"CoreCount": 1, "ThreadsPerCore": 1},
        "MetadataOptions": {"State": "applied", "HttpTokens": "required", "HttpPutResponseHopLimit": 2,
                            "HttpEndpoint": "enabled"},
        "InstanceId": format!("i-{i:017x}"), "ImageId": "ami-0123456789abcdef0",
        "State": {"Code": 16, "Name": "running"}, "PrivateDnsName": "ip-10-0-0-5.local-1.compute.internal",
        "PublicDnsName": "", "StateTransitionReason": "", "KeyName": "laptop", "AmiLaunchIndex": 0,
        "ProductCodes": [], "InstanceType": "t3.micro", "LaunchTime": "2026-12-07T01:02:03Z",
        "Placement": {"AvailabilityZone": "local-1a", "Tenancy": "default"},
        "Monitoring": {"State": "disabled"}, "SubnetId": "subnet-1", "VpcId": "vpc-1",
        "PrivateIpAddress": "10.0.0.5"
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
    // A second argument runs only that variant (`value`, `typed`), for a profiler.
    let only = std::env::args().nth(2);
    let runs = |which: &str| match &only {
        Some(o) if o != which => 0,
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
}
