//! ModifyInstanceAttribute's `BlockDeviceMapping.N`: the DeleteOnTermination of the volumes
//! attached to an instance, by device.

use rusqlite::Connection;

use super::lookups::{LiveInstanceError, live_instance};
use crate::{Plane, Refusal};
use state::volumes;

/// One device's new DeleteOnTermination.
#[derive(Debug, Clone)]
pub struct DeviceChange {
    /// The device name.
    pub device: String,
    /// The new value.
    pub delete_on_termination: bool,
    /// The volume that must be at that device, if given.
    pub volume_id: Option<String>,
}

/// Sets the DeleteOnTermination of an instance's volumes: all or nothing.
#[derive(Debug, Clone)]
pub struct SetDeleteOnTermination {
    /// The instance (well formed).
    pub instance_id: String,
    /// The changes.
    pub changes: Vec<DeviceChange>,
}

/// Why the change was refused.
#[derive(Debug, thiserror::Error)]
pub enum SetDeleteOnTerminationError {
    /// The instance cannot be changed.
    #[error(transparent)]
    Instance(#[from] LiveInstanceError),
    /// No volume is attached at a device.
    #[error("No device is currently mapped at {0}")]
    NoDevice(String),
    /// Another volume is attached at the device.
    #[error("The volume at {device} is {actual}, not {wanted}")]
    OtherVolume {
        /// The device.
        device: String,
        /// The volume there.
        actual: String,
        /// The volume the request named.
        wanted: String,
    },
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for SetDeleteOnTerminationError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::Instance(e) => return e.code(),
            Self::NoDevice(_) | Self::OtherVolume { .. } => "InvalidInstanceAttributeValue",
            Self::Db(_) => return None,
        })
    }
}

/// Checks the instance and the devices and records the new values.
pub fn set_delete_on_termination(
    conn: &Connection,
    cmd: &SetDeleteOnTermination,
) -> Result<(), SetDeleteOnTerminationError> {
    let id = &cmd.instance_id;
    live_instance(conn, id)?;
    let attached = volumes::attached_to(conn, id)?;
    for c in &cmd.changes {
        let v = attached
            .iter()
            .find(|v| v.device.as_deref() == Some(c.device.as_str()))
            .ok_or_else(|| SetDeleteOnTerminationError::NoDevice(c.device.clone()))?;
        if let Some(want) = &c.volume_id
            && *want != v.id
        {
            return Err(SetDeleteOnTerminationError::OtherVolume {
                device: c.device.clone(),
                actual: v.id.clone(),
                wanted: want.clone(),
            });
        }
        volumes::set_delete_on_termination(conn, &v.id, c.delete_on_termination)?;
    }
    Ok(())
}

impl Plane {
    /// ModifyInstanceAttribute's DeleteOnTermination.
    pub fn set_delete_on_termination(
        &self,
        cmd: SetDeleteOnTermination,
    ) -> Result<(), SetDeleteOnTerminationError> {
        self.transact(|tx| {
            set_delete_on_termination(tx, &cmd)?;
            Ok::<_, SetDeleteOnTerminationError>(((), Vec::new()))
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::instances::{self, InstanceRow, InstanceState};

    #[test]
    fn all_or_nothing_by_device() {
        let dir = tempfile::tempdir().unwrap();
        let db = state::Db::open(&dir.path().join("state.db")).unwrap();
        let mut conn = db.lock();
        instances::insert(
            &conn,
            &InstanceRow::example("i-22222222", InstanceState::Stopped),
        )
        .unwrap();
        let tx = conn.transaction().unwrap();
        let change = |device: &str, volume: Option<&str>| DeviceChange {
            device: device.into(),
            delete_on_termination: true,
            volume_id: volume.map(String::from),
        };
        let cmd = SetDeleteOnTermination {
            instance_id: "i-22222222".into(),
            changes: vec![change("/dev/sdf", None)],
        };
        let e = set_delete_on_termination(&tx, &cmd).unwrap_err();
        assert_eq!(
            (e.code(), e.to_string().as_str()),
            (
                Some("InvalidInstanceAttributeValue"),
                "No device is currently mapped at /dev/sdf"
            )
        );
        let e = set_delete_on_termination(
            &tx,
            &SetDeleteOnTermination {
                instance_id: "i-33333333".into(),
                changes: Vec::new(),
            },
        )
        .unwrap_err();
        assert_eq!(e.code(), Some("InvalidInstanceID.NotFound"));
    }
}
