//! Instances: launching them and changing their state. Compute (`host::compute`) records
//! every transition in the instance's row before it acts on the vmm, so the row is the
//! journal of these commands: after a crash `host::compute::reconcile` settles each row
//! against what is alive. The commands here are the one door the API uses, with EC2's codes
//! for compute's refusals.

use host::compute::StateChange;
use host::compute::launch::{LaunchError, LaunchRequest, LaunchSpec};
use host::compute::lifecycle::ChangeStateError;
use state::instances::InstanceRow;
use state::{images, keypairs};

use super::block_devices::{Mapping, MappingError, launch_plan};
use super::launch_network::{LaunchNetwork, LaunchNetworkError, resolve};
use super::lookups::address_code;
use crate::{Plane, Refusal};

/// RunInstances, its request's form checked by the API.
#[derive(Debug, Clone)]
pub struct RunInstances {
    /// The image.
    pub image_id: String,
    /// What each instance is.
    pub spec: LaunchSpec,
    /// The network asked for.
    pub network: LaunchNetwork,
    /// `BlockDeviceMapping.N`.
    pub block_devices: Vec<Mapping>,
}

/// Why RunInstances is refused.
#[derive(Debug, thiserror::Error)]
pub enum RunInstancesError {
    /// The key pair does not exist.
    #[error("The key pair '{0}' does not exist")]
    NoKeyPair(String),
    /// The image does not exist.
    #[error("The image id '[{0}]' does not exist")]
    NoImage(String),
    /// The network cannot be had.
    #[error(transparent)]
    Network(#[from] LaunchNetworkError),
    /// A block-device mapping cannot be had.
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// Compute refused or failed the launch.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for RunInstancesError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::NoKeyPair(_) => Some("InvalidKeyPair.NotFound"),
            Self::NoImage(_) => Some("InvalidAMIID.NotFound"),
            Self::Network(e) => e.code(),
            Self::Mapping(e) => e.code(),
            Self::Launch(e) => e.code(),
            Self::Db(_) => None,
        }
    }
}

/// The launch `cmd` asks for, checked against the state: the key pair, the image, the
/// network and the volumes.
fn launch_request(
    conn: &rusqlite::Connection,
    cmd: &RunInstances,
) -> Result<LaunchRequest, RunInstancesError> {
    if let Some(k) = &cmd.spec.key_name
        && keypairs::by_name(conn, k)?.is_none()
    {
        return Err(RunInstancesError::NoKeyPair(k.clone()));
    }
    let image = images::get(conn, &cmd.image_id)?
        .ok_or_else(|| RunInstancesError::NoImage(cmd.image_id.clone()))?;
    let network = resolve(conn, &cmd.network)?;
    let volumes = launch_plan(conn, &image, &cmd.block_devices)?;
    Ok(LaunchRequest {
        image,
        spec: cmd.spec.clone(),
        network,
        volumes,
    })
}

impl Refusal for ChangeStateError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::NotFound(_) => "InvalidInstanceID.NotFound",
            Self::IncorrectState { .. } => "IncorrectInstanceState",
            Self::Capacity { .. } => "InsufficientInstanceCapacity",
            Self::HibernationNotConfigured(_) => "UnsupportedHibernationConfiguration",
            Self::PublicAddresses(_) => "InsufficientAddressCapacity",
            Self::Db(_) => return None,
        })
    }
}

impl Refusal for LaunchError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Capacity { .. } => Some("InsufficientInstanceCapacity"),
            Self::TokenMismatch(_) => Some("IdempotentParameterMismatch"),
            Self::Address(a) => address_code(a),
            Self::PublicAddresses { .. } => Some("InsufficientAddressCapacity"),
            Self::Db(_) => None,
        }
    }
}

/// How StopInstances stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// The power button, then the hard stop after the stop timeout.
    Graceful,
    /// The hard stop at once (`Force`).
    Force,
    /// Hibernation: memory written to the root volume, then stopped.
    Hibernate,
}

impl Plane {
    /// RunInstances: the launch checked against the state, then handed to compute, which
    /// records the instances (`pending`) before it starts anything.
    pub fn run_instances(&self, cmd: &RunInstances) -> Result<Vec<InstanceRow>, RunInstancesError> {
        let req = launch_request(&self.db.lock(), cmd)?;
        Ok(self.compute.launch(&req)?)
    }

    /// StartInstances.
    pub async fn start_instances(
        &self,
        ids: &[String],
    ) -> Result<Vec<StateChange>, ChangeStateError> {
        self.compute.start(ids).await
    }

    /// StopInstances.
    pub async fn stop_instances(
        &self,
        ids: &[String],
        mode: StopMode,
    ) -> Result<Vec<StateChange>, ChangeStateError> {
        match mode {
            StopMode::Graceful => self.compute.stop(ids, false).await,
            StopMode::Force => self.compute.stop(ids, true).await,
            StopMode::Hibernate => self.compute.hibernate(ids).await,
        }
    }

    /// RebootInstances.
    pub async fn reboot_instances(&self, ids: &[String]) -> Result<(), ChangeStateError> {
        self.compute.reboot(ids).await
    }

    /// TerminateInstances.
    pub async fn terminate_instances(
        &self,
        ids: &[String],
    ) -> Result<Vec<StateChange>, ChangeStateError> {
        self.compute.terminate(ids).await
    }
}
