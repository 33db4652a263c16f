//! Where this host's instances are: its one region and availability zone.

/// The only region.
pub const REGION: &str = "local-1";
/// The only availability zone.
pub const AVAILABILITY_ZONE: &str = "local-1a";
/// The zone id of the one zone.
pub const ZONE_ID: &str = "local1-az1";
