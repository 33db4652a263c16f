//! Helpers for the EBS tests: probe images with a disk mode, volumes, snapshots and the
//! probe's console lines.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use crate::common::{Agent, child_text, eventually, tail};

/// The probe program built by `images/build.sh probe`.
pub fn probe_elf() -> PathBuf {
    crate::common::probe_manifest().with_file_name("probe.elf")
}

/// Registers the probe with `boot_args` (e.g. `probe.disk=write`) as an image named `name`.
pub fn register(agent: &Agent, name: &str, boot_args: &str) -> String {
    let elf = probe_elf();
    let xml = agent.call(
        "RegisterImage",
        &[
            ("Name", name),
            ("KernelPath", elf.to_str().unwrap()),
            ("EntryMode", "user"),
            ("BootArgs", boot_args),
        ],
    );
    text(&xml, "imageId")
}

/// The text of the first element named `tag` in `xml`.
pub fn text(xml: &str, tag: &str) -> String {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .find(|n| n.has_tag_name(tag))
        .and_then(|n| n.text())
        .unwrap_or_default()
        .to_string()
}

/// Launches one t2.nano of `ami` with extra RunInstances parameters; returns its id.
pub fn run(agent: &Agent, ami: &str, extra: &[(&str, &str)]) -> String {
    run_type(agent, ami, "t2.nano", extra)
}

/// Launches one instance of `ami` and `instance_type`.
pub fn run_type(agent: &Agent, ami: &str, instance_type: &str, extra: &[(&str, &str)]) -> String {
    let mut p = vec![
        ("ImageId", ami),
        ("MinCount", "1"),
        ("MaxCount", "1"),
        ("InstanceType", instance_type),
    ];
    p.extend_from_slice(extra);
    crate::common::instance_ids(&agent.call("RunInstances", &p))[0].clone()
}

/// Creates a volume (zone local-1a added); returns its id.
pub fn create_volume(agent: &Agent, params: &[(&str, &str)]) -> String {
    let mut p = vec![("AvailabilityZone", "local-1a")];
    p.extend_from_slice(params);
    text(&agent.call("CreateVolume", &p), "volumeId")
}

/// A described volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeView {
    /// `status`.
    pub status: String,
    /// Attachment instance, "" if none.
    pub instance: String,
    /// Attachment device, "" if none.
    pub device: String,
    /// Size in GiB.
    pub size: String,
    /// `volumeType`.
    pub kind: String,
    /// `iops`.
    pub iops: String,
}

/// DescribeVolumes of one volume.
pub fn volume(agent: &Agent, id: &str) -> VolumeView {
    let xml = agent.call("DescribeVolumes", &[("VolumeId.1", id)]);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let v = doc
        .descendants()
        .find(|n| n.has_tag_name("item") && child_text(*n, "volumeId") == id)
        .unwrap_or_else(|| panic!("{id} not described:\n{xml}"));
    let att = v
        .descendants()
        .find(|n| n.has_tag_name("attachmentSet"))
        .and_then(|s| s.children().find(|c| c.has_tag_name("item")));
    VolumeView {
        status: child_text(v, "status"),
        instance: att.map(|a| child_text(a, "instanceId")).unwrap_or_default(),
        device: att.map(|a| child_text(a, "device")).unwrap_or_default(),
        size: child_text(v, "size"),
        kind: child_text(v, "volumeType"),
        iops: child_text(v, "iops"),
    }
}

/// Every volume id DescribeVolumes lists.
pub fn volume_ids(agent: &Agent) -> Vec<String> {
    let xml = agent.call("DescribeVolumes", &[]);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    doc.descendants()
        .filter(|n| {
            n.has_tag_name("item") && n.parent().is_some_and(|p| p.has_tag_name("volumeSet"))
        })
        .map(|n| child_text(n, "volumeId"))
        .collect()
}

/// Waits until volume `id` has `status`.
pub fn wait_volume(agent: &Agent, id: &str, status: &str, timeout: Duration) {
    assert!(
        eventually(timeout, || volume(agent, id).status == status),
        "{id} did not become {status}: {:?}\n{}",
        volume(agent, id),
        tail(&agent.log(), 30)
    );
}

/// Creates a snapshot and waits until it is completed; returns its id.
pub fn snapshot(agent: &Agent, vol: &str, timeout: Duration) -> String {
    let xml = agent.call("CreateSnapshot", &[("VolumeId", vol)]);
    let id = text(&xml, "snapshotId");
    assert_eq!(text(&xml, "status"), "pending", "{xml}");
    wait_snapshot(agent, &id, timeout);
    id
}

/// Waits until snapshot `id` is completed.
pub fn wait_snapshot(agent: &Agent, id: &str, timeout: Duration) {
    let status = || {
        text(
            &agent.call("DescribeSnapshots", &[("SnapshotId.1", id)]),
            "status",
        )
    };
    assert!(
        eventually(timeout, || status() == "completed"),
        "{id} did not complete: {}\n{}",
        agent.call("DescribeSnapshots", &[("SnapshotId.1", id)]),
        tail(&agent.log(), 30)
    );
}

/// Waits until the console of `id` has a line containing `needle`, and returns that line.
pub fn wait_line(agent: &Agent, id: &str, needle: &str, timeout: Duration) -> String {
    let mut found = String::new();
    let ok = eventually(timeout, || {
        let console = agent.console(id);
        // Only whole lines: the guest may be in the middle of one.
        let whole = &console[..console.rfind('\n').map_or(0, |i| i + 1)];
        found = whole
            .lines()
            .rev()
            .find(|l| l.contains(needle))
            .unwrap_or_default()
            .to_string();
        !found.is_empty()
    });
    assert!(
        ok,
        "no `{needle}` on the console of {id}:\n{}\nagent log tail:\n{}",
        tail(&agent.console(id), 20),
        tail(&agent.log(), 30)
    );
    found
}

/// The checksum of a `probe: disk write|verify ok N bytes checksum X` line.
pub fn checksum(line: &str) -> String {
    line.rsplit(' ').next().unwrap_or_default().to_string()
}

/// A volume's file in the agent's state dir.
pub fn volume_file(agent: &Agent, id: &str) -> PathBuf {
    agent.dir.path().join("volumes").join(format!("{id}.img"))
}

/// Bytes of the chunk files in the agent's snapshot store.
pub fn stored_bytes(agent: &Agent) -> u64 {
    let dir = agent.dir.path().join("snapshots").join("chunks");
    let mut total = 0;
    for sub in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for e in std::fs::read_dir(sub.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            total += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    total
}

/// Attaches `vol` to `instance` at `device`.
pub fn attach(agent: &Agent, vol: &str, instance: &str, device: &str) {
    agent.call(
        "AttachVolume",
        &[
            ("VolumeId", vol),
            ("InstanceId", instance),
            ("Device", device),
        ],
    );
}

/// Starts a stopped instance.
pub fn start(agent: &Agent, id: &str) {
    agent.call("StartInstances", &[("InstanceId.1", id)]);
}

/// Clears an instance's console log, so the next boot's lines are the only ones.
pub fn clear_console(agent: &Agent, id: &str) {
    let p = agent
        .dir
        .path()
        .join("instances")
        .join(id)
        .join("console.log");
    let _ = std::fs::write(p, b"");
}
