//! The typed encoder on the generated shapes the agent answers with: the same bytes as the
//! Value path for every protocol the service speaks, for realistic outputs (EC2's
//! DescribeInstances and DescribeSecurityGroups, STS's GetCallerIdentity, CloudWatch's
//! ListMetrics) and for random outputs of every operation; for EC2, the writers `shapes`
//! generates too.

#![recursion_limit = "256"]

mod common;

use std::sync::OnceLock;

use common::outputs::{Rng, value};
use proptest::prelude::*;
use serde_json::{Value, json};
use shapes::{Operation, OperationVisitor, cloudwatch, ec2, sts};
use wire::encode::typed;
use wire::{Protocol, ServiceModel, encode_output};

/// The generated model of `service`, loaded once.
fn model(service: &str) -> &'static ServiceModel {
    static MODELS: OnceLock<Vec<(&'static str, ServiceModel)>> = OnceLock::new();
    let models = MODELS.get_or_init(|| {
        shapes::SERVICES
            .iter()
            .map(|s| (s.name, ServiceModel::from_json(s.model_json).unwrap()))
            .collect()
    });
    &models.iter().find(|(n, _)| *n == service).unwrap().1
}

/// Checks that `O`'s output `out` encodes as its Value does in every protocol of the
/// service, without falling back, and that an EC2 operation's generated writer writes the
/// same bytes; gives the protocols.
fn check_output<O: Operation>(out: &O::Output) -> Result<Vec<Protocol>, String> {
    let m = model(O::SERVICE);
    let v = O::output_to_value(out).unwrap();
    for &p in m.protocols() {
        let want = encode_output(m, p, O::NAME, &v, "rid-7")
            .map_err(|e| format!("{} in {}: the Value path: {e}", O::NAME, p.name()))?;
        let got = typed::encode_output(m, p, O::NAME, out, "rid-7")
            .map_err(|e| format!("{} in {}: {e}", O::NAME, p.name()))?;
        if got != want {
            return Err(format!(
                "{} in {}: typed\n{}\nvalue\n{}",
                O::NAME,
                p.name(),
                String::from_utf8_lossy(&got.body),
                String::from_utf8_lossy(&want.body)
            ));
        }
        if p == Protocol::Ec2 {
            let written = wire::encode_ec2_written(m, O::NAME, "rid-7", |w| {
                O::write_ec2_xml(out, w);
            })
            .map_err(|e| format!("{}: the generated writer: {e}", O::NAME))?;
            if !O::EC2_XML || written != want {
                return Err(format!(
                    "{}: the generated writer (EC2_XML {})\n{}\nvalue\n{}",
                    O::NAME,
                    O::EC2_XML,
                    String::from_utf8_lossy(&written.body),
                    String::from_utf8_lossy(&want.body)
                ));
            }
        }
    }
    Ok(m.protocols().to_vec())
}

/// [`check_output`] of `O`'s output read from `value`.
fn check<O: Operation>(value: Value) -> Vec<Protocol> {
    let out = O::output_from_value(value).expect("the output reads");
    check_output::<O>(&out).unwrap_or_else(|e| panic!("{e}"))
}

fn instance(i: usize, state: (i64, &str)) -> Value {
    let id = format!("i-{i:017x}");
    json!({
        "Architecture": "x86_64",
        "BlockDeviceMappings": [
            {"DeviceName": "/dev/vda", "Ebs": {"AttachTime": "2026-12-07T01:02:03Z",
             "DeleteOnTermination": true, "Status": "attached", "VolumeId": format!("vol-{i:017x}")}},
            {"DeviceName": "/dev/vdb", "Ebs": {"AttachTime": "2026-12-07T01:02:04.125Z",
             "DeleteOnTermination": false, "Status": "attaching", "VolumeId": "vol-00000000000000002"}}
        ],
        "ClientToken": "",
        "EbsOptimized": false,
        "EnaSupport": true,
        "Hypervisor": "xen",
        "NetworkInterfaces": [{
            "Association": {"IpOwnerId": "amazon", "PublicDnsName": "", "PublicIp": "203.0.113.9"},
            "Attachment": {"AttachTime": "2026-12-07T01:02:03Z", "AttachmentId": "eni-attach-1",
                           "DeleteOnTermination": true, "DeviceIndex": 0, "Status": "attached",
                           "NetworkCardIndex": 0},
            "Description": "Primary network interface <eth0> & \"more\"",
            "Groups": [{"GroupId": "sg-0123", "GroupName": "default"}, {"GroupId": "sg-4567", "GroupName": "web's"}],
            "Ipv6Addresses": [],
            "MacAddress": "02:00:0a:00:00:05",
            "NetworkInterfaceId": "eni-0123456789abcdef0",
            "OwnerId": "000000000000",
            "PrivateDnsName": "ip-10-0-0-5.local-1.compute.internal",
            "PrivateIpAddress": "10.0.0.5",
            "PrivateIpAddresses": [{"Primary": true, "PrivateDnsName": "ip-10-0-0-5.local-1.compute.internal",
                                    "PrivateIpAddress": "10.0.0.5",
                                    "Association": {"IpOwnerId": "amazon", "PublicIp": "203.0.113.9"}}],
            "SourceDestCheck": true,
            "Status": "in-use",
            "SubnetId": "subnet-1",
            "VpcId": "vpc-1",
            "InterfaceType": "interface"
        }],
        "RootDeviceName": "/dev/vda",
        "RootDeviceType": "ebs",
        "SecurityGroups": [{"GroupId": "sg-0123", "GroupName": "default"}],
        "SourceDestCheck": true,
        "StateReason": {"Code": "Client.UserInitiatedShutdown", "Message": "Client.UserInitiatedShutdown: User initiated shutdown"},
        "Tags": [{"Key": "Name", "Value": format!("web-{i}")}, {"Key": "env", "Value": ""},
                 {"Key": "a<b>&c", "Value": "ünïcode 🦀 \u{1}"}],
        "VirtualizationType": "hvm",
        "CpuOptions": {"CoreCount": 1, "ThreadsPerCore": 2},
        "HibernationOptions": {"Configured": false},
        "MetadataOptions": {"State": "applied", "HttpTokens": "required", "HttpPutResponseHopLimit": 2,
                            "HttpEndpoint": "enabled", "HttpProtocolIpv6": "disabled",
                            "InstanceMetadataTags": "disabled"},
        "EnclaveOptions": {"Enabled": false},
        "BootMode": "uefi",
        "PlatformDetails": "Linux/UNIX",
        "UsageOperation": "RunInstances",
        "UsageOperationUpdateTime": "2026-12-07T01:02:03Z",
        "PrivateDnsNameOptions": {"HostnameType": "ip-name", "EnableResourceNameDnsARecord": false,
                                  "EnableResourceNameDnsAAAARecord": false},
        "MaintenanceOptions": {"AutoRecovery": "default"},
        "CurrentInstanceBootMode": "uefi",
        "InstanceId": id,
        "ImageId": "ami-0123456789abcdef0",
        "State": {"Code": state.0, "Name": state.1},
        "PrivateDnsName": "ip-10-0-0-5.local-1.compute.internal",
        "PublicDnsName": "",
        "StateTransitionReason": "",
        "KeyName": "laptop",
        "AmiLaunchIndex": i,
        "ProductCodes": [],
        "InstanceType": "t3.micro",
        "LaunchTime": "2026-12-07T01:02:03.5Z",
        "Placement": {"AvailabilityZone": "local-1a", "GroupName": "", "Tenancy": "default"},
        "Monitoring": {"State": "disabled"},
        "SubnetId": "subnet-1",
        "VpcId": "vpc-1",
        "PrivateIpAddress": "10.0.0.5",
        "PublicIpAddress": "203.0.113.9"
    })
}

#[test]
fn describe_instances_is_the_same_bytes() {
    let out = json!({"Reservations": [
        {"ReservationId": "r-1", "OwnerId": "000000000000", "Groups": [],
         "Instances": [instance(1, (16, "running")), instance(2, (80, "stopped"))]},
        {"ReservationId": "r-2", "OwnerId": "000000000000", "RequesterId": "kec2",
         "Instances": [instance(3, (0, "pending"))]},
        {"ReservationId": "r-3", "OwnerId": "000000000000", "Instances": []}
    ]});
    assert_eq!(check::<ec2::ops::DescribeInstances>(out), [Protocol::Ec2]);
    let empty = json!({"Reservations": [], "NextToken": "tok"});
    check::<ec2::ops::DescribeInstances>(empty);
    check::<ec2::ops::DescribeInstances>(json!({}));
}

#[test]
fn describe_security_groups_is_the_same_bytes() {
    let rule = |proto: &str, from: i64, to: i64| {
        json!({"IpProtocol": proto, "FromPort": from, "ToPort": to,
               "UserIdGroupPairs": [{"UserId": "000000000000", "GroupId": "sg-1", "Description": "peers"}],
               "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "anywhere & all"}, {"CidrIp": "10.0.0.0/8"}],
               "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
               "PrefixListIds": []})
    };
    let out = json!({"SecurityGroups": [
        {"GroupId": "sg-1", "GroupName": "default", "Description": "default VPC security group",
         "OwnerId": "000000000000", "VpcId": "vpc-1",
         "IpPermissions": [rule("tcp", 22, 22), rule("-1", -1, -1)],
         "IpPermissionsEgress": [rule("-1", 0, 65535)],
         "Tags": [{"Key": "k", "Value": "v"}],
         "SecurityGroupArn": "arn:aws:ec2:local-1:000000000000:security-group/sg-1"},
        {"GroupId": "sg-2", "GroupName": "empty", "Description": "", "IpPermissions": [], "IpPermissionsEgress": []}
    ]});
    check::<ec2::ops::DescribeSecurityGroups>(out);
}

#[test]
fn sts_and_cloudwatch_are_the_same_bytes() {
    let identity = json!({"UserId": "000000000000", "Account": "000000000000",
                          "Arn": "arn:aws:iam::000000000000:root"});
    assert_eq!(
        check::<sts::ops::GetCallerIdentity>(identity),
        [Protocol::Query]
    );
    let metrics = json!({
        "Metrics": [
            {"Namespace": "AWS/EC2", "MetricName": "CPUUtilization",
             "Dimensions": [{"Name": "InstanceId", "Value": "i-1"}, {"Name": "b", "Value": "a"}]},
            {"Namespace": "kec2", "MetricName": "Empty", "Dimensions": []},
            {"MetricName": "NoNamespace"}
        ],
        "NextToken": "next",
        "OwningAccounts": ["000000000000", "111111111111"]
    });
    assert_eq!(
        check::<cloudwatch::ops::ListMetrics>(metrics),
        [Protocol::RpcV2Cbor, Protocol::Json, Protocol::Query]
    );
    check::<cloudwatch::ops::ListMetrics>(json!({"Metrics": []}));
}

/// Checks every operation it visits with a random output.
struct RandomOutputs {
    rng: Rng,
    failures: Vec<String>,
}

impl OperationVisitor for RandomOutputs {
    fn visit<O: Operation>(&mut self) {
        let m = model(O::SERVICE);
        let shape = m
            .operation(O::NAME)
            .and_then(|o| o.output.as_ref())
            .map(|o| &m.shapes[&o.shape]);
        let v = match shape {
            Some(s) => value(m, s, &mut self.rng, 5),
            None => json!({}),
        };
        let out = O::output_from_value(v.clone())
            .unwrap_or_else(|e| panic!("{}: a random output does not read: {e}\n{v:#}", O::NAME));
        if let Err(e) = check_output::<O>(&out) {
            self.failures.push(e);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(16)
    ))]

    #[test]
    fn random_outputs_of_every_operation_are_the_same_bytes(seed in any::<u64>()) {
        let mut visitor = RandomOutputs { rng: Rng::new(seed), failures: Vec::new() };
        for s in shapes::SERVICES {
            shapes::for_each_operation(s.name, &mut visitor);
        }
        prop_assert!(visitor.failures.is_empty(), "{}", visitor.failures.join("\n\n"));
    }
}
