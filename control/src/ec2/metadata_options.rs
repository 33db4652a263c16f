//! ModifyInstanceMetadataOptions: `HttpTokens`, `HttpEndpoint` and `HttpPutResponseHopLimit`
//! of an instance, applied at once (disabling the endpoint removes the instance's metadata
//! redirect from the firewall).

use rusqlite::Connection;

use state::enis::{self, MetadataOptionsRow};

use super::lookups::{self, LiveInstanceError};
use crate::effects::{ApplyError, Effect};
use crate::{Plane, Refusal};

/// Change an instance's metadata options; what is not given stays.
#[derive(Debug, Clone, Default)]
pub struct ModifyMetadataOptions {
    /// The instance.
    pub instance_id: String,
    /// `optional` or `required`.
    pub http_tokens: Option<String>,
    /// `enabled` or `disabled`.
    pub http_endpoint: Option<String>,
    /// 1 to 64.
    pub hop_limit: Option<i32>,
}

/// ModifyInstanceMetadataOptions refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ModifyMetadataOptionsError {
    /// The instance cannot be changed.
    #[error(transparent)]
    Instance(#[from] LiveInstanceError),
    /// The hop limit is out of range.
    #[error(
        "Value for parameter HttpPutResponseHopLimit is invalid: '{0}' is not an integer from 1 \
         to 64"
    )]
    HopLimit(i32),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
    /// The firewall could not be brought in line.
    #[error("the instance's metadata redirect could not be changed")]
    Apply(#[from] ApplyError),
}

impl Refusal for ModifyMetadataOptionsError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Instance(e) => e.code(),
            Self::HopLimit(_) => Some("InvalidParameterValue"),
            Self::Db(_) | Self::Apply(_) => None,
        }
    }
}

/// `base` with what `change` gives; a hop limit out of 1 to 64 is given back as the error.
pub fn changed(
    base: MetadataOptionsRow,
    change: &ModifyMetadataOptions,
) -> Result<MetadataOptionsRow, i32> {
    let mut o = base;
    if let Some(v) = &change.http_tokens {
        o.http_tokens.clone_from(v);
    }
    if let Some(v) = &change.http_endpoint {
        o.http_endpoint.clone_from(v);
    }
    if let Some(v) = change.hop_limit {
        o.hop_limit = u8::try_from(v)
            .ok()
            .filter(|h| (1..=64).contains(h))
            .ok_or(v)?;
    }
    Ok(o)
}

/// Records the instance's new options; the firewall is to be rebuilt.
pub fn modify(
    conn: &Connection,
    cmd: &ModifyMetadataOptions,
) -> Result<(MetadataOptionsRow, Vec<Effect>), ModifyMetadataOptionsError> {
    let row = lookups::live_instance(conn, &cmd.instance_id)?;
    let o = changed(enis::metadata_options(conn, &row.id)?, cmd)
        .map_err(ModifyMetadataOptionsError::HopLimit)?;
    enis::set_metadata_options(conn, &row.id, &o)?;
    Ok((o, vec![Effect::SyncFirewall]))
}

impl Plane {
    /// ModifyInstanceMetadataOptions; gives the options now in force.
    pub async fn modify_metadata_options(
        &self,
        cmd: ModifyMetadataOptions,
    ) -> Result<MetadataOptionsRow, ModifyMetadataOptionsError> {
        let committed = self.transact(|tx| modify(tx, &cmd))?;
        self.apply(committed.effects).await?;
        Ok(committed.value)
    }
}
