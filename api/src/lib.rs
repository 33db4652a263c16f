//! kec2's API endpoint: the HTTP server, the front every service shares (SigV4,
//! routing, model validation and encoding through `wire`), and per service its handlers: EC2
//! (one module per resource family), STS, CloudWatch and SNS.

pub mod addresses;
pub mod attributes;
pub mod autoscaling;
pub mod block_devices;
pub mod cloudwatch;
pub mod elbv2;
pub mod errors;
pub mod filters;
pub mod front;
#[cfg(test)]
mod fuzz;
mod http;
pub mod image_devices;
pub mod images;
pub mod instance_network;
pub mod instance_status;
pub mod instances;
pub mod keypairs;
pub mod launch_network;
pub mod launch_templates;
pub mod metadata_options;
pub mod models;
pub mod network_interfaces;
pub mod operation;
pub mod panics;
pub mod query;
pub mod render;
pub mod security_groups;
pub mod server;
pub mod sg_permissions;
pub mod snapshots;
pub mod sns;
pub mod sts;
pub mod tags;
pub mod typed;
pub mod types;
pub mod volumes;
pub mod vpcs;

use std::sync::Arc;

use errors::ApiError;
use state::Db;
use wire::credentials::Credentials;

pub use host::placement::{AVAILABILITY_ZONE, REGION, ZONE_ID};

/// What every handler needs.
#[derive(Debug)]
pub struct ApiState {
    /// The state database, which Describe actions read.
    pub db: Arc<Db>,
    /// The one set of credentials requests are signed with.
    pub credentials: Credentials,
    /// The 12-digit account id shown as `ownerId`.
    pub account_id: String,
    /// The control plane, which the handlers hand their commands to.
    pub plane: Arc<control::Plane>,
    /// SNS's signing certificate (PEM), served at `control::sns::CERT_PATH`.
    pub sns_certificate: String,
}

/// A handler's context: the shared state and the request id.
#[derive(Debug)]
pub struct Call<'a> {
    /// Shared state.
    pub st: &'a Arc<ApiState>,
    /// This request's id.
    pub request_id: &'a str,
}

/// What a handler answers: its operation's typed output, its type erased, which the front
/// encodes in the request's protocol (the `wire` layer's typed encoder, without a Value).
pub type Reply = Box<dyn operation::Output>;

/// Every EC2 action served, for `InvalidAction` and DryRun.
pub const ACTIONS: &[&str] = &[
    "RunInstances",
    "DescribeInstances",
    "StartInstances",
    "StopInstances",
    "RebootInstances",
    "TerminateInstances",
    "DescribeInstanceStatus",
    "MonitorInstances",
    "UnmonitorInstances",
    "DescribeInstanceAttribute",
    "GetConsoleOutput",
    "DescribeInstanceTypes",
    "RegisterImage",
    "DescribeImages",
    "DeregisterImage",
    "CreateKeyPair",
    "ImportKeyPair",
    "DescribeKeyPairs",
    "DeleteKeyPair",
    "CreateTags",
    "DeleteTags",
    "DescribeTags",
    "DescribeRegions",
    "DescribeAvailabilityZones",
    // Networking
    "CreateVpc",
    "DeleteVpc",
    "DescribeVpcs",
    "CreateSubnet",
    "DeleteSubnet",
    "DescribeSubnets",
    "ModifySubnetAttribute",
    "CreateSecurityGroup",
    "DeleteSecurityGroup",
    "DescribeSecurityGroups",
    "DescribeSecurityGroupRules",
    "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",
    "RevokeSecurityGroupIngress",
    "RevokeSecurityGroupEgress",
    "ModifyInstanceAttribute",
    "ModifyInstanceMetadataOptions",
    "AllocateAddress",
    "AssociateAddress",
    "DisassociateAddress",
    "ReleaseAddress",
    "DescribeAddresses",
    "DescribeNetworkInterfaces",
    "CreateNetworkInterface",
    "AttachNetworkInterface",
    "DetachNetworkInterface",
    "DeleteNetworkInterface",
    "ModifyNetworkInterfaceAttribute",
    // EBS
    "CreateVolume",
    "DescribeVolumes",
    "AttachVolume",
    "DetachVolume",
    "DeleteVolume",
    "ModifyVolume",
    "CreateSnapshot",
    "DescribeSnapshots",
    "CopySnapshot",
    "DeleteSnapshot",
    "CreateImage",
    // Launch templates
    "CreateLaunchTemplate",
    "CreateLaunchTemplateVersion",
    "DescribeLaunchTemplates",
    "DescribeLaunchTemplateVersions",
    "ModifyLaunchTemplate",
    "DeleteLaunchTemplate",
    "DeleteLaunchTemplateVersions",
];

/// Runs one EC2 action, its input checked against the model already.
pub async fn dispatch_ec2(
    action: &str,
    c: &Call<'_>,
    input: serde_json::Value,
) -> Result<Reply, ApiError> {
    if !ACTIONS.contains(&action) {
        return Err(operation::not_served(action));
    }
    if input.get("DryRun") == Some(&serde_json::Value::Bool(true)) {
        return Err(ApiError::new(
            "DryRunOperation",
            "Request would have succeeded, but DryRun flag is set.",
        )
        .with_status(412));
    }
    dispatch_typed(action, c, input)
        .await?
        .ok_or_else(|| operation::not_served(action))
}

/// Runs `$op`'s handler `$handler(c, typed input)` (awaited when marked `async`) and gives
/// its typed output to the wire layer.
macro_rules! typed_op {
    ($op:ident, $c:expr, $input:expr, async $handler:path) => {{
        let input = operation::input::<shapes::ec2::ops::$op>($input)?;
        operation::output::<shapes::ec2::ops::$op>($handler($c, input).await?)
    }};
    ($op:ident, $c:expr, $input:expr, $handler:path) => {{
        let input = operation::input::<shapes::ec2::ops::$op>($input)?;
        operation::output::<shapes::ec2::ops::$op>($handler($c, input)?)
    }};
}

/// Runs an action whose handler takes typed input and gives typed output; `None` for the
/// others.
async fn dispatch_typed(
    action: &str,
    c: &Call<'_>,
    input: serde_json::Value,
) -> Result<Option<Reply>, ApiError> {
    Ok(Some(match action {
        "CreateKeyPair" => typed_op!(CreateKeyPair, c, input, async keypairs::create)?,
        "ImportKeyPair" => typed_op!(ImportKeyPair, c, input, keypairs::import)?,
        "DescribeKeyPairs" => typed_op!(DescribeKeyPairs, c, input, keypairs::describe)?,
        "DeleteKeyPair" => typed_op!(DeleteKeyPair, c, input, keypairs::delete)?,
        "RunInstances" => typed_op!(RunInstances, c, input, async instances::run)?,
        "DescribeInstances" => tokio::task::block_in_place(|| {
            let input = operation::input::<shapes::ec2::ops::DescribeInstances>(input)?;
            operation::output_streamed(instances::describe(c, input)?)
        })?,
        "StartInstances" => typed_op!(StartInstances, c, input, async instances::start)?,
        "StopInstances" => typed_op!(StopInstances, c, input, async instances::stop)?,
        "RebootInstances" => typed_op!(RebootInstances, c, input, async instances::reboot)?,
        "TerminateInstances" => {
            typed_op!(TerminateInstances, c, input, async instances::terminate)?
        }
        "DescribeInstanceStatus" => tokio::task::block_in_place(|| {
            typed_op!(
                DescribeInstanceStatus,
                c,
                input,
                instance_status::describe_status
            )
        })?,
        "MonitorInstances" => typed_op!(MonitorInstances, c, input, instance_status::monitor)?,
        "UnmonitorInstances" => {
            typed_op!(UnmonitorInstances, c, input, instance_status::unmonitor)?
        }
        "GetConsoleOutput" => typed_op!(GetConsoleOutput, c, input, instances::console_output)?,
        "DescribeInstanceAttribute" => {
            typed_op!(DescribeInstanceAttribute, c, input, attributes::describe)?
        }
        "ModifyInstanceAttribute" => {
            typed_op!(ModifyInstanceAttribute, c, input, async attributes::modify)?
        }
        "ModifyInstanceMetadataOptions" => typed_op!(
            ModifyInstanceMetadataOptions,
            c,
            input,
            async metadata_options::modify
        )?,
        "DescribeInstanceTypes" => typed_op!(
            DescribeInstanceTypes,
            c,
            input,
            types::describe_instance_types
        )?,
        "DescribeRegions" => typed_op!(DescribeRegions, c, input, types::describe_regions)?,
        "DescribeAvailabilityZones" => {
            typed_op!(DescribeAvailabilityZones, c, input, types::describe_zones)?
        }
        "RegisterImage" => typed_op!(RegisterImage, c, input, images::register)?,
        "DescribeImages" => {
            tokio::task::block_in_place(|| typed_op!(DescribeImages, c, input, images::describe))?
        }
        "DeregisterImage" => typed_op!(DeregisterImage, c, input, images::deregister)?,
        "CreateTags" => typed_op!(CreateTags, c, input, tags::create)?,
        "DeleteTags" => typed_op!(DeleteTags, c, input, tags::delete)?,
        "DescribeTags" => {
            tokio::task::block_in_place(|| typed_op!(DescribeTags, c, input, tags::describe))?
        }
        // EBS
        "CreateVolume" => typed_op!(CreateVolume, c, input, async volumes::create)?,
        "DescribeVolumes" => {
            tokio::task::block_in_place(|| typed_op!(DescribeVolumes, c, input, volumes::describe))?
        }
        "AttachVolume" => typed_op!(AttachVolume, c, input, async volumes::attach)?,
        "DetachVolume" => typed_op!(DetachVolume, c, input, async volumes::detach)?,
        "DeleteVolume" => typed_op!(DeleteVolume, c, input, async volumes::delete)?,
        "ModifyVolume" => typed_op!(ModifyVolume, c, input, async volumes::modify)?,
        "CreateSnapshot" => typed_op!(CreateSnapshot, c, input, async snapshots::create)?,
        "DescribeSnapshots" => tokio::task::block_in_place(|| {
            typed_op!(DescribeSnapshots, c, input, snapshots::describe)
        })?,
        "CopySnapshot" => typed_op!(CopySnapshot, c, input, async snapshots::copy)?,
        "DeleteSnapshot" => typed_op!(DeleteSnapshot, c, input, async snapshots::delete)?,
        "CreateImage" => typed_op!(CreateImage, c, input, async snapshots::create_image)?,
        // Networking
        "CreateVpc" => typed_op!(CreateVpc, c, input, async vpcs::create_vpc)?,
        "DeleteVpc" => typed_op!(DeleteVpc, c, input, async vpcs::delete_vpc)?,
        "DescribeVpcs" => typed_op!(DescribeVpcs, c, input, vpcs::describe_vpcs)?,
        "CreateSubnet" => typed_op!(CreateSubnet, c, input, async vpcs::create_subnet)?,
        "DeleteSubnet" => typed_op!(DeleteSubnet, c, input, async vpcs::delete_subnet)?,
        "DescribeSubnets" => typed_op!(DescribeSubnets, c, input, vpcs::describe_subnets)?,
        "ModifySubnetAttribute" => typed_op!(
            ModifySubnetAttribute,
            c,
            input,
            async vpcs::modify_subnet_attribute
        )?,
        "CreateSecurityGroup" => typed_op!(CreateSecurityGroup, c, input, security_groups::create)?,
        "DeleteSecurityGroup" => {
            typed_op!(DeleteSecurityGroup, c, input, async security_groups::delete)?
        }
        "DescribeSecurityGroups" => {
            typed_op!(DescribeSecurityGroups, c, input, security_groups::describe)?
        }
        "DescribeSecurityGroupRules" => typed_op!(
            DescribeSecurityGroupRules,
            c,
            input,
            security_groups::describe_rules
        )?,
        "AuthorizeSecurityGroupIngress" => typed_op!(
            AuthorizeSecurityGroupIngress,
            c,
            input,
            async security_groups::authorize_ingress
        )?,
        "AuthorizeSecurityGroupEgress" => typed_op!(
            AuthorizeSecurityGroupEgress,
            c,
            input,
            async security_groups::authorize_egress
        )?,
        "RevokeSecurityGroupIngress" => typed_op!(
            RevokeSecurityGroupIngress,
            c,
            input,
            async security_groups::revoke_ingress
        )?,
        "RevokeSecurityGroupEgress" => typed_op!(
            RevokeSecurityGroupEgress,
            c,
            input,
            async security_groups::revoke_egress
        )?,
        "AllocateAddress" => typed_op!(AllocateAddress, c, input, async addresses::allocate)?,
        "AssociateAddress" => typed_op!(AssociateAddress, c, input, async addresses::associate)?,
        "DisassociateAddress" => {
            typed_op!(DisassociateAddress, c, input, async addresses::disassociate)?
        }
        "ReleaseAddress" => typed_op!(ReleaseAddress, c, input, async addresses::release)?,
        "DescribeAddresses" => typed_op!(DescribeAddresses, c, input, addresses::describe)?,
        "DescribeNetworkInterfaces" => tokio::task::block_in_place(|| {
            typed_op!(
                DescribeNetworkInterfaces,
                c,
                input,
                network_interfaces::describe
            )
        })?,
        "CreateNetworkInterface" => {
            typed_op!(CreateNetworkInterface, c, input, async network_interfaces::create)?
        }
        "AttachNetworkInterface" => {
            typed_op!(AttachNetworkInterface, c, input, async network_interfaces::attach)?
        }
        "DetachNetworkInterface" => {
            typed_op!(DetachNetworkInterface, c, input, async network_interfaces::detach)?
        }
        "DeleteNetworkInterface" => typed_op!(
            DeleteNetworkInterface,
            c,
            input,
            async network_interfaces::delete
        )?,
        "ModifyNetworkInterfaceAttribute" => typed_op!(
            ModifyNetworkInterfaceAttribute,
            c,
            input,
            async network_interfaces::modify
        )?,
        // Launch templates
        "CreateLaunchTemplate" => {
            typed_op!(CreateLaunchTemplate, c, input, launch_templates::create)?
        }
        "CreateLaunchTemplateVersion" => typed_op!(
            CreateLaunchTemplateVersion,
            c,
            input,
            launch_templates::create_version
        )?,
        "DescribeLaunchTemplates" => typed_op!(
            DescribeLaunchTemplates,
            c,
            input,
            launch_templates::describe
        )?,
        "DescribeLaunchTemplateVersions" => typed_op!(
            DescribeLaunchTemplateVersions,
            c,
            input,
            launch_templates::describe_versions
        )?,
        "ModifyLaunchTemplate" => {
            typed_op!(ModifyLaunchTemplate, c, input, launch_templates::modify)?
        }
        "DeleteLaunchTemplate" => {
            typed_op!(DeleteLaunchTemplate, c, input, launch_templates::delete)?
        }
        "DeleteLaunchTemplateVersions" => typed_op!(
            DeleteLaunchTemplateVersions,
            c,
            input,
            launch_templates::delete_versions
        )?,
        _ => return Ok(None),
    }))
}

/// The fuzz suites' proptest settings (`host::fuzz_cases` cases, no regression files).
#[cfg(test)]
pub(crate) fn fuzz_config() -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases: host::fuzz_cases(),
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}
