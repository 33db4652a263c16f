//! What a running instance has used, read from outside the guest: its vCPU threads' CPU time
//! (`/proc/<pid>/task/<tid>/schedstat` of the vmm's `vcpuN` threads) and its devices'
//! counters (the vmm's `status` on its control socket), and the system checks' raw facts
//! (the vmm alive and answering, the host's resources).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::Compute;
use super::supervisor::{self, ControlError};
use state::instances::InstanceRow;

/// One virtio device's counters since the vmm started, as its `status` gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct DeviceCounters {
    /// `block <serial>` (the volume id) or `net <tap> <mac>`.
    pub device: String,
    /// Reads, or packets to the guest.
    pub ops_in: u64,
    /// Writes, or packets from the guest.
    pub ops_out: u64,
    /// Microseconds spent serving requests (block).
    pub busy_us: u64,
    /// Bytes to the guest (read, received).
    pub bytes_in: u64,
    /// Bytes from the guest (written, sent).
    pub bytes_out: u64,
    /// Failed or malformed requests.
    pub errors: u64,
}

impl DeviceCounters {
    /// The volume (or instance-store) id of a block device.
    pub fn block_id(&self) -> Option<&str> {
        self.device.strip_prefix("block ")
    }

    /// Whether this is a network device.
    pub fn is_net(&self) -> bool {
        self.device.starts_with("net ")
    }
}

/// One reading of a running instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// CPU time of its vCPU threads so far, in nanoseconds (`None`: unreadable).
    pub vcpu_ns: Option<u64>,
    /// Its devices' counters.
    pub devices: Vec<DeviceCounters>,
    /// How long its vmm has run, in milliseconds (the counters count from its start).
    pub uptime_ms: u64,
}

/// Why an instance could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// Its vmm process is gone.
    #[error("the instance's vmm is not running")]
    NotRunning,
    /// Its vmm did not answer on its control socket.
    #[error("the instance's vmm does not answer")]
    NoAnswer(#[from] ControlError),
    /// Its answer had no device counters.
    #[error("the vmm's status has no device counters")]
    Malformed(#[source] serde_json::Error),
}

/// How long a vmm has to answer its `status`.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

impl Compute {
    /// Reads instance `row`'s counters: an error when its vmm is gone or does not answer (the
    /// system status check's facts).
    pub async fn usage(&self, row: &InstanceRow) -> Result<Usage, UsageError> {
        let (Some(pid), Some(start)) = (row.pid, row.pid_start) else {
            return Err(UsageError::NotRunning);
        };
        if !supervisor::alive(pid, start) {
            return Err(UsageError::NotRunning);
        }
        let answer = supervisor::request(
            &self.dir(&row.id).api_sock(),
            serde_json::json!({ "action": "status" }),
            STATUS_TIMEOUT,
        )
        .await?;
        let devices = Vec::<DeviceCounters>::deserialize(&answer["status"]["devices"])
            .map_err(UsageError::Malformed)?;
        Ok(Usage {
            vcpu_ns: vcpu_time_ns(Path::new("/proc"), pid),
            devices,
            uptime_ms: answer["status"]["uptime_ms"].as_u64().unwrap_or(0),
        })
    }

    /// Whether the host has what instances need to keep running: room for their files in the
    /// state directory (at least [`MIN_FREE_BYTES`]).
    pub fn host_resources_ok(&self) -> bool {
        free_bytes(&self.config.state_dir).is_none_or(|free| free >= MIN_FREE_BYTES)
    }
}

/// The least free space in the state directory's file system for the system check to pass.
pub const MIN_FREE_BYTES: u64 = 64 << 20;

/// Free bytes (for unprivileged users) in the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: an all-zero statvfs is a valid buffer for the kernel to fill.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a valid statvfs for the call.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail.saturating_mul(st.f_frsize))
}

/// The CPU time of process `pid`'s `vcpuN` threads, in nanoseconds: the first field of each
/// thread's `schedstat` (time on a CPU), under the `proc` mount `proc`.
pub fn vcpu_time_ns(proc: &Path, pid: i32) -> Option<u64> {
    let tasks = proc.join(pid.to_string()).join("task");
    let mut total = 0u64;
    let mut found = false;
    for entry in std::fs::read_dir(&tasks).ok()?.flatten() {
        let dir = entry.path();
        let is_vcpu = std::fs::read_to_string(dir.join("comm"))
            .is_ok_and(|c| c.trim_end().starts_with("vcpu"));
        if !is_vcpu {
            continue;
        }
        let Some(ns) = std::fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        else {
            continue;
        };
        total = total.saturating_add(ns);
        found = true;
    }
    found.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread(proc: &Path, pid: i32, tid: i32, comm: &str, schedstat: &str) {
        let dir = proc
            .join(pid.to_string())
            .join("task")
            .join(tid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("comm"), format!("{comm}\n")).unwrap();
        std::fs::write(dir.join("schedstat"), schedstat).unwrap();
    }

    #[test]
    fn only_the_vcpu_threads_count() {
        let proc = tempfile::tempdir().unwrap();
        thread(proc.path(), 7, 7, "vmm", "900000000 1 2\n");
        thread(proc.path(), 7, 8, "vcpu0", "1500 3 4\n");
        thread(proc.path(), 7, 9, "vcpu1", "2500 3 4\n");
        thread(proc.path(), 7, 10, "devices", "777777 3 4\n");
        assert_eq!(vcpu_time_ns(proc.path(), 7), Some(4000));
    }

    #[test]
    fn no_vcpu_threads_or_no_process_reads_as_unknown() {
        let proc = tempfile::tempdir().unwrap();
        thread(proc.path(), 7, 7, "vmm", "10 1 2\n");
        thread(proc.path(), 7, 8, "vcpu0", "garbage\n");
        assert_eq!(vcpu_time_ns(proc.path(), 7), None);
        assert_eq!(vcpu_time_ns(proc.path(), 8), None);
    }

    #[test]
    fn this_process_has_no_vcpus_but_the_real_proc_is_read() {
        assert_eq!(
            vcpu_time_ns(Path::new("/proc"), std::process::id() as i32),
            None
        );
    }

    #[test]
    fn device_counters_come_from_the_status_json() {
        let status = serde_json::json!([
            {"device": "block vol-0123", "requests": 5, "ops_in": 3, "ops_out": 2,
             "busy_us": 40, "bytes_in": 12288, "bytes_out": 8192, "errors": 0, "throttled_ms": 0},
            {"device": "net kec2t1 02:00:00:00:00:04", "ops_in": 9, "bytes_in": 900}
        ]);
        let d = Vec::<DeviceCounters>::deserialize(&status).unwrap();
        assert_eq!(d[0].block_id(), Some("vol-0123"));
        assert_eq!((d[0].ops_in, d[0].bytes_out, d[0].busy_us), (3, 8192, 40));
        assert!(d[1].is_net() && d[1].block_id().is_none());
        assert_eq!((d[1].ops_in, d[1].bytes_in, d[1].ops_out), (9, 900, 0));
    }

    #[test]
    fn the_state_dirs_file_system_has_free_space() {
        assert!(free_bytes(Path::new("/")).is_some());
        assert!(free_bytes(Path::new("/no/such/dir")).is_none());
    }
}
