//! Finding the cgroup hierarchies: which version the host offers, where each controller is
//! mounted (from `/proc/self/mountinfo`) and where the agent itself sits in each hierarchy
//! (from `/proc/self/cgroup`).

use std::path::{Path, PathBuf};

use super::{Hierarchy, Layout, Roles, Version};

/// The controllers an instance's cgroup needs.
pub const CONTROLLERS: [&str; 4] = ["cpu", "cpuacct", "memory", "pids"];

/// The controllers a cgroup v2 hierarchy must offer (v2 has no separate `cpuacct`).
const V2_CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// Errors finding the cgroup hierarchies.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// A file under `/proc` could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Neither version offers every controller an instance needs.
    #[error(
        "no usable cgroup hierarchy: {cgroup2}, and cgroup v1 has no mount of the {missing} \
         controller(s)"
    )]
    NoHierarchy {
        /// What the cgroup2 mounts offer, for the message.
        cgroup2: String,
        /// The v1 controllers that are not mounted.
        missing: String,
    },
    /// `/proc/self/cgroup` names no cgroup of the agent in a v1 hierarchy.
    #[error("/proc/self/cgroup has no line for the {controller} hierarchy")]
    NoOwnCgroup {
        /// The controller.
        controller: String,
    },
    /// The agent's cgroup is not visible under the mount of its hierarchy.
    #[error(
        "the agent's {controller} cgroup {own} is outside the mounted part {root} of its hierarchy"
    )]
    Outside {
        /// The controller.
        controller: String,
        /// The agent's cgroup, as `/proc/self/cgroup` names it.
        own: String,
        /// The part of the hierarchy the mount shows.
        root: String,
    },
}

/// The fields of one `/proc/self/mountinfo` line that discovery needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The path inside the filesystem that is mounted (the 4th field).
    pub root: String,
    /// Where it is mounted (the 5th field), octal escapes decoded.
    pub point: PathBuf,
    /// The filesystem type (the first field after ` - `).
    pub fstype: String,
    /// The superblock options (the third field after ` - `).
    pub super_options: Vec<String>,
}

/// Parses `/proc/self/mountinfo` text, skipping lines that are not well formed.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_mount_line).collect()
}

/// One mountinfo line: `id parent major:minor root point options [optional...] - type source
/// super-options`.
fn parse_mount_line(line: &str) -> Option<Mount> {
    let (head, tail) = line.split_once(" - ")?;
    let mut head = head.split(' ');
    let root = unescape(head.nth(3)?);
    let point = PathBuf::from(unescape(head.next()?));
    let mut tail = tail.split(' ');
    let fstype = tail.next()?.to_string();
    let super_options = tail.nth(1)?.split(',').map(str::to_string).collect();
    Some(Mount {
        root,
        point,
        fstype,
        super_options,
    })
}

/// Decodes the kernel's `\ooo` octal escapes (space, tab, newline, backslash) in a path.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| {
            bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)) && d[0] <= b'3'
        });
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of `/proc/self/cgroup`: the hierarchy's controllers (empty for v2's `0::`) and
/// the process's cgroup in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnCgroup {
    /// The controllers of the hierarchy (`name=systemd` kept as written).
    pub controllers: Vec<String>,
    /// The cgroup path, from the hierarchy's root.
    pub path: String,
}

/// Parses `/proc/self/cgroup` text (`id:controllers:path` lines).
pub fn parse_own_cgroups(text: &str) -> Vec<OwnCgroup> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(OwnCgroup {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: path.to_string(),
            })
        })
        .collect()
}

/// Picks the layout from mountinfo and own-cgroup text: v2 if a cgroup2 mount offers
/// `cpu memory pids` in its root's `cgroup.controllers`, else v1 if each needed controller
/// is mounted, else an error naming what is missing.
pub fn layout(mountinfo: &str, own_cgroup: &str) -> Result<Layout, DetectError> {
    let mounts = parse_mountinfo(mountinfo);
    let mut cgroup2 = Vec::new();
    for mount in mounts.iter().filter(|m| m.fstype == "cgroup2") {
        let offered = v2_controllers(&mount.point);
        if V2_CONTROLLERS
            .iter()
            .all(|c| offered.iter().any(|o| o == c))
        {
            return Ok(v2_layout(&mount.point));
        }
        cgroup2.push(format!(
            "{} offers [{}]",
            mount.point.display(),
            offered.join(" ")
        ));
    }
    let v1: Vec<&Mount> = mounts.iter().filter(|m| m.fstype == "cgroup").collect();
    let found = CONTROLLERS.map(|c| v1_mount(&v1, c));
    let [Some(cpu), Some(cpuacct), Some(memory), Some(pids)] = found else {
        let cgroup2 = match cgroup2.is_empty() {
            true => "no cgroup2 filesystem is mounted".to_string(),
            false => format!(
                "cgroup2 needs cpu, memory and pids ({})",
                cgroup2.join("; ")
            ),
        };
        let missing: Vec<&str> = CONTROLLERS
            .into_iter()
            .zip(found)
            .filter_map(|(c, m)| m.is_none().then_some(c))
            .collect();
        let missing = missing.join(", ");
        return Err(DetectError::NoHierarchy { cgroup2, missing });
    };
    v1_layout([cpu, cpuacct, memory, pids], &parse_own_cgroups(own_cgroup))
}

/// The controllers a cgroup2 mount's root offers (none if the file cannot be read).
fn v2_controllers(point: &Path) -> Vec<String> {
    std::fs::read_to_string(point.join("cgroup.controllers"))
        .map(|text| text.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// A v2 layout: one hierarchy, instances placed from its root.
fn v2_layout(point: &Path) -> Layout {
    Layout {
        version: Version::V2,
        hierarchies: vec![Hierarchy {
            base: point.to_path_buf(),
        }],
        roles: Roles {
            memory: 0,
            cpu: 0,
            cpuacct: 0,
            pids: 0,
        },
    }
}

/// The first v1 mount carrying `controller`.
fn v1_mount<'a>(mounts: &[&'a Mount], controller: &str) -> Option<&'a Mount> {
    mounts
        .iter()
        .find(|m| m.super_options.iter().any(|o| o == controller))
        .copied()
}

/// A v1 layout from each controller's mount (in [`CONTROLLERS`] order): one hierarchy per
/// distinct directory, each based at the agent's own cgroup.
fn v1_layout(mounts: [&Mount; 4], own: &[OwnCgroup]) -> Result<Layout, DetectError> {
    let mut hierarchies: Vec<Hierarchy> = Vec::new();
    let mut index = [0; CONTROLLERS.len()];
    for ((slot, controller), mount) in index.iter_mut().zip(CONTROLLERS).zip(mounts) {
        let base = own_dir(mount, own, controller)?;
        *slot = match hierarchies.iter().position(|h| h.base == base) {
            Some(i) => i,
            None => {
                hierarchies.push(Hierarchy { base });
                hierarchies.len() - 1
            }
        };
    }
    let [cpu, cpuacct, memory, pids] = index;
    Ok(Layout {
        version: Version::V1,
        hierarchies,
        roles: Roles {
            memory,
            cpu,
            cpuacct,
            pids,
        },
    })
}

/// The directory of the agent's own cgroup in `mount`'s hierarchy.
fn own_dir(mount: &Mount, own: &[OwnCgroup], controller: &str) -> Result<PathBuf, DetectError> {
    let line = own
        .iter()
        .find(|o| o.controllers.iter().any(|c| c == controller))
        .ok_or_else(|| DetectError::NoOwnCgroup {
            controller: controller.to_string(),
        })?;
    let inside = Path::new(&line.path)
        .strip_prefix(&mount.root)
        .map_err(|_| DetectError::Outside {
            controller: controller.to_string(),
            own: line.path.clone(),
            root: mount.root.clone(),
        })?;
    Ok(match inside.as_os_str().is_empty() {
        true => mount.point.clone(),
        false => mount.point.join(inside),
    })
}
