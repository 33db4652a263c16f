//! Images from instances with real probe guests: CreateImage snapshots every volume at one
//! point in time and records each device's size, type, IOPS and DeleteOnTermination; a launch
//! makes them all again, with the request's mappings over them; a running instance is
//! rebooted for the image unless NoReboot; RegisterImage takes data-volume mappings; and
//! ModifyInstanceAttribute changes DeleteOnTermination.

mod common;
mod ebs_common;

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use cli::client::CallError;
use common::{Agent, child_text, eventually};
use ebs_common::*;

const T: Duration = Duration::from_secs(60);
const MIB: u64 = 1 << 20;

/// One item of an image's or instance's `blockDeviceMapping`: device, then its `ebs` fields.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Device {
    name: String,
    snapshot: String,
    volume: String,
    size: String,
    kind: String,
    iops: String,
    delete_on_termination: String,
}

fn devices(xml: &str) -> Vec<Device> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("blockDeviceMapping"))
        .flat_map(|m| m.children().filter(|c| c.has_tag_name("item")))
        .map(|item| {
            let ebs = item
                .children()
                .find(|c| c.has_tag_name("ebs"))
                .expect("an ebs element");
            Device {
                name: child_text(item, "deviceName"),
                snapshot: child_text(ebs, "snapshotId"),
                volume: child_text(ebs, "volumeId"),
                size: child_text(ebs, "volumeSize"),
                kind: child_text(ebs, "volumeType"),
                iops: child_text(ebs, "iops"),
                delete_on_termination: child_text(ebs, "deleteOnTermination"),
            }
        })
        .collect()
}

fn image_devices(agent: &Agent, ami: &str) -> Vec<Device> {
    devices(&agent.call("DescribeImages", &[("ImageId.1", ami)]))
}

fn instance_devices(agent: &Agent, id: &str) -> Vec<Device> {
    devices(&agent.call("DescribeInstances", &[("InstanceId.1", id)]))
}

fn image_state(agent: &Agent, ami: &str) -> String {
    text(
        &agent.call("DescribeImages", &[("ImageId.1", ami)]),
        "imageState",
    )
}

fn wait_image(agent: &Agent, ami: &str) {
    assert!(
        eventually(T, || image_state(agent, ami) == "available"),
        "{ami} is {}:\n{}",
        image_state(agent, ami),
        common::tail(&agent.log(), 30)
    );
}

/// The first `len` bytes of `path`.
fn head(path: &Path, len: u64) -> Vec<u8> {
    let mut b = vec![0u8; len as usize];
    std::fs::File::open(path)
        .unwrap()
        .read_exact_at(&mut b, 0)
        .unwrap();
    b
}

/// `len` pseudo-random bytes from `seed`.
fn random_bytes(len: u64, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect()
}

/// The EC2 error code of a refused call.
fn code_of(r: Result<String, CallError>) -> String {
    match r {
        Err(CallError::Api { code, .. }) => code,
        other => panic!("expected an EC2 error, got {other:?}"),
    }
}

fn volume_of(devs: &[Device], name: &str) -> String {
    devs.iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no {name} in {devs:?}"))
        .volume
        .clone()
}

#[test]
fn create_image_captures_every_volume_with_its_settings() {
    let agent = Agent::start(&["--stop-timeout", "5"]);
    let root_file = agent.dir.path().join("root.img");
    let root_bytes = random_bytes(3 * MIB, 7);
    std::fs::File::create(&root_file)
        .unwrap()
        .write_all(&root_bytes)
        .unwrap();
    let elf = probe_elf();
    let base = text(
        &agent.call(
            "RegisterImage",
            &[
                ("Name", "probe-root-poweroff"),
                ("KernelPath", elf.to_str().unwrap()),
                ("RootVolumePath", root_file.to_str().unwrap()),
                ("EntryMode", "user"),
                ("BootArgs", "probe.mode=poweroff"),
            ],
        ),
        "imageId",
    );
    let i1 = run(
        &agent,
        &base,
        &[
            ("BlockDeviceMapping.1.DeviceName", "/dev/sdf"),
            ("BlockDeviceMapping.1.Ebs.VolumeSize", "4"),
            ("BlockDeviceMapping.1.Ebs.VolumeType", "io2"),
            ("BlockDeviceMapping.1.Ebs.Iops", "1000"),
            ("BlockDeviceMapping.1.Ebs.DeleteOnTermination", "false"),
        ],
    );
    agent.wait_state(&i1, "stopped", T);
    let i1_devs = instance_devices(&agent, &i1);
    let data_vol = volume_of(&i1_devs, "/dev/sdf");
    let data_bytes = random_bytes(2 * MIB, 11);
    {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(volume_file(&agent, &data_vol))
            .unwrap();
        f.write_all_at(&data_bytes, 0).unwrap();
        f.sync_all().unwrap();
    }

    // ModifyInstanceAttribute: DeleteOnTermination per device, all or nothing.
    let dot = |a: &Agent| -> Vec<(String, String)> {
        devices(&a.call(
            "DescribeInstanceAttribute",
            &[
                ("InstanceId", i1.as_str()),
                ("Attribute", "blockDeviceMapping"),
            ],
        ))
        .into_iter()
        .map(|d| (d.name, d.delete_on_termination))
        .collect()
    };
    let before = vec![
        ("/dev/xvda".to_string(), "true".to_string()),
        ("/dev/sdf".to_string(), "false".to_string()),
    ];
    assert_eq!(dot(&agent), before);
    let modify = |extra: &[(&str, &str)]| {
        let mut p = vec![("InstanceId", i1.as_str())];
        p.extend_from_slice(extra);
        agent.try_call("ModifyInstanceAttribute", &p)
    };
    for (bad, code) in [
        (
            vec![
                ("BlockDeviceMapping.1.DeviceName", "/dev/sdf"),
                ("BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true"),
                ("BlockDeviceMapping.2.DeviceName", "/dev/sdz"),
                ("BlockDeviceMapping.2.Ebs.DeleteOnTermination", "true"),
            ],
            "InvalidInstanceAttributeValue",
        ),
        (
            vec![("BlockDeviceMapping.1.DeviceName", "/dev/sdf")],
            "MissingParameter",
        ),
        (
            vec![
                ("BlockDeviceMapping.1.DeviceName", "/dev/sdf"),
                ("BlockDeviceMapping.1.Ebs.DeleteOnTermination", "maybe"),
            ],
            "InvalidParameterValue",
        ),
        (
            vec![
                ("BlockDeviceMapping.1.DeviceName", "/dev/xvda"),
                ("BlockDeviceMapping.1.Ebs.VolumeId", data_vol.as_str()),
                ("BlockDeviceMapping.1.Ebs.DeleteOnTermination", "false"),
            ],
            "InvalidInstanceAttributeValue",
        ),
    ] {
        assert_eq!(code_of(modify(&bad)), code, "{bad:?}");
        assert_eq!(dot(&agent), before, "{bad:?} changed something");
    }
    modify(&[
        ("BlockDeviceMapping.1.DeviceName", "/dev/sdf"),
        ("BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true"),
        ("BlockDeviceMapping.2.DeviceName", "/dev/xvda"),
        ("BlockDeviceMapping.2.Ebs.DeleteOnTermination", "false"),
    ])
    .unwrap();
    let after = vec![
        ("/dev/xvda".to_string(), "false".to_string()),
        ("/dev/sdf".to_string(), "true".to_string()),
    ];
    assert_eq!(dot(&agent), after);

    // CreateImage: both volumes, with their settings; the image and snapshots are tagged.
    let ami = text(
        &agent.call(
            "CreateImage",
            &[
                ("InstanceId", i1.as_str()),
                ("Name", "two-volumes"),
                ("TagSpecification.1.ResourceType", "image"),
                ("TagSpecification.1.Tag.1.Key", "made-by"),
                ("TagSpecification.1.Tag.1.Value", "test"),
                ("TagSpecification.2.ResourceType", "snapshot"),
                ("TagSpecification.2.Tag.1.Key", "of"),
                ("TagSpecification.2.Tag.1.Value", "two-volumes"),
            ],
        ),
        "imageId",
    );
    wait_image(&agent, &ami);
    let img = image_devices(&agent, &ami);
    let shape: Vec<_> = img
        .iter()
        .map(|d| {
            (
                d.name.as_str(),
                d.size.as_str(),
                d.kind.as_str(),
                d.iops.as_str(),
                d.delete_on_termination.as_str(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            ("/dev/xvda", "1", "gp3", "3000", "false"),
            ("/dev/sdf", "4", "io2", "1000", "true"),
        ]
    );
    let snaps: Vec<String> = img.iter().map(|d| d.snapshot.clone()).collect();
    assert!(snaps.iter().all(|s| s.starts_with("snap-")), "{img:?}");
    let tagged = agent.call(
        "DescribeSnapshots",
        &[
            ("Owner.1", "self"),
            ("Filter.1.Name", "tag:of"),
            ("Filter.1.Value.1", "two-volumes"),
        ],
    );
    for s in &snaps {
        assert!(tagged.contains(s.as_str()), "{s} not tagged:\n{tagged}");
    }
    let described = agent.call("DescribeImages", &[("ImageId.1", ami.as_str())]);
    assert!(described.contains("<key>made-by</key>"), "{described}");

    // A launch makes both volumes again, byte for byte, with the recorded settings.
    let i2 = run(&agent, &ami, &[]);
    agent.wait_state(&i2, "stopped", T);
    let i2_devs = instance_devices(&agent, &i2);
    let i2_root = volume_of(&i2_devs, "/dev/xvda");
    let i2_data = volume_of(&i2_devs, "/dev/sdf");
    assert_eq!(
        i2_devs
            .iter()
            .map(|d| (d.name.as_str(), d.delete_on_termination.as_str()))
            .collect::<Vec<_>>(),
        vec![("/dev/xvda", "false"), ("/dev/sdf", "true")]
    );
    assert_eq!(head(&volume_file(&agent, &i2_root), 3 * MIB), root_bytes);
    assert_eq!(head(&volume_file(&agent, &i2_data), 2 * MIB), data_bytes);
    let v = volume(&agent, &i2_data);
    assert_eq!(
        (v.kind.as_str(), v.iops.as_str(), v.size.as_str()),
        ("io2", "1000", "4")
    );

    // The request's mappings go over the image's: NoDevice drops one, a size grows one,
    // a new device adds one.
    let i3 = run(
        &agent,
        &ami,
        &[
            ("BlockDeviceMapping.1.DeviceName", "/dev/sdf"),
            ("BlockDeviceMapping.1.NoDevice", ""),
            ("BlockDeviceMapping.2.DeviceName", "/dev/sdg"),
            ("BlockDeviceMapping.2.Ebs.VolumeSize", "1"),
        ],
    );
    let i4 = run(
        &agent,
        &ami,
        &[
            ("BlockDeviceMapping.1.DeviceName", "/dev/sdf"),
            ("BlockDeviceMapping.1.Ebs.VolumeSize", "8"),
        ],
    );
    agent.wait_state(&i3, "stopped", T);
    agent.wait_state(&i4, "stopped", T);
    let names = |id: &str| -> Vec<String> {
        instance_devices(&agent, id)
            .into_iter()
            .map(|d| d.name)
            .collect()
    };
    assert_eq!(names(&i3), vec!["/dev/xvda", "/dev/sdg"]);
    let grown = volume(
        &agent,
        &volume_of(&instance_devices(&agent, &i4), "/dev/sdf"),
    );
    assert_eq!(
        (
            grown.size.as_str(),
            grown.kind.as_str(),
            grown.iops.as_str()
        ),
        ("8", "io2", "1000")
    );
    // A smaller size than the snapshot, or IOPS the type does not allow: refused.
    for (extra, code) in [
        (
            ("BlockDeviceMapping.1.Ebs.VolumeSize", "3"),
            "InvalidBlockDeviceMapping",
        ),
        (
            ("BlockDeviceMapping.1.Ebs.Iops", "100000"),
            "InvalidParameterValue",
        ),
    ] {
        let (got, msg) = agent.call_err(
            "RunInstances",
            &[
                ("ImageId", ami.as_str()),
                ("MinCount", "1"),
                ("MaxCount", "1"),
                ("BlockDeviceMapping.1.DeviceName", "/dev/sdf"),
                extra,
            ],
        );
        assert_eq!(got, code, "{extra:?}: {msg}");
    }

    // The image holds its snapshots; deregistering keeps them.
    assert_eq!(
        agent
            .call_err("DeleteSnapshot", &[("SnapshotId", snaps[1].as_str())])
            .0,
        "InvalidSnapshot.InUse"
    );

    // RegisterImage with data mappings: one from a snapshot, one empty.
    let register = |name: &str, extra: &[(&str, &str)]| {
        let mut p = vec![
            ("Name", name),
            ("KernelPath", elf.to_str().unwrap()),
            ("EntryMode", "user"),
            ("BootArgs", "probe.mode=poweroff"),
        ];
        p.extend_from_slice(extra);
        agent.try_call("RegisterImage", &p)
    };
    for (extra, code) in [
        (
            vec![("BlockDeviceMapping.1.DeviceName", "/dev/sdh")],
            "MissingParameter",
        ),
        (
            vec![
                ("BlockDeviceMapping.1.DeviceName", "/dev/hda"),
                ("BlockDeviceMapping.1.Ebs.VolumeSize", "1"),
            ],
            "InvalidBlockDeviceMapping",
        ),
        (
            vec![
                ("BlockDeviceMapping.1.DeviceName", "/dev/sdh"),
                (
                    "BlockDeviceMapping.1.Ebs.SnapshotId",
                    "snap-0123456789abcdef0",
                ),
            ],
            "InvalidSnapshot.NotFound",
        ),
        (
            vec![
                ("BlockDeviceMapping.1.DeviceName", "/dev/sdh"),
                ("BlockDeviceMapping.1.Ebs.VolumeSize", "1"),
                ("BlockDeviceMapping.1.Ebs.VolumeType", "st1"),
            ],
            "InvalidParameterValue",
        ),
    ] {
        assert_eq!(code_of(register("bad-mapping", &extra)), code, "{extra:?}");
    }
    assert!(
        !agent.call("DescribeImages", &[]).contains("bad-mapping"),
        "a refused RegisterImage left an image"
    );
    let ami2 = text(
        &register(
            "data-mappings",
            &[
                ("BlockDeviceMapping.1.DeviceName", "/dev/sdh"),
                ("BlockDeviceMapping.1.Ebs.SnapshotId", snaps[1].as_str()),
                ("BlockDeviceMapping.2.DeviceName", "/dev/sdi"),
                ("BlockDeviceMapping.2.Ebs.VolumeSize", "3"),
                ("BlockDeviceMapping.2.Ebs.VolumeType", "gp2"),
                ("BlockDeviceMapping.2.Ebs.DeleteOnTermination", "false"),
            ],
        )
        .unwrap(),
        "imageId",
    );
    assert_eq!(image_state(&agent, &ami2), "available");
    let i5 = run(&agent, &ami2, &[]);
    agent.wait_state(&i5, "stopped", T);
    let i5_devs = instance_devices(&agent, &i5);
    assert_eq!(
        i5_devs
            .iter()
            .map(|d| (d.name.as_str(), d.delete_on_termination.as_str()))
            .collect::<Vec<_>>(),
        vec![("/dev/sdh", "true"), ("/dev/sdi", "false")]
    );
    assert_eq!(
        head(
            &volume_file(&agent, &volume_of(&i5_devs, "/dev/sdh")),
            2 * MIB
        ),
        data_bytes
    );
    let empty = volume(&agent, &volume_of(&i5_devs, "/dev/sdi"));
    assert_eq!((empty.size.as_str(), empty.kind.as_str()), ("3", "gp2"));

    // Deregistering both images frees the snapshots for deletion, which then succeeds.
    agent.call("DeregisterImage", &[("ImageId", &ami)]);
    assert_eq!(
        agent
            .call_err("DeleteSnapshot", &[("SnapshotId", snaps[1].as_str())])
            .0,
        "InvalidSnapshot.InUse",
        "ami2 still uses it"
    );
    agent.call("DeregisterImage", &[("ImageId", &ami2)]);
    for s in &snaps {
        agent.call("DeleteSnapshot", &[("SnapshotId", s.as_str())]);
    }

    // Terminating i2 keeps its root (DeleteOnTermination false) and deletes its data volume.
    agent.call("TerminateInstances", &[("InstanceId.1", i2.as_str())]);
    agent.wait_state(&i2, "terminated", T);
    assert!(
        eventually(T, || !volume_ids(&agent).contains(&i2_data)),
        "the data volume outlived its instance"
    );
    assert_eq!(volume(&agent, &i2_root).status, "available");
}

#[test]
fn create_image_of_a_running_instance_reboots_it_unless_no_reboot() {
    let agent = Agent::start(&["--stop-timeout", "5"]);
    let writer = register(
        &agent,
        "probe-write-count",
        "probe.disk=write probe.mode=count",
    );
    let w = run(
        &agent,
        &writer,
        &[
            ("BlockDeviceMapping.1.DeviceName", "/dev/sdf"),
            ("BlockDeviceMapping.1.Ebs.VolumeSize", "1"),
        ],
    );
    let written = wait_line(&agent, &w, "disk write ok", T);
    let sum = checksum(&written);
    agent.wait_state(&w, "running", T);
    let boots = || agent.console(&w).matches("probe: vcpu 0 of 1 up").count();
    assert_eq!(boots(), 1);
    let pid = agent.vmm_pid(&w).unwrap();

    // NoReboot: the guest is only paused; the same vmm runs on.
    let quiet = text(
        &agent.call(
            "CreateImage",
            &[
                ("InstanceId", w.as_str()),
                ("Name", "no-reboot"),
                ("NoReboot", "true"),
            ],
        ),
        "imageId",
    );
    wait_image(&agent, &quiet);
    assert_eq!(agent.vmm_pid(&w), Some(pid));
    assert_eq!(boots(), 1);

    // Without it: the guest is shut down, imaged and booted again; it stays running.
    let mut states = Vec::new();
    let rebooted = text(
        &agent.call(
            "CreateImage",
            &[("InstanceId", w.as_str()), ("Name", "rebooted")],
        ),
        "imageId",
    );
    let again = eventually(T, || {
        states.push(agent.instance(&w).state);
        boots() == 2 && agent.vmm_pid(&w).is_some_and(|p| p != pid)
    });
    assert!(again, "no second boot:\n{}", agent.console(&w));
    assert!(
        states.iter().all(|s| s == "running"),
        "the image's reboot left running: {states:?}"
    );
    wait_image(&agent, &rebooted);
    agent.wait_state(&w, "running", T);

    // Each image's data snapshot holds what the probe wrote: the verifier reads it back.
    for ami in [&quiet, &rebooted] {
        let devs = image_devices(&agent, ami);
        assert_eq!(devs.len(), 1, "{devs:?}");
        let snap = devs[0].snapshot.clone();
        let verifier = text(
            &agent.call(
                "RegisterImage",
                &[
                    ("Name", format!("verify-{ami}").as_str()),
                    ("KernelPath", probe_elf().to_str().unwrap()),
                    ("EntryMode", "user"),
                    ("BootArgs", "probe.disk=verify"),
                    ("BlockDeviceMapping.1.DeviceName", "/dev/sdf"),
                    ("BlockDeviceMapping.1.Ebs.SnapshotId", snap.as_str()),
                ],
            ),
            "imageId",
        );
        let r = run(&agent, &verifier, &[]);
        let line = wait_line(&agent, &r, "disk verify", T);
        assert!(line.contains("disk verify ok 67108864 bytes"), "{line}");
        assert_eq!(checksum(&line), sum, "{ami}");
        agent.wait_state(&r, "stopped", T);
    }

    // A terminated instance cannot be imaged.
    agent.call("TerminateInstances", &[("InstanceId.1", w.as_str())]);
    agent.wait_state(&w, "terminated", T);
    assert_eq!(
        agent
            .call_err(
                "CreateImage",
                &[("InstanceId", w.as_str()), ("Name", "too-late")]
            )
            .0,
        "IncorrectInstanceState"
    );
}
