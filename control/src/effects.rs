//! Effects: what the host side does for a change of state, recorded in the change's own
//! transaction (`state::effects`) and struck once done. Every effect can be applied again
//! with the same result, so one that a crash interrupted is simply applied at the next
//! start.

use rusqlite::Connection;

use crate::Plane;

/// One thing the host side must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Rebuild every firewall rule from the state: security groups, public and Elastic IPs,
    /// metadata redirects.
    SyncFirewall,
    /// Make every VPC's bridge carry its subnets' router addresses (and remove the bridges of
    /// VPCs that are gone), then rebuild the firewall.
    SyncBridges,
    /// Grow a volume's file to its recorded size.
    GrowVolumeFile {
        /// The volume.
        volume: String,
        /// Its new size.
        size_gib: u64,
    },
    /// Remove a volume's file, then its row (which the change left `deleting`).
    DeleteVolume {
        /// The volume.
        volume: String,
    },
    /// Make the file of an empty volume the change recorded `creating`, then mark it
    /// `available`.
    CreateVolumeFile {
        /// The volume.
        volume: String,
    },
    /// Remove the chunk files a deleted snapshot used that no snapshot references.
    FreeChunks {
        /// The deleted snapshot (for the log).
        snapshot: String,
        /// The chunks whose last reference it held.
        hashes: Vec<String>,
    },
    /// Make a load balancer's HAProxy run what the state describes (started or reloaded
    /// without dropping connections), or stop it when the load balancer is gone.
    SyncLoadBalancer {
        /// The load balancer's ARN.
        arn: String,
    },
}

/// An effect and its place in the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The journal's `seq`.
    pub seq: i64,
    /// The effect.
    pub effect: Effect,
}

/// Applying an effect failed; it stays in the journal for the next start.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The network could not be brought in line.
    #[error("cannot apply {0:?} to the network")]
    Network(Effect, #[source] host::network::NetworkError),
    /// A volume file could not be changed.
    #[error("cannot apply {0:?} to the volume files")]
    Storage(Effect, #[source] host::ebs::StorageError),
    /// A load balancer's HAProxy could not be brought in line.
    #[error("cannot apply {0:?} to the load balancer")]
    LoadBalancer(Effect, #[source] crate::elbv2::ElbSyncError),
    /// The journal could not be read or written.
    #[error("the effects journal failed")]
    Db(#[from] rusqlite::Error),
}

impl Effect {
    /// The journal's three strings for it.
    fn to_row(&self) -> (&'static str, String, String) {
        match self {
            Self::SyncFirewall => ("sync-firewall", String::new(), String::new()),
            Self::SyncBridges => ("sync-bridges", String::new(), String::new()),
            Self::GrowVolumeFile { volume, size_gib } => {
                ("grow-volume-file", volume.clone(), size_gib.to_string())
            }
            Self::DeleteVolume { volume } => ("delete-volume", volume.clone(), String::new()),
            Self::CreateVolumeFile { volume } => {
                ("create-volume-file", volume.clone(), String::new())
            }
            Self::FreeChunks { snapshot, hashes } => {
                ("free-chunks", snapshot.clone(), hashes.join(","))
            }
            Self::SyncLoadBalancer { arn } => ("sync-load-balancer", arn.clone(), String::new()),
        }
    }

    /// The effect a journal row holds, or `None` for a kind this agent does not know (a
    /// newer agent's), which is left in the journal.
    pub(crate) fn from_row(row: &state::effects::EffectRow) -> Option<Self> {
        Some(match row.kind.as_str() {
            "sync-firewall" => Self::SyncFirewall,
            "sync-bridges" => Self::SyncBridges,
            "grow-volume-file" => Self::GrowVolumeFile {
                volume: row.target.clone(),
                size_gib: row.detail.parse().ok()?,
            },
            "delete-volume" => Self::DeleteVolume {
                volume: row.target.clone(),
            },
            "create-volume-file" => Self::CreateVolumeFile {
                volume: row.target.clone(),
            },
            "sync-load-balancer" => Self::SyncLoadBalancer {
                arn: row.target.clone(),
            },
            "free-chunks" => Self::FreeChunks {
                snapshot: row.target.clone(),
                hashes: row
                    .detail
                    .split(',')
                    .filter(|h| !h.is_empty())
                    .map(String::from)
                    .collect(),
            },
            _ => return None,
        })
    }
}

/// Records `effects` in the caller's transaction.
pub(crate) fn record(conn: &Connection, effects: Vec<Effect>) -> rusqlite::Result<Vec<Recorded>> {
    effects
        .into_iter()
        .map(|effect| {
            let (kind, target, detail) = effect.to_row();
            let seq = state::effects::record(conn, kind, &target, &detail)?;
            Ok(Recorded { seq, effect })
        })
        .collect()
}

impl Plane {
    /// Applies recorded effects in order, striking each from the journal once done; stops
    /// at the first that fails (it and the rest stay for the next start). An effect another
    /// caller applied meanwhile is skipped.
    pub async fn apply(&self, effects: Vec<Recorded>) -> Result<(), ApplyError> {
        for r in effects {
            if !state::effects::is_pending(&self.db.lock(), r.seq)? {
                continue;
            }
            self.apply_one(&r.effect).await?;
            state::effects::applied(&self.db.lock(), r.seq)?;
        }
        Ok(())
    }

    /// At start: applies every effect left in the journal; returns how many there were.
    pub async fn replay(&self) -> Result<usize, ApplyError> {
        let rows = state::effects::pending(&self.db.lock())?;
        let mut todo = Vec::new();
        for row in &rows {
            match Effect::from_row(row) {
                Some(effect) => todo.push(Recorded {
                    seq: row.seq,
                    effect,
                }),
                None => tracing::warn!(
                    seq = row.seq,
                    kind = %row.kind,
                    "an effect of a kind this agent does not know is left in the journal"
                ),
            }
        }
        let n = todo.len();
        if n > 0 {
            tracing::info!(
                effects = n,
                "applying the effects an earlier agent recorded"
            );
        }
        self.apply(todo).await?;
        Ok(n)
    }

    async fn apply_one(&self, effect: &Effect) -> Result<(), ApplyError> {
        let network = |e| ApplyError::Network(effect.clone(), e);
        let storage = |e| ApplyError::Storage(effect.clone(), e);
        match effect {
            Effect::SyncFirewall => self.network.sync().await.map_err(network),
            Effect::SyncBridges => {
                let net = self.network.clone();
                tokio::task::block_in_place(|| net.ensure_bridges()).map_err(network)?;
                self.network.sync().await.map_err(network)
            }
            Effect::GrowVolumeFile { volume, size_gib } => tokio::task::block_in_place(|| {
                self.storage.grow_volume(volume, *size_gib).map_err(storage)
            }),
            Effect::DeleteVolume { volume } => {
                tokio::task::block_in_place(|| self.storage.remove_volume_file(volume))
                    .map_err(storage)?;
                state::volumes::delete(&self.db.lock(), volume)?;
                tracing::info!(%volume, "volume deleted");
                Ok(())
            }
            Effect::CreateVolumeFile { volume } => {
                tokio::task::block_in_place(|| self.storage.make_empty_volume(volume))
                    .map_err(storage)
            }
            Effect::SyncLoadBalancer { arn } => {
                crate::elbv2::blocking(|| self.sync_load_balancer(arn))
                    .map_err(|e| ApplyError::LoadBalancer(effect.clone(), e))
            }
            Effect::FreeChunks { snapshot, hashes } => {
                let freed = tokio::task::block_in_place(|| self.storage.free_chunks(hashes))
                    .map_err(storage)?;
                tracing::info!(%snapshot, freed, "snapshot chunks freed");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_effect_survives_the_journal() {
        let effects = [
            Effect::SyncFirewall,
            Effect::SyncBridges,
            Effect::GrowVolumeFile {
                volume: "vol-1".into(),
                size_gib: 20,
            },
            Effect::DeleteVolume {
                volume: "vol-2".into(),
            },
            Effect::CreateVolumeFile {
                volume: "vol-3".into(),
            },
            Effect::FreeChunks {
                snapshot: "snap-1".into(),
                hashes: vec!["ab12".into(), "cd34".into()],
            },
            Effect::FreeChunks {
                snapshot: "snap-2".into(),
                hashes: Vec::new(),
            },
            Effect::SyncLoadBalancer {
                arn: "arn:aws:elasticloadbalancing:local-1:1:loadbalancer/app/a/b".into(),
            },
        ];
        for effect in effects {
            let (kind, target, detail) = effect.to_row();
            let row = state::effects::EffectRow {
                seq: 1,
                kind: kind.into(),
                target,
                detail,
                recorded: String::new(),
            };
            assert_eq!(Effect::from_row(&row), Some(effect));
        }
    }

    #[test]
    fn a_kind_from_a_newer_agent_is_not_guessed() {
        let row = state::effects::EffectRow {
            seq: 1,
            kind: "teleport".into(),
            target: String::new(),
            detail: String::new(),
            recorded: String::new(),
        };
        assert_eq!(Effect::from_row(&row), None);
    }
}
