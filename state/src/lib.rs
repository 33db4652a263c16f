//! Persistent state: the SQLite database and one repository module per resource.

pub mod db;
pub mod effects;
pub mod enis;
pub mod hibernation;
pub mod images;
pub mod instances;
pub mod keypairs;
pub mod migrations;
pub mod security_groups;
pub mod snapshots;
pub mod tags;
pub mod volumes;
pub mod vpcs;

pub use db::Db;

/// Makes an EC2-style id: `prefix-` and 17 random hex digits.
pub fn new_id(prefix: &str) -> String {
    use rand::Rng;
    let n: u128 = rand::thread_rng().r#gen();
    format!("{prefix}-{:017x}", n & ((1u128 << 68) - 1))
}

/// The current time as EC2 prints it (`2026-01-02T03:04:05.000Z`).
pub fn now_iso() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}
