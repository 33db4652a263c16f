//! Persistent state: the SQLite database and one repository module per resource.

pub mod autoscaling;
pub mod db;
pub mod effects;
pub mod elbv2;
pub mod enis;
pub mod hibernation;
pub mod images;
pub mod instances;
pub mod keypairs;
pub mod launch_templates;
pub mod metrics;
pub mod migrations;
pub mod security_groups;
pub mod snapshots;
pub mod sns;
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

/// Whether `s` is an id [`new_id`] could make with `prefix` (EC2 also accepts the older
/// 8-digit form).
pub fn well_formed_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|h| {
            (h.len() == 8 || h.len() == 17) && h.bytes().all(|b| b.is_ascii_hexdigit())
        })
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
