//! EBS volumes with real probe guests: data the probe writes survives stop/start, an agent
//! SIGKILL and a VMM SIGKILL after the flush; detached and attached to another instance it
//! shows the same bytes; DeleteOnTermination; bad inputs get EC2's codes and change nothing.

mod common;
mod ebs_common;

use std::time::Duration;

use common::{Agent, eventually, pid_alive};
use ebs_common::*;

const T: Duration = Duration::from_secs(30);

fn detach(agent: &Agent, vol: &str) {
    agent.call("DetachVolume", &[("VolumeId", vol)]);
    wait_volume(agent, vol, "available", T);
}

/// Starts `id` (stopped), waits for its verify line and for it to stop again.
fn boot_and_verify(agent: &Agent, id: &str) -> String {
    clear_console(agent, id);
    start(agent, id);
    let line = wait_line(agent, id, "disk verify", T);
    agent.wait_state(id, "stopped", T);
    assert!(line.contains("disk verify ok 67108864 bytes"), "{line}");
    checksum(&line)
}

#[test]
fn written_data_survives_stop_start_agent_and_vmm_kills_and_moves_between_instances() {
    let mut agent = Agent::start(&["--stop-timeout", "5"]);
    let writer = register(&agent, "probe-write", "probe.disk=write");
    let verifier = register(&agent, "probe-verify", "probe.disk=verify");
    let writer_alive = register(
        &agent,
        "probe-write-count",
        "probe.disk=write probe.mode=count",
    );

    // The writer gets a 1 GiB data volume from its block device mapping, kept at termination.
    let w = run(
        &agent,
        &writer,
        &[
            ("BlockDeviceMapping.1.DeviceName", "/dev/sdf"),
            ("BlockDeviceMapping.1.Ebs.VolumeSize", "1"),
            ("BlockDeviceMapping.1.Ebs.VolumeType", "gp3"),
            ("BlockDeviceMapping.1.Ebs.DeleteOnTermination", "false"),
        ],
    );
    let written = wait_line(&agent, &w, "disk write", T);
    assert!(
        written.contains("disk write ok 67108864 bytes"),
        "{written}"
    );
    agent.wait_state(&w, "stopped", T);
    let sum = checksum(&written);
    let described = agent.call("DescribeInstances", &[("InstanceId.1", w.as_str())]);
    let vol = text(&described, "volumeId");
    assert!(vol.starts_with("vol-"), "{described}");
    assert_eq!(text(&described, "deviceName"), "/dev/sdf");
    let v = volume(&agent, &vol);
    assert_eq!(
        (v.status.as_str(), v.instance.as_str()),
        ("in-use", w.as_str())
    );
    assert_eq!(
        (v.size.as_str(), v.kind.as_str(), v.iops.as_str()),
        ("1", "gp3", "3000")
    );

    // A second instance, without volumes: the probe finds no disk and powers off.
    let r = run(&agent, &verifier, &[]);
    wait_line(&agent, &r, "disk none", T);
    agent.wait_state(&r, "stopped", T);

    // Detach from the writer, attach to the reader: the same bytes.
    detach(&agent, &vol);
    attach(&agent, &vol, &r, "/dev/sdg");
    assert_eq!(volume(&agent, &vol).instance, r);
    assert_eq!(
        boot_and_verify(&agent, &r),
        sum,
        "different bytes on the second instance"
    );

    // Stop/start: still there.
    assert_eq!(boot_and_verify(&agent, &r), sum);

    // SIGKILL of the agent, then a start by the new agent: still there.
    agent.restart();
    assert_eq!(
        volume(&agent, &vol).instance,
        r,
        "attachment lost in the restart"
    );
    assert_eq!(boot_and_verify(&agent, &r), sum);

    // A writer that keeps running after its flush; its VMM is SIGKILLed after the
    // `write ok` line (which comes after the flush and the read-back).
    let w2 = run(
        &agent,
        &writer_alive,
        &[
            ("BlockDeviceMapping.1.DeviceName", "/dev/sdf"),
            ("BlockDeviceMapping.1.Ebs.VolumeSize", "4"),
            ("BlockDeviceMapping.1.Ebs.VolumeType", "io2"),
            ("BlockDeviceMapping.1.Ebs.Iops", "2000"),
            ("BlockDeviceMapping.1.Ebs.DeleteOnTermination", "false"),
        ],
    );
    agent.wait_state(&w2, "running", T);
    let line = wait_line(&agent, &w2, "disk write", T);
    assert!(line.contains("disk write ok"), "{line}");
    let pid = agent.vmm_pid(&w2).expect("vmm pid");
    // SAFETY: kill(2) on a vmm this test's agent started.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    assert!(eventually(T, || !pid_alive(pid)));
    agent.wait_state(&w2, "stopped", T);
    let xml = agent.call("DescribeInstances", &[("InstanceId.1", w2.as_str())]);
    let vol2 = text(&xml, "volumeId");
    assert_eq!(volume(&agent, &vol2).iops, "2000");
    detach(&agent, &vol);
    detach(&agent, &vol2);
    attach(&agent, &vol2, &r, "/dev/sdf");
    assert_eq!(boot_and_verify(&agent, &r), checksum(&line));

    // Terminate: DeleteOnTermination=false volumes stay (available); a root-style default
    // (true) volume goes.
    let doomed = run(
        &agent,
        &verifier,
        &[
            ("BlockDeviceMapping.1.DeviceName", "/dev/sdh"),
            ("BlockDeviceMapping.1.Ebs.VolumeSize", "1"),
        ],
    );
    agent.wait_state(&doomed, "stopped", T);
    let doomed_vol = text(
        &agent.call("DescribeInstances", &[("InstanceId.1", doomed.as_str())]),
        "volumeId",
    );
    assert!(volume_file(&agent, &doomed_vol).exists());
    agent.call("TerminateInstances", &[("InstanceId.1", r.as_str())]);
    agent.call("TerminateInstances", &[("InstanceId.1", doomed.as_str())]);
    agent.wait_state(&r, "terminated", T);
    wait_volume(&agent, &vol2, "available", T);
    assert!(
        eventually(T, || !volume_ids(&agent).contains(&doomed_vol)),
        "the DeleteOnTermination volume was not deleted"
    );
    assert!(!volume_file(&agent, &doomed_vol).exists());
    assert!(volume_file(&agent, &vol2).exists());
    assert_eq!(volume(&agent, &vol).status, "available");
}

#[test]
fn volume_lifecycle_and_bad_inputs_change_nothing() {
    let agent = Agent::start(&["--stop-timeout", "5"]);
    let ami = agent.register_probe();
    let a = run(&agent, &ami, &[]);
    let b = run(&agent, &ami, &[]);
    agent.wait_state(&a, "running", T);
    agent.wait_state(&b, "running", T);
    agent.call(
        "StopInstances",
        &[("InstanceId.1", a.as_str()), ("Force", "true")],
    );
    agent.wait_state(&a, "stopped", T);

    let vol = create_volume(
        &agent,
        &[
            ("Size", "8"),
            ("VolumeType", "gp3"),
            ("TagSpecification.1.ResourceType", "volume"),
            ("TagSpecification.1.Tag.1.Key", "team"),
            ("TagSpecification.1.Tag.1.Value", "blue"),
        ],
    );
    assert_eq!(volume(&agent, &vol).status, "available");
    let file = volume_file(&agent, &vol);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 8 << 30);
    {
        use std::os::unix::fs::MetadataExt;
        assert!(
            std::fs::metadata(&file).unwrap().blocks() * 512 < 1 << 20,
            "not sparse"
        );
    }
    attach(&agent, &vol, &a, "/dev/sdf");
    let before_view = volume(&agent, &vol);
    assert_eq!(before_view.device, "/dev/sdf");

    let err = |action: &str, p: &[(&str, &str)]| agent.call_err(action, p).0;
    let cv = |p: &[(&str, &str)]| {
        let mut all = vec![("AvailabilityZone", "local-1a")];
        all.extend_from_slice(p);
        agent.call_err("CreateVolume", &all).0
    };
    assert_eq!(
        cv(&[("Size", "0"), ("VolumeType", "gp3")]),
        "InvalidParameterValue"
    );
    assert_eq!(
        cv(&[("Size", "16385"), ("VolumeType", "gp2")]),
        "InvalidParameterValue"
    );
    assert_eq!(
        cv(&[("Size", "65537"), ("VolumeType", "gp3")]),
        "InvalidParameterValue"
    );
    assert_eq!(
        cv(&[("Size", "2"), ("VolumeType", "io1"), ("Iops", "100")]),
        "InvalidParameterValue"
    );
    assert_eq!(
        cv(&[("Size", "100"), ("VolumeType", "st1")]),
        "InvalidParameterValue"
    );
    assert_eq!(
        cv(&[("Size", "10"), ("VolumeType", "io1")]),
        "MissingParameter"
    );
    assert_eq!(
        cv(&[("Size", "10"), ("VolumeType", "gp2"), ("Iops", "300")]),
        "InvalidParameterCombination"
    );
    assert_eq!(
        cv(&[
            ("Size", "10"),
            ("VolumeType", "io2"),
            ("Throughput", "200"),
            ("Iops", "1000")
        ]),
        "InvalidParameterCombination"
    );
    assert_eq!(
        cv(&[("Size", "100"), ("VolumeType", "io1"), ("Iops", "64001")]),
        "InvalidParameterValue"
    );
    assert_eq!(
        cv(&[("Size", "10"), ("VolumeType", "io1"), ("Iops", "501")]),
        "InvalidParameterValue"
    );
    assert_eq!(
        cv(&[("Size", "10"), ("VolumeType", "gp3"), ("Iops", "2999")]),
        "InvalidParameterValue"
    );
    assert_eq!(
        cv(&[
            ("Size", "10"),
            ("VolumeType", "gp3"),
            ("Throughput", "1000")
        ]),
        "InvalidParameterValue"
    );
    assert_eq!(
        cv(&[("Size", "10"), ("VolumeType", "gp9")]),
        "InvalidParameterValue"
    );
    assert_eq!(
        cv(&[("Size", "10"), ("Encrypted", "true")]),
        "InvalidParameterValue"
    );
    assert_eq!(cv(&[("VolumeType", "gp3")]), "MissingParameter");
    assert_eq!(
        cv(&[("SnapshotId", "snap-0123456789abcdef0")]),
        "InvalidSnapshot.NotFound"
    );
    assert_eq!(cv(&[("SnapshotId", "nope")]), "InvalidSnapshotID.Malformed");
    assert_eq!(
        agent
            .call_err(
                "CreateVolume",
                &[("Size", "1"), ("AvailabilityZone", "us-east-1a")]
            )
            .0,
        "InvalidParameterValue"
    );
    assert_eq!(
        agent.call_err("CreateVolume", &[("Size", "1")]).0,
        "MissingParameter"
    );

    let ghost = "vol-0123456789abcdef0";
    assert_eq!(
        err("DescribeVolumes", &[("VolumeId.1", ghost)]),
        "InvalidVolume.NotFound"
    );
    assert_eq!(
        err("DeleteVolume", &[("VolumeId", ghost)]),
        "InvalidVolume.NotFound"
    );
    assert_eq!(
        err("DeleteVolume", &[("VolumeId", "vol-xyz")]),
        "InvalidVolumeID.Malformed"
    );
    assert_eq!(
        err(
            "AttachVolume",
            &[
                ("VolumeId", ghost),
                ("InstanceId", &a),
                ("Device", "/dev/sdg")
            ]
        ),
        "InvalidVolume.NotFound"
    );
    // In use: attach elsewhere, delete.
    assert_eq!(
        err(
            "AttachVolume",
            &[
                ("VolumeId", &vol),
                ("InstanceId", &b),
                ("Device", "/dev/sdg")
            ]
        ),
        "VolumeInUse"
    );
    assert_eq!(err("DeleteVolume", &[("VolumeId", &vol)]), "VolumeInUse");
    let free = create_volume(&agent, &[("Size", "1")]);
    // A running instance (no hot-plug), an unknown instance, a taken or bad device.
    assert_eq!(
        err(
            "AttachVolume",
            &[
                ("VolumeId", &free),
                ("InstanceId", &b),
                ("Device", "/dev/sdg")
            ]
        ),
        "IncorrectState"
    );
    assert_eq!(
        err(
            "AttachVolume",
            &[
                ("VolumeId", &free),
                ("InstanceId", "i-0123456789abcdef0"),
                ("Device", "/dev/sdg")
            ]
        ),
        "InvalidInstanceID.NotFound"
    );
    assert_eq!(
        err(
            "AttachVolume",
            &[
                ("VolumeId", &free),
                ("InstanceId", &a),
                ("Device", "/dev/xvdf")
            ]
        ),
        "InvalidParameterValue"
    );
    assert_eq!(
        err(
            "AttachVolume",
            &[
                ("VolumeId", &free),
                ("InstanceId", &a),
                ("Device", "/dev/sda")
            ]
        ),
        "InvalidParameterValue"
    );
    assert_eq!(
        err("DetachVolume", &[("VolumeId", &free)]),
        "IncorrectState"
    );
    assert_eq!(
        err("DetachVolume", &[("VolumeId", &vol), ("InstanceId", &b)]),
        "InvalidAttachment.NotFound"
    );
    assert_eq!(
        err("ModifyVolume", &[("VolumeId", &vol), ("Size", "4")]),
        "InvalidParameterValue"
    );
    assert_eq!(
        err("ModifyVolume", &[("VolumeId", &vol), ("VolumeType", "io1")]),
        "MissingParameter"
    );
    // Nothing changed by any of it.
    assert_eq!(
        volume(&agent, &vol),
        before_view,
        "the in-use volume changed"
    );
    let mut ids = volume_ids(&agent);
    ids.sort();
    let mut want = vec![vol.clone(), free.clone()];
    want.sort();
    assert_eq!(ids, want, "a refused request created a volume");

    // Filters.
    let by_instance = agent.call(
        "DescribeVolumes",
        &[
            ("Filter.1.Name", "attachment.instance-id"),
            ("Filter.1.Value.1", &a),
        ],
    );
    assert!(
        by_instance.contains(&vol) && !by_instance.contains(&free),
        "{by_instance}"
    );
    let by_status = agent.call(
        "DescribeVolumes",
        &[
            ("Filter.1.Name", "status"),
            ("Filter.1.Value.1", "available"),
        ],
    );
    assert!(by_status.contains(&free) && !by_status.contains(&vol));
    let by_tag = agent.call(
        "DescribeVolumes",
        &[("Filter.1.Name", "tag:team"), ("Filter.1.Value.1", "blue")],
    );
    assert!(by_tag.contains(&vol) && !by_tag.contains(&free));

    // Modify: grow and retype; the file grows at once.
    let m = agent.call(
        "ModifyVolume",
        &[
            ("VolumeId", &vol),
            ("Size", "10"),
            ("VolumeType", "io2"),
            ("Iops", "5000"),
        ],
    );
    assert_eq!(text(&m, "targetSize"), "10");
    let v = volume(&agent, &vol);
    assert_eq!(
        (v.size.as_str(), v.kind.as_str(), v.iops.as_str()),
        ("10", "io2", "5000")
    );
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 10 << 30);

    // Detach then delete: the file goes.
    agent.call("DetachVolume", &[("VolumeId", &vol), ("InstanceId", &a)]);
    agent.call("DeleteVolume", &[("VolumeId", &vol)]);
    assert!(!file.exists());
    assert_eq!(volume_ids(&agent), vec![free]);
}

#[test]
fn cli_volume_and_snapshot_commands() {
    let agent = Agent::start(&["--stop-timeout", "5"]);
    let ami = agent.register_probe();
    let i = run(&agent, &ami, &[]);
    agent.wait_state(&i, "running", T);
    agent.ec2_ok(&["stop-instances", "--instance-ids", &i, "--force"]);
    agent.wait_state(&i, "stopped", T);

    let vol = agent.ec2_ok(&[
        "create-volume",
        "--size",
        "4",
        "--volume-type",
        "io2",
        "--iops",
        "400",
    ]);
    let vol = vol.trim().to_string();
    assert!(vol.starts_with("vol-"), "{vol}");
    let table = agent.ec2_ok(&["describe-volumes"]);
    let line = table.lines().find(|l| l.starts_with(&vol)).unwrap();
    assert!(
        line.contains("io2") && line.contains("400") && line.contains("available"),
        "{line}"
    );
    agent.ec2_ok(&[
        "attach-volume",
        "--volume-id",
        &vol,
        "--instance-id",
        &i,
        "--device",
        "/dev/sdf",
    ]);
    let line = agent.ec2_ok(&["describe-volumes", "--volume-ids", &vol]);
    assert!(
        line.contains("in-use") && line.contains(&i) && line.contains("/dev/sdf"),
        "{line}"
    );
    let snap = agent.ec2_ok(&[
        "create-snapshot",
        "--volume-id",
        &vol,
        "--description",
        "cli",
    ]);
    let snap = snap.trim().to_string();
    assert!(snap.starts_with("snap-"), "{snap}");
    wait_snapshot(&agent, &snap, T);
    let json: serde_json::Value = serde_json::from_str(&agent.ec2_ok(&[
        "describe-snapshots",
        "--snapshot-ids",
        &snap,
        "--output",
        "json",
    ]))
    .unwrap();
    assert_eq!(json["Snapshots"][0]["VolumeId"], vol.as_str(), "{json}");
    let out = agent.ec2(&["delete-volume", "--volume-id", &vol]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("VolumeInUse"));
    agent.ec2_ok(&["detach-volume", "--volume-id", &vol]);
    agent.ec2_ok(&["delete-volume", "--volume-id", &vol]);
    let copy = agent.ec2_ok(&[
        "copy-snapshot",
        "--source-snapshot-id",
        &snap,
        "--description",
        "cli copy",
    ]);
    let copy = copy.trim().to_string();
    assert!(copy.starts_with("snap-") && copy != snap, "{copy}");
    let line = agent.ec2_ok(&["describe-snapshots", "--snapshot-ids", &copy]);
    assert!(line.contains("completed"), "{line}");
    agent.ec2_ok(&["delete-snapshot", "--snapshot-id", &snap]);
    agent.ec2_ok(&["delete-snapshot", "--snapshot-id", &copy]);
    assert!(agent.ec2_ok(&["describe-snapshots"]).lines().count() == 1);
    let ami2 = agent.ec2_ok(&["create-image", "--instance-id", &i, "--name", "from-cli"]);
    assert!(ami2.trim().starts_with("ami-"), "{ami2}");
}
