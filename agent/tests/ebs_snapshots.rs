//! EBS snapshots with real probe guests: restores are byte-exact, a second snapshot stores
//! only what changed, a copy shares every chunk, deleting frees only unreferenced chunks, a
//! snapshot taken while the guest writes is one point in time, and images come from
//! instances and snapshots.

mod common;
mod ebs_common;

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Agent, tail};
use ebs_common::*;
use sha2::{Digest, Sha256};

const T: Duration = Duration::from_secs(60);
const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

fn sha(path: &Path) -> String {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).unwrap();
    hex::encode(h.finalize())
}

/// Fills `path` (existing) with `len` pseudo-random bytes.
fn fill_random(path: &Path, len: u64, seed: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let mut x = seed | 1;
    let mut buf = vec![0u8; MIB as usize];
    for at in (0..len).step_by(MIB as usize) {
        for w in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all_at(&buf, at).unwrap();
    }
    f.sync_all().unwrap();
}

fn restore(agent: &Agent, snap: &str, size: Option<&str>) -> (String, Duration) {
    let mut p = vec![("SnapshotId", snap), ("VolumeType", "gp3")];
    if let Some(s) = size {
        p.push(("Size", s));
    }
    let t0 = Instant::now();
    let vol = create_volume(agent, &p);
    wait_volume(agent, &vol, "available", T);
    (vol, t0.elapsed())
}

#[test]
fn incremental_snapshots_restore_exactly_and_free_only_unreferenced_chunks() {
    let agent = Agent::start(&["--stop-timeout", "5"]);
    let writer = register(&agent, "probe-write", "probe.disk=write");
    let w = run(&agent, &writer, &[]);
    agent.wait_state(&w, "stopped", T);

    let vol = create_volume(&agent, &[("Size", "1"), ("VolumeType", "gp3")]);
    let file = volume_file(&agent, &vol);
    fill_random(&file, GIB, 0x5eed);
    let original = sha(&file);

    // First snapshot: all of the (random, so all distinct) 1 GiB.
    let t0 = Instant::now();
    let s1 = snapshot(&agent, &vol, T);
    let full_time = t0.elapsed();
    let after1 = stored_bytes(&agent);
    assert_eq!(after1, GIB, "a full snapshot of 1 GiB of random data");

    // The guest rewrites its first 64 MiB (6.25%) with its pattern.
    attach(&agent, &vol, &w, "/dev/sdf");
    clear_console(&agent, &w);
    start(&agent, &w);
    let line = wait_line(&agent, &w, "disk write", T);
    assert!(line.contains("disk write ok 67108864 bytes"), "{line}");
    agent.wait_state(&w, "stopped", T);
    let changed = sha(&file);
    assert_ne!(changed, original);

    // Second snapshot: only the changed chunks are new.
    let t0 = Instant::now();
    let s2 = snapshot(&agent, &vol, T);
    let incremental_time = t0.elapsed();
    let growth = stored_bytes(&agent) - after1;
    let share = growth as f64 / GIB as f64;
    assert!(
        (0.04..=0.07).contains(&share),
        "the second snapshot stored {growth} bytes ({:.2}% of 1 GiB), expected about 6.25%",
        share * 100.0
    );

    // Restores are exact, at the snapshot's size or larger.
    let (r2, restore_time) = restore(&agent, &s2, None);
    assert_eq!(
        sha(&volume_file(&agent, &r2)),
        changed,
        "restore of the second snapshot"
    );
    let (r1, _) = restore(&agent, &s1, Some("2"));
    let r1_file = volume_file(&agent, &r1);
    assert_eq!(std::fs::metadata(&r1_file).unwrap().len(), 2 * GIB);
    let f = std::fs::File::open(&r1_file).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; MIB as usize];
    for at in (0..GIB).step_by(MIB as usize) {
        f.read_exact_at(&mut buf, at).unwrap();
        h.update(&buf);
    }
    assert_eq!(
        hex::encode(h.finalize()),
        original,
        "restore of the first snapshot"
    );
    f.read_exact_at(&mut buf, GIB + 5 * MIB).unwrap();
    assert!(buf.iter().all(|&b| b == 0), "the grown part is zeros");

    // Deleting the first snapshot frees only its 64 chunks the second does not share.
    let before = stored_bytes(&agent);
    agent.call("DeleteSnapshot", &[("SnapshotId", &s1)]);
    assert_eq!(before - stored_bytes(&agent), 64 * MIB);
    let (r3, _) = restore(&agent, &s2, None);
    assert_eq!(
        sha(&volume_file(&agent, &r3)),
        changed,
        "s2 intact after deleting s1"
    );
    assert_eq!(
        agent
            .call_err("DescribeSnapshots", &[("SnapshotId.1", &s1)])
            .0,
        "InvalidSnapshot.NotFound"
    );

    // CopySnapshot: completed at once, sharing every chunk; it outlives its source.
    let stored = stored_bytes(&agent);
    for (params, code) in [
        (vec![("SourceSnapshotId", s2.as_str())], "MissingParameter"),
        (
            vec![
                ("SourceSnapshotId", s2.as_str()),
                ("SourceRegion", "us-east-1"),
            ],
            "InvalidParameterValue",
        ),
        (
            vec![
                ("SourceSnapshotId", "snap-0123456789abcdef0"),
                ("SourceRegion", "local-1"),
            ],
            "InvalidSnapshot.NotFound",
        ),
    ] {
        assert_eq!(
            agent.call_err("CopySnapshot", &params).0,
            code,
            "{params:?}"
        );
    }
    let c2 = text(
        &agent.call(
            "CopySnapshot",
            &[
                ("SourceSnapshotId", s2.as_str()),
                ("SourceRegion", "local-1"),
                ("Description", "copy of s2"),
            ],
        ),
        "snapshotId",
    );
    let copied = agent.call("DescribeSnapshots", &[("SnapshotId.1", c2.as_str())]);
    assert_eq!(
        (
            text(&copied, "status"),
            text(&copied, "volumeSize"),
            text(&copied, "description")
        ),
        ("completed".into(), "1".into(), "copy of s2".into()),
        "{copied}"
    );
    assert_eq!(stored_bytes(&agent), stored, "a copy stores no new bytes");
    agent.call("DeleteSnapshot", &[("SnapshotId", &s2)]);
    assert_eq!(
        stored_bytes(&agent),
        stored,
        "the copy still holds every chunk"
    );
    let (r4, _) = restore(&agent, &c2, None);
    assert_eq!(
        sha(&volume_file(&agent, &r4)),
        changed,
        "restore of the copy"
    );
    agent.call("DeleteSnapshot", &[("SnapshotId", &c2)]);
    assert_eq!(stored_bytes(&agent), 0, "no snapshot left, no chunk left");
    eprintln!(
        "measured: full snapshot of 1 GiB {:.0} ms; second snapshot with 6.25% changed {:.0} ms, \
         {growth} new bytes; restore of 1 GiB {:.0} ms",
        full_time.as_secs_f64() * 1e3,
        incremental_time.as_secs_f64() * 1e3,
        restore_time.as_secs_f64() * 1e3
    );
}

/// Reads block `i` (4 KiB) of a file.
fn block(f: &std::fs::File, i: u64) -> Vec<u8> {
    let mut b = vec![0u8; 4096];
    f.read_exact_at(&mut b, i * 4096).unwrap();
    b
}

fn word(b: &[u8], n: usize) -> u64 {
    u64::from_le_bytes(b[8 * n..8 * n + 8].try_into().unwrap())
}

#[test]
fn a_snapshot_while_the_guest_writes_is_one_point_in_time() {
    let agent = Agent::start(&["--stop-timeout", "5"]);
    let seq = register(&agent, "probe-seq", "probe.disk=seq probe.mode=count");
    let i = run(
        &agent,
        &seq,
        &[
            ("BlockDeviceMapping.1.DeviceName", "/dev/sdf"),
            ("BlockDeviceMapping.1.Ebs.VolumeSize", "1"),
            ("BlockDeviceMapping.1.Ebs.VolumeType", "gp3"),
        ],
    );
    agent.wait_state(&i, "running", T);
    let started = wait_line(&agent, &i, "disk seq started", T);
    let data_blocks: u64 = started.split(' ').rev().nth(1).unwrap().parse().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let vol = text(
        &agent.call("DescribeInstances", &[("InstanceId.1", i.as_str())]),
        "volumeId",
    );
    let snap = snapshot(&agent, &vol, T);
    wait_line(&agent, &i, "disk seq done", T);

    let (copy, _) = restore(&agent, &snap, None);
    let f = std::fs::File::open(volume_file(&agent, &copy)).unwrap();
    let commit = block(&f, data_blocks);
    let committed = if &commit[..8] == b"kec2cmt\0" {
        word(&commit, 1)
    } else {
        assert!(commit.iter().all(|&b| b == 0), "a torn commit record");
        0
    };
    // Blocks 0..n hold their own sequence numbers, then nothing but zeros.
    let mut n = 0;
    while n < data_blocks {
        let b = block(&f, n);
        if &b[..8] != b"kec2seq\0" {
            assert!(
                b.iter().all(|&x| x == 0),
                "block {n} is neither written nor zero"
            );
            break;
        }
        assert!(
            (1..512).all(|k| word(&b, k) == n),
            "block {n} holds another sequence number"
        );
        n += 1;
    }
    for k in n..data_blocks {
        assert!(
            block(&f, k).iter().all(|&x| x == 0),
            "block {k} was written but block {n} is missing: not one point in time"
        );
    }
    assert!(
        committed <= n && n <= committed + 16,
        "the commit record says {committed} blocks, the snapshot holds {n}"
    );
    assert!(
        n > 0 && n < data_blocks,
        "the snapshot was not taken while the guest wrote ({n} of {data_blocks} blocks)"
    );
    let pause = agent
        .log()
        .lines()
        .find(|l| l.contains("instance paused for a snapshot"))
        .map(|l| l.to_string())
        .unwrap_or_else(|| panic!("no pause logged:\n{}", tail(&agent.log(), 30)));
    eprintln!("measured: snapshot at block {n} of {data_blocks}; {pause}");
}

#[test]
fn images_from_instances_and_from_snapshots() {
    let agent = Agent::start(&["--stop-timeout", "5"]);
    let root = agent.dir.path().join("root.img");
    {
        let mut f = std::fs::File::create(&root).unwrap();
        f.write_all(&vec![0u8; 3 * MIB as usize]).unwrap();
    }
    fill_random(&root, 3 * MIB, 42);
    let elf = probe_elf();
    let xml = agent.call(
        "RegisterImage",
        &[
            ("Name", "probe-with-root"),
            ("KernelPath", elf.to_str().unwrap()),
            ("RootVolumePath", root.to_str().unwrap()),
            ("EntryMode", "user"),
            ("BootArgs", "probe.mode=poweroff"),
        ],
    );
    let ami = text(&xml, "imageId");
    let images = agent.call("DescribeImages", &[("ImageId.1", ami.as_str())]);
    assert_eq!(text(&images, "rootDeviceType"), "ebs");

    // The root volume is a clone of the image's file, at least 1 GiB, sparse.
    let i1 = run(&agent, &ami, &[]);
    agent.wait_state(&i1, "stopped", T);
    let d = agent.call("DescribeInstances", &[("InstanceId.1", i1.as_str())]);
    assert_eq!(text(&d, "rootDeviceType"), "ebs");
    assert_eq!(text(&d, "rootDeviceName"), "/dev/xvda");
    assert_eq!(text(&d, "deviceName"), "/dev/xvda");
    let root_vol = text(&d, "volumeId");
    let root_file = volume_file(&agent, &root_vol);
    assert_eq!(std::fs::metadata(&root_file).unwrap().len(), GIB);
    let head = |p: &Path| {
        let mut b = vec![0u8; 3 * MIB as usize];
        std::fs::File::open(p)
            .unwrap()
            .read_exact_at(&mut b, 0)
            .unwrap();
        b
    };
    let want = std::fs::read(&root).unwrap();
    assert_eq!(head(&root_file), want);
    {
        use std::os::unix::fs::MetadataExt;
        let blocks = std::fs::metadata(&root_file).unwrap().blocks();
        assert!(
            blocks * 512 <= 8 * MIB,
            "the clone copied more than the data"
        );
    }

    // CreateImage of the stopped instance: a snapshot of its root and a new AMI.
    let xml = agent.call(
        "CreateImage",
        &[
            ("InstanceId", i1.as_str()),
            ("Name", "from-i1"),
            ("NoReboot", "true"),
        ],
    );
    let ami2 = text(&xml, "imageId");
    let snaps = agent.call(
        "DescribeSnapshots",
        &[
            ("Owner.1", "self"),
            ("Filter.1.Name", "volume-id"),
            ("Filter.1.Value.1", &root_vol),
        ],
    );
    let snap = text(&snaps, "snapshotId");
    wait_snapshot(&agent, &snap, T);
    let described = agent.call("DescribeImages", &[("ImageId.1", ami2.as_str())]);
    assert_eq!(text(&described, "imageState"), "available", "{described}");
    assert_eq!(text(&described, "snapshotId"), snap, "{described}");
    assert_eq!(text(&described, "volumeSize"), "1");
    let i2 = run(
        &agent,
        &ami2,
        &[
            ("BlockDeviceMapping.1.DeviceName", "/dev/xvda"),
            ("BlockDeviceMapping.1.Ebs.VolumeSize", "2"),
        ],
    );
    agent.wait_state(&i2, "stopped", T);
    let root2 = text(
        &agent.call("DescribeInstances", &[("InstanceId.1", i2.as_str())]),
        "volumeId",
    );
    let root2_file = volume_file(&agent, &root2);
    assert_eq!(std::fs::metadata(&root2_file).unwrap().len(), 2 * GIB);
    assert_eq!(head(&root2_file), want);
    assert_eq!(
        agent
            .call_err(
                "RunInstances",
                &[
                    ("ImageId", &ami2),
                    ("MinCount", "1"),
                    ("MaxCount", "1"),
                    ("BlockDeviceMapping.1.DeviceName", "/dev/xvda"),
                    ("BlockDeviceMapping.1.Ebs.VolumeSize", "0"),
                ],
            )
            .0,
        "InvalidBlockDeviceMapping"
    );

    // The image holds its snapshot; deregistering keeps it, then it can go.
    assert_eq!(
        agent.call_err("DeleteSnapshot", &[("SnapshotId", &snap)]).0,
        "InvalidSnapshot.InUse"
    );
    agent.call("DeregisterImage", &[("ImageId", &ami2)]);
    assert_eq!(
        text(
            &agent.call("DescribeSnapshots", &[("SnapshotId.1", snap.as_str())]),
            "status"
        ),
        "completed"
    );

    // RegisterImage from a snapshot.
    let xml = agent.call(
        "RegisterImage",
        &[
            ("Name", "from-snapshot"),
            ("KernelPath", elf.to_str().unwrap()),
            ("EntryMode", "user"),
            ("BootArgs", "probe.mode=poweroff"),
            ("RootDeviceName", "/dev/xvda"),
            ("BlockDeviceMapping.1.DeviceName", "/dev/xvda"),
            ("BlockDeviceMapping.1.Ebs.SnapshotId", &snap),
        ],
    );
    let ami3 = text(&xml, "imageId");
    let i3 = run(&agent, &ami3, &[]);
    agent.wait_state(&i3, "stopped", T);
    let root3 = text(
        &agent.call("DescribeInstances", &[("InstanceId.1", i3.as_str())]),
        "volumeId",
    );
    assert_eq!(head(&volume_file(&agent, &root3)), want);
    agent.call("DeregisterImage", &[("ImageId", &ami3)]);
    agent.call("DeleteSnapshot", &[("SnapshotId", &snap)]);

    // Terminating deletes the root (DeleteOnTermination defaults to true for it).
    agent.call("TerminateInstances", &[("InstanceId.1", i1.as_str())]);
    agent.wait_state(&i1, "terminated", T);
    assert!(
        common::eventually(T, || !volume_ids(&agent).contains(&root_vol)),
        "the root volume outlived its instance"
    );
    assert!(!root_file.exists());
}

#[test]
fn an_agent_killed_during_a_snapshot_leaves_no_half_stored_data() {
    let mut agent = Agent::start(&["--stop-timeout", "5"]);
    let vol = create_volume(&agent, &[("Size", "1"), ("VolumeType", "gp3")]);
    fill_random(&volume_file(&agent, &vol), GIB, 77);
    let xml = agent.call("CreateSnapshot", &[("VolumeId", vol.as_str())]);
    let snap = text(&xml, "snapshotId");
    let tmp = agent.dir.path().join("snapshots").join("tmp");
    // Kill it while chunks are being written (the temp copy exists, nothing is referenced).
    assert!(
        common::eventually(T, || stored_bytes(&agent) > 0),
        "no chunk was ever written"
    );
    let status = text(
        &agent.call("DescribeSnapshots", &[("SnapshotId.1", snap.as_str())]),
        "status",
    );
    assert_eq!(status, "pending", "the snapshot finished before the kill");
    agent.kill9();
    assert!(std::fs::read_dir(&tmp).unwrap().count() > 0);

    agent.restart();
    let d = agent.call("DescribeSnapshots", &[("SnapshotId.1", snap.as_str())]);
    assert_eq!(text(&d, "status"), "error", "{d}");
    assert_eq!(
        stored_bytes(&agent),
        0,
        "unreferenced chunks survived the restart"
    );
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "temp copies survived"
    );
    // The failed snapshot can be deleted; a new one completes and restores exactly.
    agent.call("DeleteSnapshot", &[("SnapshotId", snap.as_str())]);
    let again = snapshot(&agent, &vol, T);
    let (copy, _) = restore(&agent, &again, None);
    assert_eq!(
        sha(&volume_file(&agent, &copy)),
        sha(&volume_file(&agent, &vol))
    );
}
