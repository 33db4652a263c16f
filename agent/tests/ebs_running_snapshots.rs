//! Snapshots of a running instance: its volume is copied while the guest runs (the vmm
//! tracking the blocks written) and the guest is paused only to copy those again. A guest
//! rewriting its disk throughout gets a snapshot of whole blocks as it wrote them; a vmm killed
//! while its writes are tracked leaves the snapshot failed and the volume whole.

mod common;
mod ebs_common;

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use common::{Agent, eventually, tail};
use ebs_common::*;
use sha2::{Digest, Sha256};

const T: Duration = Duration::from_secs(90);
const GIB: u64 = 1 << 30;

fn sha(path: &Path) -> String {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).unwrap();
    hex::encode(h.finalize())
}

/// Fills the first `len` bytes of `path` with bytes that differ from block to block.
fn fill(path: &Path, len: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    for at in (0..len).step_by(buf.len()) {
        for (i, w) in buf.chunks_exact_mut(8).enumerate() {
            w.copy_from_slice(&(at / 8 + i as u64).wrapping_mul(0x9e37_79b9).to_le_bytes());
        }
        f.write_all_at(&buf, at).unwrap();
    }
    f.sync_all().unwrap();
}

fn word(b: &[u8], n: usize) -> u64 {
    u64::from_le_bytes(b[8 * n..8 * n + 8].try_into().unwrap())
}

/// The agent's logged pause for the instance's snapshot.
fn pause_line(agent: &Agent) -> String {
    agent
        .log()
        .lines()
        .find(|l| l.contains("instance paused for a snapshot"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no pause logged:\n{}", tail(&agent.log(), 30)))
}

fn churning_instance(agent: &Agent) -> (String, String) {
    let ami = register(agent, "probe-churn", "probe.disk=churn");
    let i = run(
        agent,
        &ami,
        &[
            ("BlockDeviceMapping.1.DeviceName", "/dev/sdf"),
            ("BlockDeviceMapping.1.Ebs.VolumeSize", "1"),
            ("BlockDeviceMapping.1.Ebs.VolumeType", "gp3"),
        ],
    );
    agent.wait_state(&i, "running", T);
    wait_line(agent, &i, "disk churn started", T);
    let vol = text(
        &agent.call("DescribeInstances", &[("InstanceId.1", i.as_str())]),
        "volumeId",
    );
    (i, vol)
}

#[test]
fn a_guest_rewriting_its_disk_throughout_gets_a_snapshot_of_whole_blocks() {
    let agent = Agent::start(&["--stop-timeout", "5"]);
    let (i, vol) = churning_instance(&agent);
    std::thread::sleep(Duration::from_millis(500));
    let snap = snapshot(&agent, &vol, T);
    assert!(
        !agent.console(&i).contains("FAILED"),
        "the guest's writes all succeeded: {}",
        agent.console(&i)
    );

    let restored = create_volume(
        &agent,
        &[("SnapshotId", snap.as_str()), ("VolumeType", "gp3")],
    );
    wait_volume(&agent, &restored, "available", T);
    let f = std::fs::File::open(volume_file(&agent, &restored)).unwrap();
    // Every block of the churned 64 MiB is either never written (zeros) or one whole write
    // of the guest: its number and one counter throughout, never two writes mixed.
    let mut written = 0;
    let mut b = vec![0u8; 4096];
    for n in 0..(64u64 << 20) / 4096 {
        f.read_exact_at(&mut b, n * 4096).unwrap();
        if b.iter().all(|&x| x == 0) {
            continue;
        }
        assert_eq!(
            &b[..8],
            b"kec2chn\0",
            "block {n} holds no write of the guest"
        );
        assert_eq!(word(&b, 1), n, "block {n} holds another block's write");
        let count = word(&b, 2);
        assert!(
            (3..512).all(|k| word(&b, k) == count),
            "block {n} mixes two writes"
        );
        written += 1;
    }
    assert!(
        written > 100,
        "the guest wrote during the snapshot ({written} blocks)"
    );
    eprintln!("measured: {written} blocks written; {}", pause_line(&agent));
}

#[test]
fn a_vmm_killed_while_its_writes_are_tracked_fails_the_snapshot_and_loses_nothing() {
    let agent = Agent::start(&["--stop-timeout", "5"]);
    let ami = agent.register_probe_with("probe-count", "probe.mode=count");
    let i = run(
        &agent,
        &ami,
        &[
            ("BlockDeviceMapping.1.DeviceName", "/dev/sdf"),
            ("BlockDeviceMapping.1.Ebs.VolumeSize", "1"),
            ("BlockDeviceMapping.1.Ebs.VolumeType", "gp3"),
        ],
    );
    agent.wait_state(&i, "running", T);
    let vol = text(
        &agent.call("DescribeInstances", &[("InstanceId.1", i.as_str())]),
        "volumeId",
    );
    // A volume full of data, so that copying it takes a while.
    let file = volume_file(&agent, &vol);
    fill(&file, GIB);
    let before = sha(&file);
    let pid = agent.vmm_pid(&i).expect("a vmm pid");
    let xml = agent.call("CreateSnapshot", &[("VolumeId", vol.as_str())]);
    let snap = text(&xml, "snapshotId");
    // SAFETY: a plain kill of the instance's vmm, a process this test's agent started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let status = || {
        text(
            &agent.call("DescribeSnapshots", &[("SnapshotId.1", snap.as_str())]),
            "status",
        )
    };
    assert!(
        eventually(T, || status() == "error"),
        "the snapshot fails: {}\n{}",
        agent.call("DescribeSnapshots", &[("SnapshotId.1", snap.as_str())]),
        tail(&agent.log(), 30)
    );
    assert_eq!(sha(&file), before, "the volume is as it was");
    let tmp = agent.dir.path().join("snapshots").join("tmp");
    let left = || -> Vec<_> {
        std::fs::read_dir(&tmp)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default()
    };
    assert!(
        eventually(Duration::from_secs(10), || left().is_empty()),
        "no copy is left behind: {:?}",
        left()
    );
    // The instance is no longer running; a new snapshot of the volume is whole.
    assert!(
        eventually(T, || agent.instance(&i).state != "running"),
        "the instance is seen to have ended"
    );
    let again = snapshot(&agent, &vol, T);
    let restored = create_volume(
        &agent,
        &[("SnapshotId", again.as_str()), ("VolumeType", "gp3")],
    );
    wait_volume(&agent, &restored, "available", T);
    assert_eq!(sha(&volume_file(&agent, &restored)), before);
}
