//! A private address as requests give it (CreateNetworkInterface). RunInstances' network
//! members are launch data (`launch_templates::data`), checked by the control plane.

use std::net::Ipv4Addr;

use super::errors::ApiError;

/// A private address given as `field`, if given.
pub fn ipv4(v: Option<&str>, field: &str) -> Result<Option<Ipv4Addr>, ApiError> {
    v.map(|v| {
        v.parse().map_err(|_| {
            ApiError::new(
                "InvalidParameterValue",
                format!("Value ({v}) for parameter {field} is invalid: not an IPv4 address."),
            )
        })
    })
    .transpose()
}
