//! MonitorInstances and UnmonitorInstances: an instance's detailed (1-minute) or basic
//! (5-minute) monitoring, which sets how often the agent's sampler publishes its `AWS/EC2`
//! metrics.

use crate::{Plane, Refusal};
use state::instances::{self, InstanceState};

/// Why monitoring was not changed (nothing is, for any instance, when one is refused).
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// Some instances do not exist.
    #[error("The instance ID{} '{}' do{} not exist", if .0.len() > 1 { "s" } else { "" }, .0.join("', '"), if .0.len() > 1 { "" } else { "es" })]
    NotFound(Vec<String>),
    /// A terminated instance cannot be monitored.
    #[error("The instance '{0}' is not in a state from which it can be monitored.")]
    Terminated(String),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for MonitorError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::NotFound(_) => Some("InvalidInstanceID.NotFound"),
            Self::Terminated(_) => Some("IncorrectInstanceState"),
            Self::Db(_) => None,
        }
    }
}

/// An instance's monitoring as MonitorInstances answers it: `pending` while detailed
/// monitoring is being turned on, `disabling` while it is turned off (EC2's words; the
/// instance's own description shows `enabled` or `disabled` at once here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitoringChange {
    /// Turning on.
    Pending,
    /// Turning off.
    Disabling,
}

impl Plane {
    /// Turns detailed monitoring on (`detailed`) or off for `ids`, all or none.
    pub fn set_monitoring(
        &self,
        ids: &[String],
        detailed: bool,
    ) -> Result<Vec<(String, MonitoringChange)>, MonitorError> {
        set_monitoring(&mut self.db.lock(), ids, detailed)
    }
}

/// [`Plane::set_monitoring`] on `conn`, in one transaction.
fn set_monitoring(
    conn: &mut rusqlite::Connection,
    ids: &[String],
    detailed: bool,
) -> Result<Vec<(String, MonitoringChange)>, MonitorError> {
    let tx = conn.transaction()?;
    let mut missing = Vec::new();
    for id in ids {
        match instances::get(&tx, id)? {
            None => missing.push(id.clone()),
            Some(r) if r.state == InstanceState::Terminated => {
                return Err(MonitorError::Terminated(r.id));
            }
            Some(_) => {}
        }
    }
    if !missing.is_empty() {
        return Err(MonitorError::NotFound(missing));
    }
    for id in ids {
        instances::set_detailed_monitoring(&tx, id, detailed)?;
    }
    tx.commit()?;
    let change = if detailed {
        MonitoringChange::Pending
    } else {
        MonitoringChange::Disabling
    };
    Ok(ids.iter().map(|id| (id.clone(), change)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::instances::InstanceRow;

    fn with(db: &state::Db, rows: &[InstanceRow]) {
        for r in rows {
            instances::insert(&db.lock(), r).unwrap();
        }
    }

    fn detailed(db: &state::Db, id: &str) -> bool {
        instances::get(&db.lock(), id)
            .unwrap()
            .unwrap()
            .detailed_monitoring
    }

    #[test]
    fn all_or_none() {
        let (_dir, db) = crate::ec2::test_db();
        with(
            &db,
            &[
                InstanceRow::example("i-1", InstanceState::Running),
                InstanceRow::example("i-2", InstanceState::Stopped),
                InstanceRow::example("i-3", InstanceState::Terminated),
            ],
        );
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let e = set_monitoring(&mut db.lock(), &ids(&["i-1", "i-9"]), true).unwrap_err();
        assert_eq!(e.code(), Some("InvalidInstanceID.NotFound"));
        let e = set_monitoring(&mut db.lock(), &ids(&["i-1", "i-3"]), true).unwrap_err();
        assert_eq!(e.code(), Some("IncorrectInstanceState"));
        assert!(!detailed(&db, "i-1"));
        let done = set_monitoring(&mut db.lock(), &ids(&["i-1", "i-2"]), true).unwrap();
        assert_eq!(done[1], ("i-2".to_string(), MonitoringChange::Pending));
        assert!(detailed(&db, "i-1") && detailed(&db, "i-2"));
        set_monitoring(&mut db.lock(), &ids(&["i-2"]), false).unwrap();
        assert!(!detailed(&db, "i-2"));
    }
}
