//! Instance store: a `d` type gets a scratch disk that is empty at every start, kept across a
//! reboot and deleted at stop and terminate, while its EBS root volume keeps what the guest
//! wrote.

mod common;
mod ebs_common;

use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::Duration;

use common::{Agent, eventually};
use ebs_common::*;

const T: Duration = Duration::from_secs(30);

fn allocated(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().blocks() * 512
}

#[test]
fn instance_store_is_empty_after_stop_start_and_the_root_volume_is_not() {
    let agent = Agent::start(&["--stop-timeout", "5"]);
    let root = agent.dir.path().join("root.img");
    std::fs::write(&root, vec![0x5au8; 1 << 20]).unwrap();
    let elf = probe_elf();
    let xml = agent.call(
        "RegisterImage",
        &[
            ("Name", "probe-root-writer"),
            ("KernelPath", elf.to_str().unwrap()),
            ("RootVolumePath", root.to_str().unwrap()),
            ("EntryMode", "user"),
            ("BootArgs", "probe.disk=write probe.mode=count"),
        ],
    );
    let ami = text(&xml, "imageId");
    let types = agent.call("DescribeInstanceTypes", &[("InstanceType.1", "c5d.large")]);
    assert_eq!(text(&types, "totalSizeInGB"), "50", "{types}");
    let i = run_type(&agent, &ami, "c5d.large", &[]);
    agent.wait_state(&i, "running", T);
    // The probe drives the first disk: the root volume.
    let line = wait_line(&agent, &i, "disk write", T);
    assert!(line.contains("disk write ok 67108864 bytes"), "{line}");
    let store = agent
        .dir
        .path()
        .join("instances")
        .join(&i)
        .join("ephemeral0.img");
    assert_eq!(std::fs::metadata(&store).unwrap().len(), 50_000_000_000);
    assert!(
        allocated(&store) < 1 << 20,
        "the instance store starts empty (sparse)"
    );
    // Data lands on the instance store (written here as the guest would).
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&store)
        .unwrap();
    f.write_all_at(&[0xeeu8; 1 << 20], 0).unwrap();
    drop(f);
    assert!(allocated(&store) >= 1 << 20);

    let root_vol = text(
        &agent.call("DescribeInstances", &[("InstanceId.1", i.as_str())]),
        "volumeId",
    );
    let root_file = volume_file(&agent, &root_vol);
    agent.call("StopInstances", &[("InstanceId.1", i.as_str())]);
    agent.wait_state(&i, "stopped", T);
    assert!(
        eventually(T, || !store.exists()),
        "the instance store outlived the stop"
    );
    assert!(
        allocated(&root_file) >= 64 << 20,
        "the root volume lost its data"
    );

    start(&agent, &i);
    agent.wait_state(&i, "running", T);
    assert!(store.exists());
    let mut head = vec![0u8; 1 << 20];
    std::fs::File::open(&store)
        .unwrap()
        .read_exact_at(&mut head, 0)
        .unwrap();
    assert!(
        head.iter().all(|&b| b == 0),
        "instance store data survived a stop/start"
    );
    assert!(allocated(&root_file) >= 64 << 20);

    // A reboot keeps the instance store, as on EC2.
    wait_line(&agent, &i, "disk write", T);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&store)
        .unwrap();
    f.write_all_at(&[0xccu8; 4096], 0).unwrap();
    drop(f);
    let pid = agent.vmm_pid(&i).unwrap();
    agent.call("RebootInstances", &[("InstanceId.1", i.as_str())]);
    assert!(
        eventually(T, || agent.vmm_pid(&i).is_some_and(|p| p != pid)),
        "the reboot did not restart the vmm"
    );
    agent.wait_state(&i, "running", T);
    let mut head = vec![0u8; 4096];
    std::fs::File::open(&store)
        .unwrap()
        .read_exact_at(&mut head, 0)
        .unwrap();
    assert!(
        head.iter().all(|&b| b == 0xcc),
        "a reboot emptied the instance store"
    );

    agent.call("TerminateInstances", &[("InstanceId.1", i.as_str())]);
    agent.wait_state(&i, "terminated", T);
    assert!(eventually(T, || !store.exists() && !root_file.exists()));
}
