//! VMM processes: spawning one per instance, finding it again after a restart, watching
//! for its exit, talking to its control socket, and reading why it ended.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use state::instances::InstanceRow;

/// Where an instance's files live: `<state>/instances/<id>/`.
#[derive(Debug, Clone)]
pub struct InstanceDir(pub PathBuf);

impl InstanceDir {
    /// The directory for `id` under the state dir.
    pub fn new(state_dir: &Path, id: &str) -> Self {
        Self(state_dir.join("instances").join(id))
    }
    /// The serial console log.
    pub fn console(&self) -> PathBuf {
        self.0.join("console.log")
    }
    /// The VMM's stderr.
    pub fn vmm_log(&self) -> PathBuf {
        self.0.join("vmm.log")
    }
    /// The control socket.
    pub fn api_sock(&self) -> PathBuf {
        self.0.join("api.sock")
    }
}

/// Errors spawning a VMM.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The instance directory or a log could not be made.
    #[error("cannot prepare {path}")]
    Files {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The process did not start.
    #[error("cannot start the vmm {vmm}")]
    Exec {
        /// The vmm binary.
        vmm: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// How one VMM is confined: its `--jail` and seccomp arguments, and the `cgroup.procs` files
/// the child writes itself into before it runs the vmm.
#[derive(Debug, Clone, Default)]
pub struct Confinement {
    /// Arguments for the vmm (`--jail ROOT,uid=N,gid=N`, `--no-seccomp`).
    pub args: Vec<String>,
    /// The instance's `cgroup.procs` files, one per hierarchy.
    pub cgroup_procs: Vec<std::ffi::CString>,
}

/// The instance's EC2-style UUID: 16 bytes of a SHA-256 of its id, the first three hex
/// digits replaced by `ec2`, as EC2 reports them (cloud-init identifies EC2 by this prefix).
pub fn instance_uuid(instance_id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(instance_id.as_bytes());
    let hex = hex::encode(&digest[..16]);
    format!(
        "ec2{}-{}-{}-{}-{}",
        &hex[3..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The vmm's `--smbios` value: EC2's identity, as Nitro and Xen instances report it (the
/// serial is the UUID; the asset tag the instance id).
pub fn smbios_identity(row: &InstanceRow) -> String {
    let uuid = instance_uuid(&row.id);
    format!(
        "manufacturer=Amazon EC2,product={},serial={uuid},uuid={uuid},asset-tag={}",
        row.instance_type, row.id
    )
}

/// Starts the VMM for `row` in its own session and cgroup, console and stderr under `dir`,
/// with `extra_args` (such as `--disk` values) and the confinement's arguments appended to
/// its command line.
pub fn spawn(
    vmm: &Path,
    dir: &InstanceDir,
    row: &InstanceRow,
    extra_args: &[String],
    netns: Option<&std::fs::File>,
    restore: Option<&Path>,
    confinement: &Confinement,
) -> Result<Child, SpawnError> {
    let files = |path: &Path| {
        let p = path.display().to_string();
        move |source| SpawnError::Files { path: p, source }
    };
    std::fs::create_dir_all(&dir.0).map_err(files(&dir.0))?;
    let log_path = dir.vmm_log();
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(files(&log_path))?;
    writeln!(
        log,
        "agent: starting vmm for {} at {}",
        row.id,
        state::now_iso()
    )
    .map_err(files(&log_path))?;
    let mut cmd = Command::new(vmm);
    match restore {
        // Resuming a hibernated instance: the saved state replaces kernel and command line.
        Some(file) => {
            cmd.arg("--restore").arg(file);
        }
        None => {
            cmd.arg("--kernel").arg(&row.kernel);
            if let Some(initrd) = &row.initrd {
                cmd.arg("--initrd").arg(initrd);
            }
            cmd.arg("--cmdline")
                .arg(&row.boot_args)
                .arg("--entry")
                .arg(&row.entry);
        }
    }
    cmd.arg("--vcpus")
        .arg(row.vcpus.to_string())
        .arg("--mem-mib")
        .arg(row.memory_mib.to_string())
        .arg("--serial-log")
        .arg(dir.console())
        .arg("--api-sock")
        .arg(dir.api_sock())
        .arg("--smbios")
        .arg(smbios_identity(row))
        .args(extra_args)
        .args(&confinement.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let ns_fd = netns.map(std::os::fd::AsRawFd::as_raw_fd);
    let cgroup_procs = confinement.cgroup_procs.clone();
    // SAFETY: the closure runs in the forked child before exec and only calls setsid(2),
    // setns(2) on a descriptor the parent keeps open across the spawn, and open/write/close
    // on paths prepared before the fork; all are async-signal-safe and allocate nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(fd) = ns_fd
                && libc::setns(fd, libc::CLONE_NEWNET) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            super::cgroups::join_in_child(&cgroup_procs)
        });
    }
    cmd.spawn().map_err(|source| SpawnError::Exec {
        vmm: vmm.display().to_string(),
        source,
    })
}

/// The start time of `pid` (field 22 of `/proc/PID/stat`, in clock ticks since boot).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: skip past it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let state = rest.split_whitespace().next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process `pid` that started at `start` still runs (not a reused pid).
pub fn alive(pid: i32, start: u64) -> bool {
    start_time(pid) == Some(start)
}

/// Waits until `pid` has exited (it need not be our child), through a pidfd.
pub async fn wait_exit(pid: i32) {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return; // already gone
    }
    // SAFETY: `fd` was just returned by pidfd_open and nothing else owns it.
    let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    // SAFETY: the AsyncFd owns `owned`, an open pidfd that stays open (and is the same
    // descriptor) until the AsyncFd is dropped.
    let registered =
        unsafe { AsyncFd::register_with_interest(owned, tokio::io::Interest::READABLE) };
    match registered {
        Ok(afd) => {
            let _ = afd.readable().await;
        }
        Err(_) => {
            while start_time(pid).is_some() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A live VMM serving `api_sock` (found by its command line), with its start time.
pub fn find_by_socket(api_sock: &Path) -> Option<(i32, u64)> {
    let wanted = api_sock.as_os_str().as_encoded_bytes();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let mut args = cmdline.split(|b| *b == 0);
        while let Some(arg) = args.next() {
            if arg == b"--api-sock" && args.next() == Some(wanted) {
                if let Some(start) = start_time(pid) {
                    return Some((pid, start));
                }
                break;
            }
        }
    }
    None
}

/// Sends SIGKILL to the VMM's whole process group.
pub fn kill_group(pid: i32) {
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

/// Errors on the control socket.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Connecting, writing or reading failed.
    #[error("control socket {path}")]
    Io {
        /// The socket.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No answer in time.
    #[error("control socket {path} did not answer in time")]
    Timeout {
        /// The socket.
        path: String,
    },
    /// The VMM answered with an error.
    #[error("vmm refused the request: {0}")]
    Refused(String),
}

/// Sends one action to the control socket and returns the answer.
pub async fn control(sock: &Path, action: &str) -> Result<serde_json::Value, ControlError> {
    request(
        sock,
        serde_json::json!({ "action": action }),
        Duration::from_secs(2),
    )
    .await
}

/// Sends one request (a JSON object with its `action`) and waits up to `timeout` for the
/// answer.
pub async fn request(
    sock: &Path,
    request: serde_json::Value,
    timeout: Duration,
) -> Result<serde_json::Value, ControlError> {
    let path = sock.display().to_string();
    let io = |source| ControlError::Io {
        path: path.clone(),
        source,
    };
    let exchange = async {
        let mut stream = UnixStream::connect(sock).await.map_err(io)?;
        let line = format!("{request}\n");
        stream.write_all(line.as_bytes()).await.map_err(io)?;
        let mut answer = String::new();
        BufReader::new(stream)
            .read_line(&mut answer)
            .await
            .map_err(io)?;
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
        if v["ok"] == serde_json::Value::Bool(true) {
            Ok(v)
        } else {
            Err(ControlError::Refused(
                v["error"].as_str().unwrap_or(&answer).to_string(),
            ))
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or(Err(ControlError::Timeout { path: path.clone() }))
}

/// Why a VMM ended, from the last line of its stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// `guest powered off (status N)`.
    PoweredOff(i64),
    /// `guest requested a reset`.
    Reset,
    /// `stopped through the control API`.
    StoppedByApi,
    /// `guest failure: ...` or `vmm failure: ...`, or any other exit line.
    Crashed(String),
    /// `vmm: error: ...`: the VMM refused its input or failed to boot (exit code 1).
    BootFailed(String),
    /// No exit line: the VMM was killed or died abruptly.
    Vanished,
}

impl ExitReason {
    /// Parses the VMM's stderr log (only the last line counts).
    pub fn from_log(log: &str) -> Self {
        let Some(last) = log.lines().rev().find(|l| !l.trim().is_empty()) else {
            return Self::Vanished;
        };
        if let Some(error) = last.strip_prefix("vmm: error: ") {
            return Self::BootFailed(error.trim().to_string());
        }
        let Some(reason) = last.strip_prefix("vmm: exit: ") else {
            return Self::Vanished;
        };
        let reason = reason.trim();
        if let Some(status) = reason
            .strip_prefix("guest powered off (status ")
            .and_then(|s| s.strip_suffix(')'))
        {
            return Self::PoweredOff(status.parse().unwrap_or(-1));
        }
        match reason {
            "guest requested a reset" => Self::Reset,
            "stopped through the control API" => Self::StoppedByApi,
            other => Self::Crashed(other.to_string()),
        }
    }

    /// Reads and parses `vmm.log`.
    pub fn from_file(path: &Path) -> Self {
        Self::from_log(&std::fs::read_to_string(path).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_lines() {
        assert_eq!(
            ExitReason::from_log("x\nvmm: exit: guest powered off (status 3)\n"),
            ExitReason::PoweredOff(3)
        );
        assert_eq!(
            ExitReason::from_log("vmm: exit: guest requested a reset"),
            ExitReason::Reset
        );
        assert_eq!(
            ExitReason::from_log("vmm: exit: guest failure: triple fault at 0x1"),
            ExitReason::Crashed("guest failure: triple fault at 0x1".into())
        );
        assert_eq!(
            ExitReason::from_log("vmm: exit: guest powered off (status 0)\nagent: starting vmm\n"),
            ExitReason::Vanished
        );
        assert_eq!(ExitReason::from_log(""), ExitReason::Vanished);
        assert_eq!(
            ExitReason::from_log("vmm: error: memory too large"),
            ExitReason::BootFailed("memory too large".into())
        );
    }

    #[test]
    fn smbios_identity_is_ec2s_and_stable() {
        use state::instances::{InstanceRow, InstanceState};
        let row = InstanceRow::example("i-0123456789abcdef0", InstanceState::Pending);
        let uuid = instance_uuid(&row.id);
        assert_eq!(uuid, instance_uuid("i-0123456789abcdef0"), "deterministic");
        assert_ne!(uuid, instance_uuid("i-0123456789abcdef1"));
        assert!(uuid.starts_with("ec2"), "{uuid}");
        let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(uuid.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert_eq!(
            smbios_identity(&row),
            format!(
                "manufacturer=Amazon EC2,product=t2.nano,serial={uuid},uuid={uuid},\
                 asset-tag=i-0123456789abcdef0"
            )
        );
    }

    #[test]
    fn own_start_time_is_found() {
        let me = std::process::id() as i32;
        let t = start_time(me).expect("our own stat is readable");
        assert!(alive(me, t));
        assert!(!alive(me, t + 1));
    }
}
