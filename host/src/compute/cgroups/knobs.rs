//! The interface files of an instance's cgroup, per version: writing the limits, enabling
//! v2 controllers, and reading the limits and counters back.

use std::path::{Path, PathBuf};

use super::{Cgroups, CreateError, Limits, NameError, Version};

/// The controllers enabled for the children of v2's root and parent cgroups.
const SUBTREE: [&str; 3] = ["cpu", "memory", "pids"];

/// v1 memory limits at or above this are the kernel's "unlimited" (it reports the largest
/// page-aligned counter, about 2^63); no host has an exbibyte of memory.
const V1_UNLIMITED_BYTES: u64 = 1 << 60;

/// Errors reading an instance's cgroup limits.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The instance id cannot name a cgroup.
    #[error("cannot read the cgroup")]
    Name(#[source] NameError),
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file holds something other than the value expected.
    #[error("{path} holds {text:?}, not a limit")]
    Parse {
        /// The file.
        path: String,
        /// Its contents.
        text: String,
    },
}

/// Enables `+cpu +memory +pids` for the children of the cgroup at `dir`, unless its
/// `cgroup.subtree_control` already lists them all.
pub(super) fn enable_controllers(dir: &Path) -> Result<(), CreateError> {
    let path = dir.join("cgroup.subtree_control");
    let enabled = std::fs::read_to_string(&path).unwrap_or_default();
    if SUBTREE
        .iter()
        .all(|c| enabled.split_whitespace().any(|e| e == *c))
    {
        return Ok(());
    }
    let line: Vec<String> = SUBTREE.iter().map(|c| format!("+{c}")).collect();
    write(&path, &line.join(" "))
}

/// Writes `limits` into instance `id`'s cgroup.
pub(super) fn write_limits(cg: &Cgroups, id: &str, limits: &Limits) -> Result<(), CreateError> {
    let dir = |index| cg.dir(index, id).map_err(CreateError::Name);
    let roles = cg.layout.roles;
    let (memory, cpu, pids) = (dir(roles.memory)?, dir(roles.cpu)?, dir(roles.pids)?);
    let period = limits.cpu_period_us.to_string();
    match cg.layout.version {
        Version::V2 => {
            write(&memory.join("memory.max"), &v2_value(limits.memory_bytes))?;
            let quota = v2_value(limits.cpu_quota_us);
            write(&cpu.join("cpu.max"), &format!("{quota} {period}"))?;
        }
        Version::V1 => {
            let memory_limit = v1_value(limits.memory_bytes);
            write(&memory.join("memory.limit_in_bytes"), &memory_limit)?;
            write(&cpu.join("cpu.cfs_period_us"), &period)?;
            write(
                &cpu.join("cpu.cfs_quota_us"),
                &v1_value(limits.cpu_quota_us),
            )?;
        }
    }
    // `pids.max` is spelled alike in both versions.
    write(&pids.join("pids.max"), &v2_value(limits.pids))
}

/// Reads instance `id`'s limits back from its cgroup.
pub(super) fn read_limits(cg: &Cgroups, id: &str) -> Result<Limits, ReadError> {
    let dir = |index| cg.dir(index, id).map_err(ReadError::Name);
    let roles = cg.layout.roles;
    let (memory, cpu, pids) = (dir(roles.memory)?, dir(roles.cpu)?, dir(roles.pids)?);
    let pids = read_parsed(&pids.join("pids.max"), parse_v2)?;
    match cg.layout.version {
        Version::V2 => read_v2_limits(&memory, &cpu, pids),
        Version::V1 => read_v1_limits(&memory, &cpu, pids),
    }
}

/// v2's `memory.max` and `cpu.max` (`<quota|max> <period>`).
fn read_v2_limits(memory: &Path, cpu: &Path, pids: Option<u64>) -> Result<Limits, ReadError> {
    let memory_bytes = read_parsed(&memory.join("memory.max"), parse_v2)?;
    let cpu_max = cpu.join("cpu.max");
    let text = read(&cpu_max)?;
    let (quota, period) = text
        .split_once(' ')
        .ok_or_else(|| parse_error(&cpu_max, &text))?;
    Ok(Limits {
        memory_bytes,
        cpu_quota_us: parse_v2(&cpu_max, quota)?,
        cpu_period_us: parse_u64(&cpu_max, period)?,
        pids,
    })
}

/// v1's `memory.limit_in_bytes` (huge when unlimited), `cpu.cfs_quota_us` (`-1` when
/// unlimited) and `cpu.cfs_period_us`.
fn read_v1_limits(memory: &Path, cpu: &Path, pids: Option<u64>) -> Result<Limits, ReadError> {
    let memory_bytes = read_parsed(&memory.join("memory.limit_in_bytes"), parse_u64)?;
    Ok(Limits {
        memory_bytes: Some(memory_bytes).filter(|&bytes| bytes < V1_UNLIMITED_BYTES),
        cpu_quota_us: read_parsed(&cpu.join("cpu.cfs_quota_us"), parse_v1_quota)?,
        cpu_period_us: read_parsed(&cpu.join("cpu.cfs_period_us"), parse_u64)?,
        pids,
    })
}

/// The CPU time used by instance `id`'s cgroup, in nanoseconds.
pub(super) fn cpu_usage_ns(cg: &Cgroups, id: &str) -> Option<u64> {
    match cg.layout.version {
        Version::V2 => {
            let stat = read_file(cg, cg.layout.roles.cpu, id, "cpu.stat")?;
            let usec = stat.lines().find_map(|l| l.strip_prefix("usage_usec "))?;
            usec.trim().parse::<u64>().ok()?.checked_mul(1000)
        }
        Version::V1 => read_number(cg, cg.layout.roles.cpuacct, id, "cpuacct.usage"),
    }
}

/// The peak memory of instance `id`'s cgroup, in bytes.
pub(super) fn memory_peak_bytes(cg: &Cgroups, id: &str) -> Option<u64> {
    let file = match cg.layout.version {
        Version::V2 => "memory.peak",
        Version::V1 => "memory.max_usage_in_bytes",
    };
    read_number(cg, cg.layout.roles.memory, id, file)
}

/// The current memory of instance `id`'s cgroup, in bytes.
pub(super) fn memory_current_bytes(cg: &Cgroups, id: &str) -> Option<u64> {
    let file = match cg.layout.version {
        Version::V2 => "memory.current",
        Version::V1 => "memory.usage_in_bytes",
    };
    read_number(cg, cg.layout.roles.memory, id, file)
}

/// `file` of instance `id`'s cgroup in hierarchy `index`, as a number.
fn read_number(cg: &Cgroups, index: usize, id: &str, file: &str) -> Option<u64> {
    read_file(cg, index, id, file)?.trim().parse().ok()
}

/// `file` of instance `id`'s cgroup in hierarchy `index`, as text.
fn read_file(cg: &Cgroups, index: usize, id: &str, file: &str) -> Option<String> {
    let path: PathBuf = cg.dir(index, id).ok()?.join(file);
    std::fs::read_to_string(path).ok()
}

/// A limit as v2 spells it: a number, or `max` for none.
fn v2_value(limit: Option<u64>) -> String {
    limit.map_or_else(|| "max".to_string(), |v| v.to_string())
}

/// A limit as v1 spells it: a number, or `-1` for none.
fn v1_value(limit: Option<u64>) -> String {
    limit.map_or_else(|| "-1".to_string(), |v| v.to_string())
}

/// Writes `value` to the interface file `path`.
fn write(path: &Path, value: &str) -> Result<(), CreateError> {
    std::fs::write(path, value).map_err(|source| CreateError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Reads the interface file `path`, trimmed.
fn read(path: &Path) -> Result<String, ReadError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().to_string()),
        Err(source) => Err(ReadError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// The interface file `path`, read and parsed by `parse`.
fn read_parsed<T>(
    path: &Path,
    parse: fn(&Path, &str) -> Result<T, ReadError>,
) -> Result<T, ReadError> {
    parse(path, &read(path)?)
}

/// A v2 value (`max` or a number) read from `path`.
fn parse_v2(path: &Path, text: &str) -> Result<Option<u64>, ReadError> {
    match text.trim() {
        "max" => Ok(None),
        number => parse_u64(path, number).map(Some),
    }
}

/// v1's `cpu.cfs_quota_us`: `-1` for none, else a number.
fn parse_v1_quota(path: &Path, text: &str) -> Result<Option<u64>, ReadError> {
    match text.trim() {
        "-1" => Ok(None),
        number => parse_u64(path, number).map(Some),
    }
}

/// A plain number read from `path`.
fn parse_u64(path: &Path, text: &str) -> Result<u64, ReadError> {
    text.trim().parse().map_err(|_| parse_error(path, text))
}

/// The error for `text` that `path` should not hold.
fn parse_error(path: &Path, text: &str) -> ReadError {
    ReadError::Parse {
        path: path.display().to_string(),
        text: text.to_string(),
    }
}
