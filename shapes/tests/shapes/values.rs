//! Realistic requests and responses, written as the wire layer's values, read into the typed
//! shapes and written back.

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use shapes::{Operation, StringEnum, cloudwatch, ec2, sts};

// The values go through the operations' conversions (`O::input_from_value`, ...), compiled
// in the shapes crate, rather than `serde_json::from_value::<T>`, which would compile serde's
// code for these big types again here.

/// Reads `value` as `O`'s input, checks that writing it back gives the same value.
fn input<O: Operation>(value: Value) -> O::Input {
    let typed = O::input_from_value(value.clone()).expect("the value reads");
    assert_eq!(O::input_to_value(&typed).unwrap(), value);
    typed
}

/// Reads `value` as `O`'s output, checks that writing it back gives the same value.
fn output<O: Operation>(value: Value) -> O::Output {
    let typed = O::output_from_value(value.clone()).expect("the value reads");
    assert_eq!(O::output_to_value(&typed).unwrap(), value);
    typed
}

fn run_instances_input() -> Value {
    json!({
        "ImageId": "ami-0123456789abcdef0",
        "InstanceType": "t2.micro",
        "MinCount": 1,
        "MaxCount": 2,
        "KeyName": "laptop",
        "SubnetId": "subnet-0a1b2c3d",
        "SecurityGroupIds": ["sg-0123abcd"],
        "UserData": "IyEvYmluL3NoCmVjaG8gaGk=",
        "BlockDeviceMappings": [{
            "DeviceName": "/dev/xvda",
            "Ebs": {"VolumeSize": 8, "VolumeType": "gp3", "DeleteOnTermination": true}
        }, {
            "DeviceName": "/dev/sdb",
            "NoDevice": ""
        }],
        "TagSpecifications": [{
            "ResourceType": "instance",
            "Tags": [{"Key": "Name", "Value": "web-1"}, {"Key": "env", "Value": ""}]
        }],
        "MetadataOptions": {
            "HttpTokens": "required",
            "HttpPutResponseHopLimit": 2,
            "HttpEndpoint": "enabled"
        },
        "Monitoring": {"Enabled": false},
        "Placement": {"AvailabilityZone": "local-1a"},
        "ClientToken": "5c5b3a3e-0f3c-4f43-9c8e-3b4b2b9d1c11",
        "DryRun": false
    })
}

#[test]
fn run_instances_input_is_typed() {
    let input = input::<ec2::ops::RunInstances>(run_instances_input());
    assert_eq!(input.instance_type, Some(ec2::InstanceType::T2Micro));
    assert_eq!((input.min_count, input.max_count), (1, 2));
    let mappings = input.block_device_mappings.as_deref().unwrap();
    let ebs = mappings[0].ebs.as_ref().unwrap();
    assert_eq!(ebs.volume_type, Some(ec2::VolumeType::Gp3));
    assert_eq!((ebs.volume_size, ebs.iops), (Some(8), None));
    let spec = &input.tag_specifications.as_deref().unwrap()[0];
    assert_eq!(spec.resource_type, Some(ec2::ResourceType::Instance));
    let metadata = input.metadata_options.unwrap();
    assert_eq!(metadata.http_tokens, Some(ec2::HttpTokensState::Required));
    assert!(
        !input.monitoring.unwrap().enabled,
        "Monitoring.Enabled is a required bool"
    );
    assert_eq!(input.dry_run, Some(false));
}

#[test]
fn a_wrong_enum_value_does_not_read() {
    for (member, bad) in [("InstanceType", "t2.mikro"), ("InstanceType", "T2.MICRO")] {
        let mut value = run_instances_input();
        value[member] = json!(bad);
        let err = ec2::ops::RunInstances::input_from_value(value).unwrap_err();
        assert!(err.to_string().contains(bad), "{err}");
    }
    let mut value = run_instances_input();
    value["BlockDeviceMappings"][0]["Ebs"]["VolumeType"] = json!("gp9");
    assert!(ec2::ops::RunInstances::input_from_value(value).is_err());
}

#[test]
fn a_missing_required_member_does_not_read() {
    let mut value = run_instances_input();
    value.as_object_mut().unwrap().remove("MinCount");
    assert!(ec2::ops::RunInstances::input_from_value(value).is_err());
}

#[test]
fn the_least_input_is_only_its_required_members() {
    let input = input::<ec2::ops::RunInstances>(json!({"MinCount": 1, "MaxCount": 1}));
    assert_eq!(input.image_id, None);
    let input = ec2::DescribeInstancesRequest::default();
    assert_eq!(
        ec2::ops::DescribeInstances::input_to_value(&input).unwrap(),
        json!({}),
        "absent is left out, not null"
    );
}

#[test]
fn describe_instances_output_with_a_reservation() {
    let value = json!({
        "Reservations": [{
            "ReservationId": "r-0123456789abcdef0",
            "OwnerId": "000000000000",
            "Groups": [],
            "Instances": [{
                "InstanceId": "i-0123456789abcdef0",
                "ImageId": "ami-0123456789abcdef0",
                "InstanceType": "m5.large",
                "AmiLaunchIndex": 0,
                "LaunchTime": "2024-05-01T12:00:00Z",
                "State": {"Code": 16, "Name": "running"},
                "PrivateIpAddress": "10.0.1.12",
                "PublicIpAddress": "198.51.100.7",
                "Placement": {"AvailabilityZone": "local-1a", "Tenancy": "default"},
                "Monitoring": {"State": "disabled"},
                "Architecture": "x86_64",
                "RootDeviceType": "ebs",
                "RootDeviceName": "/dev/xvda",
                "BlockDeviceMappings": [{
                    "DeviceName": "/dev/xvda",
                    "Ebs": {
                        "AttachTime": "2024-05-01T12:00:01.250Z",
                        "DeleteOnTermination": true,
                        "Status": "attached",
                        "VolumeId": "vol-0123456789abcdef0"
                    }
                }],
                "SecurityGroups": [{"GroupId": "sg-0123abcd", "GroupName": "default"}],
                "Tags": [{"Key": "Name", "Value": "web-1"}],
                "MetadataOptions": {
                    "State": "applied",
                    "HttpTokens": "required",
                    "HttpPutResponseHopLimit": 1,
                    "HttpEndpoint": "enabled"
                },
                "Hypervisor": "xen",
                "VirtualizationType": "hvm",
                "EbsOptimized": false
            }]
        }]
    });
    let out = output::<ec2::ops::DescribeInstances>(value);
    let reservation = &out.reservations.as_deref().unwrap()[0];
    let instance = &reservation.instances.as_deref().unwrap()[0];
    let state = instance.state.as_ref().unwrap();
    assert_eq!(
        (state.code, state.name),
        (Some(16), Some(ec2::InstanceStateName::Running))
    );
    let launched = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
    assert_eq!(instance.launch_time, Some(launched));
    let ebs = instance.block_device_mappings.as_deref().unwrap()[0]
        .ebs
        .as_ref()
        .unwrap();
    let attached = ebs.attach_time.unwrap();
    assert_eq!(attached - launched, chrono::Duration::milliseconds(1250));
    assert_eq!(instance.architecture, Some(ec2::ArchitectureValues::X86_64));
    assert_eq!(out.next_token, None);
}

#[test]
fn a_timestamp_in_another_offset_is_read_as_utc() {
    let value =
        json!({"Reservations": [{"Instances": [{"LaunchTime": "2024-05-01T14:00:00+02:00"}]}]});
    let out = ec2::ops::DescribeInstances::output_from_value(value).unwrap();
    let back = ec2::ops::DescribeInstances::output_to_value(&out).unwrap();
    assert_eq!(
        back["Reservations"][0]["Instances"][0]["LaunchTime"],
        "2024-05-01T12:00:00Z"
    );
    let bad = json!({"Reservations": [{"Instances": [{"LaunchTime": "yesterday"}]}]});
    assert!(ec2::ops::DescribeInstances::output_from_value(bad).is_err());
}

#[test]
fn import_key_pair_carries_a_blob() {
    let key = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx laptop";
    let value = json!({
        "KeyName": "laptop",
        "PublicKeyMaterial": "c3NoLWVkMjU1MTkgQUFBQUMzTnphQzFsWkRJMU5URTVBQUFBSUJ4IGxhcHRvcA==",
    });
    let input = input::<ec2::ops::ImportKeyPair>(value);
    assert_eq!(input.public_key_material.0, key);
    let bad = json!({"KeyName": "laptop", "PublicKeyMaterial": "not base64!"});
    assert!(ec2::ops::ImportKeyPair::input_from_value(bad).is_err());
}

#[test]
fn an_output_is_built_in_rust_and_written() {
    let out = ec2::StopInstancesResult {
        stopping_instances: Some(vec![ec2::InstanceStateChange {
            instance_id: Some("i-0123456789abcdef0".into()),
            previous_state: Some(ec2::InstanceState {
                code: Some(16),
                name: Some(ec2::InstanceStateName::Running),
            }),
            current_state: Some(ec2::InstanceState {
                code: Some(64),
                name: Some(ec2::InstanceStateName::Stopping),
            }),
        }]),
    };
    let value = ec2::ops::StopInstances::output_to_value(&out).unwrap();
    assert_eq!(
        value,
        json!({"StoppingInstances": [{
            "InstanceId": "i-0123456789abcdef0",
            "PreviousState": {"Code": 16, "Name": "running"},
            "CurrentState": {"Code": 64, "Name": "stopping"}
        }]})
    );
}

#[test]
fn enums_spell_the_model_values() {
    use ec2::InstanceType;
    assert_eq!(InstanceType::T2Micro.as_str(), "t2.micro");
    assert_eq!(InstanceType::T2Micro.to_string(), "t2.micro");
    assert_eq!(
        "m5.large".parse::<InstanceType>(),
        Ok(InstanceType::M5Large)
    );
    assert_eq!(
        InstanceType::from_wire("a1.2xlarge"),
        Some(InstanceType::A1_2xlarge)
    );
    let err = "t2.mikro".parse::<InstanceType>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "\"t2.mikro\" is not a value of InstanceType"
    );
    assert_eq!(<InstanceType as StringEnum>::SHAPE, "InstanceType");
    assert_eq!(ec2::ResourceType::SecurityGroup.as_str(), "security-group");
    assert_eq!(ec2::NetworkInterfaceType::NatGateway.as_str(), "natGateway");
}

#[test]
fn operations_name_their_types() {
    assert_eq!(ec2::ops::RunInstances::NAME, "RunInstances");
    assert_eq!(ec2::ops::RunInstances::SERVICE, "ec2");
    let info = ec2::OPERATIONS
        .iter()
        .find(|o| o.name == "DeleteVpc")
        .unwrap();
    assert_eq!((info.input, info.output), (Some("DeleteVpcRequest"), None));
    // No output shape: the output is the empty object.
    let out = shapes::Empty {};
    assert_eq!(
        ec2::ops::DeleteVpc::output_to_value(&out).unwrap(),
        json!({})
    );
    assert_eq!(ec2::OPERATIONS.len(), 70);
}

#[test]
fn sts_get_caller_identity() {
    let input = sts::ops::GetCallerIdentity::input_from_value(json!({})).unwrap();
    assert_eq!(input, sts::GetCallerIdentityRequest {});
    let out = output::<sts::ops::GetCallerIdentity>(json!({
        "UserId": "AIDAEXAMPLE",
        "Account": "000000000000",
        "Arn": "arn:aws:iam::000000000000:user/admin"
    }));
    assert_eq!(out.account.as_deref(), Some("000000000000"));
}

#[test]
fn cloudwatch_list_metrics() {
    let input = input::<cloudwatch::ops::ListMetrics>(json!({
        "Namespace": "AWS/EC2",
        "MetricName": "CPUUtilization",
        "Dimensions": [{"Name": "InstanceId", "Value": "i-0123456789abcdef0"}],
        "RecentlyActive": "PT3H"
    }));
    assert_eq!(
        input.recently_active,
        Some(cloudwatch::RecentlyActive::Pt3h)
    );
    output::<cloudwatch::ops::ListMetrics>(json!({
        "Metrics": [{
            "Namespace": "AWS/EC2",
            "MetricName": "CPUUtilization",
            "Dimensions": [{"Name": "InstanceId", "Value": "i-0123456789abcdef0"}]
        }],
        "NextToken": "abc"
    }));
    let info = cloudwatch::OPERATIONS
        .iter()
        .find(|o| o.name == "ListMetrics")
        .unwrap();
    assert!(
        info.errors.contains(&"InvalidParameterValueException"),
        "{:?}",
        info.errors
    );
    // An error shape is small: serde's own functions are fine for it.
    let value = json!({"message": "The value for NextToken is not valid."});
    let error: cloudwatch::InvalidParameterValueException =
        serde_json::from_value(value.clone()).unwrap();
    assert!(error.message.is_some());
    assert_eq!(serde_json::to_value(&error).unwrap(), value);
}
