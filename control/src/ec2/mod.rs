//! EC2's domain logic, one module per resource family.

pub mod addresses;
pub mod instances;
pub mod key_pairs;
pub mod launch_network;
pub mod lookups;
pub mod metadata_options;
pub mod network_interfaces;
pub mod security_groups;
pub mod subnets;
pub mod tags;
pub mod vpcs;

/// A fresh state database in a temporary directory, for the commands' tests.
#[cfg(test)]
pub(crate) fn test_db() -> (tempfile::TempDir, state::Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = state::Db::open(&dir.path().join("state.db")).unwrap();
    (dir, db)
}
