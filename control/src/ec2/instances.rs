//! Instances: launching them and changing their state. Compute (`host::compute`) records
//! every transition in the instance's row before it acts on the vmm, so the row is the
//! journal of these commands: after a crash `host::compute::reconcile` settles each row
//! against what is alive. The commands here are the one door the API uses, with EC2's codes
//! for compute's refusals.

use host::compute::StateChange;
use host::compute::launch::{LaunchError, LaunchRequest};
use host::compute::lifecycle::ChangeStateError;
use state::instances::InstanceRow;

use super::lookups::address_code;
use crate::{Plane, Refusal};

impl Refusal for ChangeStateError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::NotFound(_) => "InvalidInstanceID.NotFound",
            Self::IncorrectState { .. } => "IncorrectInstanceState",
            Self::Capacity { .. } => "InsufficientInstanceCapacity",
            Self::HibernationNotConfigured(_) => "UnsupportedHibernationConfiguration",
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
    /// RunInstances, its request resolved into a launch (image, type, network, volumes).
    pub fn run_instances(&self, req: &LaunchRequest) -> Result<Vec<InstanceRow>, LaunchError> {
        self.compute.launch(req)
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
