//! ELB's writes: a command's transaction with the effects it records, applied in the
//! background after the commit.

use super::ElbError;
use crate::Plane;
use crate::effects::Effect;

impl Plane {
    /// Runs an ELB command in one transaction with the effects it records, then applies the
    /// effects in the background.
    pub fn elb_write<T>(
        &self,
        body: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(T, Vec<Effect>), ElbError>,
    ) -> Result<T, ElbError> {
        let committed = self.transact(body)?;
        self.apply_soon(committed.effects);
        Ok(committed.value)
    }

    /// Applies recorded effects on the runtime, without waiting; what fails stays in the
    /// journal (the supervisor and the next start take it up).
    pub fn apply_soon(&self, effects: Vec<crate::effects::Recorded>) {
        if effects.is_empty() {
            return;
        }
        let Some(plane) = self.myself() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            if let Err(e) = plane.apply(effects).await {
                tracing::warn!(error = %host::error_chain(&e), "load balancer change not applied yet");
            }
        });
    }

    fn myself(&self) -> Option<std::sync::Arc<Plane>> {
        self.me.upgrade()
    }
}
