//! The agent's API endpoint: the HTTP server, the front every service shares (SigV4,
//! routing, model validation and encoding through `wire`), and per service its handlers: EC2
//! (one module per resource family), STS and CloudWatch.

pub mod addresses;
pub mod attributes;
pub mod block_devices;
pub mod cloudwatch;
pub mod errors;
pub mod filters;
pub mod front;
#[cfg(test)]
mod fuzz;
pub mod image_devices;
pub mod images;
pub mod instance_network;
pub mod instances;
pub mod keypairs;
pub mod launch_network;
pub mod metadata_options;
pub mod network_interfaces;
pub mod panics;
pub mod query;
pub mod render;
pub mod security_groups;
pub mod server;
pub mod sg_permissions;
pub mod snapshots;
pub mod sts;
pub mod tags;
pub mod typed;
pub mod types;
pub mod volumes;
pub mod vpcs;
pub mod xml;

use std::sync::Arc;

use crate::compute::Compute;
use crate::credentials::Credentials;
use crate::state::Db;
use errors::ApiError;
use query::Params;

/// The only region.
pub const REGION: &str = "local-1";
/// The only availability zone.
pub const AVAILABILITY_ZONE: &str = "local-1a";
/// The API version spoken.
pub const VERSION: &str = "2016-11-15";

/// What every handler needs.
#[derive(Debug)]
pub struct ApiState {
    /// The compute service.
    pub compute: Arc<Compute>,
    /// The network service.
    pub network: Arc<crate::network::Network>,
    /// The state database.
    pub db: Arc<Db>,
    /// The one set of credentials requests are signed with.
    pub credentials: Credentials,
    /// The 12-digit account id shown as `ownerId`.
    pub account_id: String,
    /// EBS: volume files, snapshots and the chunk store.
    pub storage: Arc<crate::storage::Storage>,
}

/// A handler's context: the shared state, the parameters and the request id.
#[derive(Debug)]
pub struct Call<'a> {
    /// Shared state.
    pub st: &'a Arc<ApiState>,
    /// Parameters.
    pub p: &'a Params,
    /// This request's id.
    pub request_id: &'a str,
}

/// What a handler answers: an operation's output as the `wire` layer's Value (encoded in
/// the request's protocol), or, from an EC2 handler not yet on typed shapes, its XML.
#[derive(Debug)]
pub enum Reply {
    /// The output, a Value of the operation's output shape.
    Output(serde_json::Value),
    /// A whole EC2 response document.
    Xml(String),
}

/// Every EC2 action served, for `InvalidAction` and DryRun.
pub const ACTIONS: &[&str] = &[
    "RunInstances",
    "DescribeInstances",
    "StartInstances",
    "StopInstances",
    "RebootInstances",
    "TerminateInstances",
    "DescribeInstanceStatus",
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
];

/// Runs one EC2 action, its input checked against the model already.
pub async fn dispatch_ec2(
    action: &str,
    c: &Call<'_>,
    input: serde_json::Value,
) -> Result<Reply, ApiError> {
    if !ACTIONS.contains(&action) {
        return Err(front::not_served(action));
    }
    if c.p.bool("DryRun")? {
        return Err(ApiError::new(
            "DryRunOperation",
            "Request would have succeeded, but DryRun flag is set.",
        )
        .with_status(412));
    }
    if let Some(reply) = dispatch_typed(action, c, input).await? {
        return Ok(reply);
    }
    dispatch(action, c).await.map(Reply::Xml)
}

/// Runs `$op`'s handler `$handler(c, typed input)` (awaited when marked `async`) and gives
/// its typed output to the wire layer.
macro_rules! typed_op {
    ($op:ident, $c:expr, $input:expr, async $handler:path) => {{
        let input = front::input::<shapes::ec2::ops::$op>($input)?;
        front::output::<shapes::ec2::ops::$op>(&$handler($c, input).await?)
    }};
    ($op:ident, $c:expr, $input:expr, $handler:path) => {{
        let input = front::input::<shapes::ec2::ops::$op>($input)?;
        front::output::<shapes::ec2::ops::$op>(&$handler($c, input)?)
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
            vpcs::modify_subnet_attribute
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
        "AllocateAddress" => typed_op!(AllocateAddress, c, input, addresses::allocate)?,
        "AssociateAddress" => typed_op!(AssociateAddress, c, input, async addresses::associate)?,
        "DisassociateAddress" => {
            typed_op!(DisassociateAddress, c, input, async addresses::disassociate)?
        }
        "ReleaseAddress" => typed_op!(ReleaseAddress, c, input, addresses::release)?,
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
            typed_op!(CreateNetworkInterface, c, input, network_interfaces::create)?
        }
        "AttachNetworkInterface" => {
            typed_op!(AttachNetworkInterface, c, input, network_interfaces::attach)?
        }
        "DetachNetworkInterface" => {
            typed_op!(DetachNetworkInterface, c, input, network_interfaces::detach)?
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
        _ => return Ok(None),
    }))
}

/// Runs one action and returns its XML. The listing actions, which can take milliseconds
/// over many rows, run with `block_in_place` so they do not hold up other requests.
pub async fn dispatch(action: &str, c: &Call<'_>) -> Result<String, ApiError> {
    match action {
        "RunInstances" => instances::run(c).await,
        "DescribeInstances" => tokio::task::block_in_place(|| instances::describe(c)),
        "StartInstances" => instances::start(c).await,
        "StopInstances" => instances::stop(c).await,
        "RebootInstances" => instances::reboot(c).await,
        "TerminateInstances" => instances::terminate(c).await,
        "DescribeInstanceStatus" => tokio::task::block_in_place(|| instances::describe_status(c)),
        "GetConsoleOutput" => instances::console_output(c),
        "DescribeInstanceAttribute" => attributes::describe(c),
        "DescribeInstanceTypes" => types::describe_instance_types(c),
        "DescribeRegions" => types::describe_regions(c),
        "DescribeAvailabilityZones" => types::describe_zones(c),
        "RegisterImage" => images::register(c),
        "DescribeImages" => tokio::task::block_in_place(|| images::describe(c)),
        "DeregisterImage" => images::deregister(c),
        "CreateTags" => tags::create(c),
        "DeleteTags" => tags::delete(c),
        "DescribeTags" => tokio::task::block_in_place(|| tags::describe(c)),
        // Networking
        "ModifyInstanceAttribute" => attributes::modify(c).await,
        "ModifyInstanceMetadataOptions" => metadata_options::modify(c).await,
        // EBS
        "CreateVolume" => volumes::create(c),
        "DescribeVolumes" => tokio::task::block_in_place(|| volumes::describe(c)),
        "AttachVolume" => volumes::attach(c),
        "DetachVolume" => volumes::detach(c),
        "DeleteVolume" => volumes::delete(c),
        "ModifyVolume" => volumes::modify(c),
        "CreateSnapshot" => snapshots::create(c),
        "DescribeSnapshots" => tokio::task::block_in_place(|| snapshots::describe(c)),
        "CopySnapshot" => snapshots::copy(c),
        "DeleteSnapshot" => snapshots::delete(c),
        "CreateImage" => snapshots::create_image(c),
        other => Err(ApiError::new(
            "InvalidAction",
            format!("The action {other} is not valid for this web service."),
        )),
    }
}
