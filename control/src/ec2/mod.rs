//! EC2's domain logic, one module per resource family.

pub mod addresses;
pub mod block_devices;
pub mod delete_on_termination;
pub mod images;
pub mod instances;
pub mod key_pairs;
pub mod launch_network;
pub mod launch_templates;
pub mod lookups;
pub mod metadata_options;
pub mod monitoring;
pub mod network_interfaces;
pub mod register_image;
pub mod security_groups;
pub mod snapshots;
pub mod subnets;
pub mod tags;
pub mod volumes;
pub mod vpcs;

#[cfg(test)]
mod ebs_tests;

/// A fresh state database in a temporary directory, for the commands' tests.
#[cfg(test)]
pub(crate) fn test_db() -> (tempfile::TempDir, state::Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = state::Db::open(&dir.path().join("state.db")).unwrap();
    (dir, db)
}
